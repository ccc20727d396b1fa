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


def _encrypted(value):
    """What `pulumi stack export` without --show-secrets prints for a secret: its ciphertext."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return {SIG_KEY: SECRET_SIG, "ciphertext": "v1:..."}
        return {k: _encrypted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encrypted(v) for v in value]
    return value


class Value:
    def __init__(self, value):
        self.value = value


class FakeStack:
    def __init__(self, work_dir: Path | None = None):
        self.name = "s"
        cmd = SimpleNamespace(command="pulumi", version=None)
        self.workspace = SimpleNamespace(pulumi_command=cmd, remove_stack=lambda n: None, program=None,
                                         work_dir=str(work_dir or "."), _run_pulumi_cmd_sync=self._run)
        self.calls: list[str] = []
        self.outs = {"nodes": {"head": "10.0.0.2"}}
        self.dep = {"resources": [root({"nodes": {"head": "10.0.0.2"}}), {"urn": "a"}], "pending_operations": []}
        self.config = {"styx:cluster": Value(json.dumps({"name": "c"})), "styx:placement": Value(json.dumps({"z": 1}))}

    def outputs(self):
        self.calls.append("outputs")
        return {k: Value(v) for k, v in self.outs.items()}

    def _run(self, args):
        if args[:2] == ["stack", "import"]:
            assert args[2] == "--file" and args[4:] == ["--stack", self.name], args
            self.imported_text = Path(args[3]).read_text()
            self.calls.append("import")
            self.dep = json.loads(self.imported_text)["deployment"]
            return SimpleNamespace(stdout="")
        assert args == ["stack", "export", "--stack", self.name]  # no --show-secrets
        self.calls.append("export (no secrets)")
        return SimpleNamespace(stdout=json.dumps({"version": 3, "deployment": _encrypted(self.dep)}))

    def export_stack(self):
        self.calls.append("export")
        return SimpleNamespace(version=3, deployment=json.loads(json.dumps(self.dep)))

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
    assert s.edit_state(lambda d: d["resources"].append({"urn": "b"}) or 1) == 1
    assert s.deployment()["resources"] == [{"urn": "b"}]
    assert st.calls.count("export") == 3


def test_an_edit_of_the_state_imports_its_secrets_encrypted_and_leaves_no_file():
    s, st = session()
    st.dep["resources"].append({"urn": "k", "inputs": {"delete": secret("undo"), "stdin": secret("KEY")}})
    assert s.deployment()["resources"][-1]["inputs"]["stdin"]["plaintext"] == json.dumps("KEY")  # decrypted read
    assert s.edit_state(lambda d: d["resources"][-1]["inputs"].pop("delete")) is not None
    assert "KEY" not in st.imported_text and "undo" not in st.imported_text and "ciphertext" in st.imported_text
    assert "delete" not in st.dep["resources"][-1]["inputs"]
    assert s.edit_state(lambda d: None) is None and st.calls.count("import") == 1  # nothing changed: no import


def test_clearing_pending_operations_goes_through_the_encrypted_export():
    s, st = session()
    st.dep["pending_operations"] = [{"type": "creating", "resource": {"urn": "a"}}]
    assert s.clear_pending_operations() == 1
    assert st.dep["pending_operations"] == [] and "export" not in st.calls
    assert s.clear_pending_operations() == 0 and st.calls.count("import") == 1


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


# ----------------------------------------------------------------- the update's closing reads from its events


def _event(summary=None, stack_outputs=None):
    ev = SimpleNamespace(summary_event=None, res_outputs_event=None)
    if summary is not None:
        ev.summary_event = SimpleNamespace(resource_changes=summary)
    if stack_outputs is not None:
        md = SimpleNamespace(type="pulumi:pulumi:Stack", new=SimpleNamespace(parent=None, outputs=stack_outputs))
        ev.res_outputs_event = SimpleNamespace(metadata=md)
    return ev


class SdkLikeStack(FakeStack):
    """Like the Automation API's Stack: up/refresh/destroy send their events, then read the outputs
    (`stack output` x2) and the history, each a CLI process here counted in `calls`."""

    def __init__(self, outputs):
        super().__init__()
        self.events_outputs = outputs

    def outputs(self):
        self.calls.append("outputs")
        return {}

    def info(self, show_secrets=True):
        self.calls.append("history")
        return SimpleNamespace(resource_changes={"same": 2})

    def up(self, on_event=None, **kw):
        self.calls.append("up")
        on_event(_event(stack_outputs=self.events_outputs))
        on_event(_event(summary={"same": 3, "update": 1}))
        return SimpleNamespace(summary=self.info(), outputs=self.outputs(), stdout="", stderr="")

    def destroy(self, on_event=None, **kw):
        self.calls.append("destroy")
        on_event(_event(summary={"delete": 4}))
        return SimpleNamespace(summary=self.info(), stdout="", stderr="")

    def preview(self, on_event=None, **kw):
        self.calls.append("preview")
        on_event(_event(stack_outputs={"planned": 1}))
        return SimpleNamespace(change_summary={"create": 1}, stdout="", stderr="")


def test_an_update_reads_no_outputs_or_history_after_it():
    st = SdkLikeStack({"head_ip": "10.0.0.2", "nodes": [{"name": "head"}]})
    s = StackSession(SimpleNamespace(), st)
    seen = []
    r = s.up(on_event=seen.append)
    assert r.ok and r.changes == {"same": 3, "update": 1}  # the summary event's counts
    assert len(seen) == 2  # the caller's handler sees every event
    assert s.outputs() == s.public_outputs() == {"head_ip": "10.0.0.2", "nodes": [{"name": "head"}]}
    assert st.calls == ["up"]  # no `stack output`, no `stack history`, no export
    assert "outputs" not in vars(st) and "info" not in vars(st)  # the stack's own methods again
    assert st.info().resource_changes == {"same": 2}


def test_with_a_secret_output_the_public_ones_come_from_the_events_and_the_secret_from_the_export():
    enc = {SIG_KEY: SECRET_SIG, "ciphertext": "v1:abc"}
    st = SdkLikeStack({"head_ip": "10.0.0.2", "ssh_private_key": enc})
    st.dep = {"resources": [root({"head_ip": "10.0.0.2", "ssh_private_key": secret("KEY")})]}
    s = StackSession(SimpleNamespace(), st)
    s.up()
    assert s.public_outputs() == {"head_ip": "10.0.0.2"}
    assert st.calls == ["up"]
    assert s.outputs() == {"head_ip": "10.0.0.2", "ssh_private_key": "KEY"}
    assert st.calls == ["up", "export"]


def test_a_secret_inside_a_public_output_reads_the_export():
    enc = {SIG_KEY: SECRET_SIG, "ciphertext": "v1:abc"}
    st = SdkLikeStack({"nodes": {"head": {"token": enc}}})
    st.dep = {"resources": [root({"nodes": {"head": {"token": secret("t")}}, "key": secret("K")})]}
    s = StackSession(SimpleNamespace(), st)
    s.up()
    assert s.public_outputs() == {"nodes": {"head": {"token": "t"}}}  # `key` is secret as a whole
    assert st.calls == ["up", "export"]


def test_without_events_the_update_falls_back_to_the_history():
    class Quiet(SdkLikeStack):
        def up(self, on_event=None, **kw):
            self.calls.append("up")
            return SimpleNamespace(summary=self.info(), outputs=self.outputs(), stdout="", stderr="")

    st = Quiet({})
    s = StackSession(SimpleNamespace(), st)
    assert s.up().changes == {"same": 2}
    assert st.calls == ["up", "history"]  # read once after the update, not inside it
    assert s.outputs() == {"nodes": {"head": "10.0.0.2"}} and st.calls[-1] == "export"


def test_destroy_and_preview_take_their_counts_from_the_events_and_keep_no_outputs():
    st = SdkLikeStack({"a": 1})
    s = StackSession(SimpleNamespace(), st)
    assert s.destroy().changes == {"delete": 4}
    assert s.preview().changes == {"create": 1}
    assert st.calls == ["destroy", "preview"]
    assert s.outputs() == {"nodes": {"head": "10.0.0.2"}}  # a preview's planned outputs are not the state's
    assert st.calls[-1] == "export"


def test_a_failed_update_leaves_the_stack_methods_as_they_were():
    from pulumi import automation as auto

    class Failing(SdkLikeStack):
        def up(self, on_event=None, **kw):
            raise auto.CommandError(SimpleNamespace(stdout="", stderr="error: boom", code=1))

    st = Failing({})
    st.info = marker = lambda show_secrets=True: "own"  # an attribute of the instance before: kept
    s = StackSession(SimpleNamespace(), st)
    r = s.up()
    assert not r.ok and "boom" in r.error
    assert st.info is marker and "outputs" not in vars(st)


def test_reads_before_an_update_decrypt_nothing_until_a_secret_is_asked_for():
    s, st = session()
    st.dep = {"resources": [root({"head_ip": "10.0.0.2", "key": secret("K")}), {"urn": "a"}],
              "pending_operations": []}
    assert s.public_outputs() == {"head_ip": "10.0.0.2"}
    assert s.pending_operations() == [] and s.outdated_phases() == 0
    assert s.public_deployment()["resources"][1] == {"urn": "a"}
    assert st.calls == ["export (no secrets)"]  # one read, no passphrase key derivation
    assert s.outputs() == {"head_ip": "10.0.0.2", "key": "K"}  # a secret: the export with secrets
    assert s.public_outputs() == {"head_ip": "10.0.0.2"}
    assert st.calls == ["export (no secrets)", "export"]
    s.up()
    s.public_deployment()
    assert st.calls[-1] == "export (no secrets)"  # the update dropped both
