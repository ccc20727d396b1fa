"""StackSession reads the state's export once per session (its outputs come from it) and drops it when
the state changes through it; set_meta writes only a value that differs (a no-op `launch` writes no
config); a session opened for the look-up runs the update too (no second select, no second config read);
one PulumiCommand (one `pulumi version`) per process."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from styx.app import engine as eng
from styx.app.session import SECRET_SIG, SIG_KEY, Engine, StackNotFound, StackSession, stack_outputs


def secret(value):
    return {SIG_KEY: SECRET_SIG, "plaintext": json.dumps(value)}


def root(outputs):
    return {"urn": "urn:pulumi:s::styx::pulumi:pulumi:Stack::styx-s", "type": "pulumi:pulumi:Stack",
            "outputs": outputs}


class Value:
    def __init__(self, value):
        self.value = value


class FakeStack:
    def __init__(self, work_dir: Path | None = None):
        self.name = "s"
        cmd = SimpleNamespace(command="pulumi", version=None)
        self.workspace = SimpleNamespace(pulumi_command=cmd, remove_stack=lambda n: None, program=None,
                                         work_dir=str(work_dir or "."))
        self.calls: list[str] = []
        self.outs = {"nodes": {"head": "10.0.0.2"}}
        self.dep = {"resources": [root({"nodes": {"head": "10.0.0.2"}}), {"urn": "a"}], "pending_operations": []}
        self.config = {"styx:cluster": Value(json.dumps({"name": "c"})), "styx:placement": Value(json.dumps({"z": 1}))}

    def outputs(self):
        self.calls.append("outputs")
        return {k: Value(v) for k, v in self.outs.items()}

    def export_stack(self):
        self.calls.append("export")
        return SimpleNamespace(version=3, deployment=json.loads(json.dumps(self.dep)))

    def import_stack(self, dep):
        self.calls.append("import")
        self.dep = dep.deployment

    def get_all_config(self):
        self.calls.append("config")
        return dict(self.config)

    def set_config(self, key, value):
        self.calls.append(f"set {key}")
        self.config[key] = Value(value.value)

    def up(self, **kw):
        self.calls.append("up")
        self.outs = {"nodes": {"head": "10.0.0.3"}}
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={"same": 3}), stdout="", stderr="",
                               outputs={k: Value(v) for k, v in self.outs.items()})

    def refresh(self, **kw):
        self.calls.append("refresh")
        self.dep = {"resources": [], "pending_operations": []}
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={}), stdout="", stderr="")


def session(work_dir: Path | None = None) -> tuple[StackSession, FakeStack]:
    st = FakeStack(work_dir)
    return StackSession(SimpleNamespace(), st), st


def test_outputs_and_export_are_one_read_and_copied():
    s, st = session()
    assert s.outputs() == s.outputs() == {"nodes": {"head": "10.0.0.2"}}
    s.outputs()["nodes"]["head"] = "edited"  # a caller's edit does not reach the next caller
    dep = s.deployment()
    dep["resources"].clear()
    assert s.deployment()["resources"][1] == {"urn": "a"}
    assert s.outdated_phases() == 0 and s.pending_operations() == []
    assert st.calls == ["export"]  # the outputs come from the export: no `stack output` call


def test_stack_outputs_of_an_export_unwrap_secrets_at_any_depth():
    dep = {"resources": [{"type": "pulumi:providers:command", "outputs": {"x": 1}},
                         root({"ip": "10.0.0.2", "key": secret("PRIVATE"), "n": 3, "ok": True, "none": None,
                               "nodes": {"head": {"ip": "10.0.0.2", "token": secret({"a": [1, secret("b")]})}},
                               "list": [secret(1), "x"]})]}
    assert stack_outputs(dep) == {"ip": "10.0.0.2", "key": "PRIVATE", "n": 3, "ok": True, "none": None,
                                  "nodes": {"head": {"ip": "10.0.0.2", "token": {"a": [1, "b"]}}}, "list": [1, "x"]}
    assert stack_outputs({"resources": []}) == stack_outputs(None) == {}  # never updated


def test_an_export_with_a_secret_left_encrypted_falls_back_to_the_cli_outputs():
    s, st = session()
    st.dep["resources"][0] = root({"key": {SIG_KEY: SECRET_SIG, "ciphertext": "v1:abc"}})
    assert stack_outputs(st.dep) is None
    assert s.outputs() == {"nodes": {"head": "10.0.0.2"}}
    assert st.calls == ["export", "outputs"]


def test_an_update_refresh_or_import_drops_them():
    s, st = session()
    s.outputs(), s.deployment()
    s.up()
    assert s.outputs() == {"nodes": {"head": "10.0.0.3"}}  # the update's own outputs, no second read
    assert st.calls.count("outputs") == 0 and st.calls.count("export") == 1
    s.refresh()
    assert s.deployment()["resources"] == []
    assert s.outputs() == {}  # read again from the new export
    s.import_deployment({"resources": [{"urn": "b"}]})
    assert s.deployment()["resources"] == [{"urn": "b"}]
    assert st.calls.count("export") == 3


def test_set_meta_writes_only_a_changed_value():
    s, st = session()
    s.meta()
    s.set_meta("styx:placement", {"z": 1})
    assert not [c for c in st.calls if c.startswith("set")]
    s.set_meta("styx:placement", {"z": 2})
    s.set_meta("styx:placement", {"z": 2})
    assert [c for c in st.calls if c.startswith("set")] == ["set styx:placement"]
    assert s.meta()["styx:placement"] == {"z": 2}
    assert st.calls.count("config") == 1


def test_set_meta_without_a_read_config_always_writes():
    s, st = session()
    s.set_meta("styx:placement", {"z": 1})
    assert st.calls == ["set styx:placement"]


def test_the_looked_up_session_runs_the_update_without_a_second_select_or_config_read(tmp_path, monkeypatch):
    monkeypatch.setattr(eng, "open_stack", lambda *a, **k: pytest.fail("the stack was opened a second time"))
    engine = Engine("file:///nowhere")
    st = FakeStack(tmp_path)
    first = StackSession(engine, st)
    first.outputs(), first.meta()
    cluster = {"name": "c", "setup": {"env": {"A": "1"}}}
    assert engine.create_or_select("s", cluster, tmp_path, reuse=first) is first
    assert callable(st.workspace.program)  # styx's program bound for the update
    written = (tmp_path / "Pulumi.s.yaml").read_text()
    assert "styx:cluster" in written and "A: '1'" in written
    assert st.calls == ["export", "config", "set styx:base_dir"]  # base_dir was not stored yet
    assert first.meta()["styx:placement"] == {"z": 1} and first.outdated_phases() == 0
    first.set_meta("styx:base_dir", str(tmp_path))  # already so
    assert st.calls == ["export", "config", "set styx:base_dir"]
    st.config["styx:cluster"] = Value(json.dumps(cluster))  # what Pulumi reads back from the file
    assert first.cluster() == cluster  # styx:cluster was written: read again
    assert st.calls[-1] == "config"


def test_a_session_of_another_stack_or_engine_is_not_reused(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(eng, "open_stack", lambda name, *a, **k: opened.append(name) or FakeStack(tmp_path))
    monkeypatch.setattr(eng, "ensure_passphrase", lambda: eng.Passphrase("p", "env", False))
    engine = Engine("file:///nowhere")
    other = StackSession(Engine("file:///nowhere"), FakeStack(tmp_path))
    got = engine.create_or_select("s", {"name": "c"}, tmp_path, reuse=other)
    assert got is not other and opened == ["s"]


def test_find_is_one_select_and_leaves_no_work_dir_for_a_missing_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("STYX_HOME", str(tmp_path))
    engine = Engine(f"file://{tmp_path / 'state'}")

    def open_(name):
        engine.work_dir(name).mkdir(parents=True)  # as the workspace does
        raise StackNotFound(name)

    monkeypatch.setattr(engine, "open", open_)
    assert engine.find("nope") is None
    assert not engine.work_dir("nope").exists()
    monkeypatch.setattr(engine, "open", lambda name: f"session {name}")
    assert engine.find("yes") == "session yes"


def test_one_pulumi_command_per_toolchain_and_process(tmp_path, monkeypatch):
    from pulumi import automation as auto

    made = []

    class Cmd:
        def __init__(self, root, skip_version_check):
            made.append(root)  # the real one runs `pulumi version` here

    monkeypatch.setattr(auto, "PulumiCommand", Cmd)
    monkeypatch.setattr(eng, "_COMMANDS", {})
    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(tmp_path / "a" / "bin"))
    assert eng.pulumi_command() is eng.pulumi_command()
    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(tmp_path / "b" / "bin"))
    eng.pulumi_command()
    assert made == [str(tmp_path / "a"), str(tmp_path / "b")]
