"""StackSession reads the state's outputs and export once per session, and drops them when the state
changes through it; set_meta writes only a value that differs (a no-op `launch` writes no config)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from styx.app.session import StackSession


class Value:
    def __init__(self, value):
        self.value = value


class FakeStack:
    def __init__(self):
        self.name = "s"
        cmd = SimpleNamespace(command="pulumi", version=None)
        self.workspace = SimpleNamespace(pulumi_command=cmd, remove_stack=lambda n: None)
        self.calls: list[str] = []
        self.outs = {"nodes": {"head": "10.0.0.2"}}
        self.dep = {"resources": [{"urn": "a"}], "pending_operations": []}
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


def session() -> tuple[StackSession, FakeStack]:
    st = FakeStack()
    return StackSession(SimpleNamespace(), st), st


def test_outputs_and_export_are_read_once_and_copied():
    s, st = session()
    assert s.outputs() == s.outputs() == {"nodes": {"head": "10.0.0.2"}}
    s.outputs()["nodes"]["head"] = "edited"  # a caller's edit does not reach the next caller
    dep = s.deployment()
    dep["resources"].clear()
    assert s.deployment()["resources"] == [{"urn": "a"}]
    assert s.outdated_phases() == 0 and s.pending_operations() == []
    assert st.calls == ["outputs", "export"]


def test_an_update_refresh_or_import_drops_them():
    s, st = session()
    s.outputs(), s.deployment()
    s.up()
    assert s.outputs() == {"nodes": {"head": "10.0.0.3"}}  # the update's own outputs, no second read
    assert st.calls.count("outputs") == 1
    s.refresh()
    assert s.deployment()["resources"] == []
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


def test_a_session_opened_again_takes_the_first_ones_reads():
    first, st = session()
    first.outputs(), first.deployment()
    again = StackSession(first.engine, st)
    again.share_state_reads(first)
    assert again.outdated_phases() == 0 and again.outputs() == {"nodes": {"head": "10.0.0.2"}}
    assert st.calls == ["outputs", "export"]
    other = StackSession(SimpleNamespace(), st)  # another engine (backend): reads its own
    other.share_state_reads(first)
    other.deployment()
    assert st.calls == ["outputs", "export", "export"]
