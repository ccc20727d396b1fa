"""Autostop on the operator side: the backend's record reconciled once into the stack's power record
(status, cost credit, launch), `styx autostop`'s targets (the head's phase and the backend's helpers
only) and its refusals, and the status text."""

from __future__ import annotations

import pytest

from styx.app import api, power
from styx.app.project import StyxError

CLUSTER = {"name": "as1", "cloud": "local", "workers": [{"name": "worker", "count": 1}],
           "setup": {"autostop": {"idle_minutes": 1}}}
OUTPUTS = {"nodes": [{"name": "head", "role": "head"}, {"name": "worker-0", "role": "worker"}]}
STACK = "urn:pulumi:as1::styx::"


def _wrapper(phase: str, node: str) -> str:
    return f"exec bash -c WRAPPER styx {phase} {node} 120 create"


DEPLOYMENT = {"resources": [
    {"urn": STACK + "styx:index:Cluster::as1", "type": "styx:index:Cluster"},
    {"urn": STACK + "styx:index:Cluster$command:local:Command::as1-network", "type": "command:local:Command"},
    {"urn": STACK + "styx:index:Cluster$styx:index:Node$command:remote:Command::as1-head-ray",
     "type": "command:remote:Command", "inputs": {"create": _wrapper("ray", "head")}},
    {"urn": STACK + "styx:index:Cluster$styx:index:Node$command:remote:Command::as1-worker-0-ray",
     "type": "command:remote:Command", "inputs": {"create": _wrapper("ray", "worker-0")}},
]}


class FakeSession:
    name = "as1"

    def __init__(self, meta=None, cluster=None):
        self._meta = dict(meta or {})
        self._cluster = cluster or CLUSTER
        self.up_options = {}
        self.set_clusters = []
        self.ups = []

    def meta(self):
        return dict(self._meta)

    def set_meta(self, key, value):
        self._meta[key] = value

    def cluster(self):
        return self._cluster

    def set_cluster(self, c):
        self.set_clusters.append(c)
        self._cluster = c

    def outputs(self):
        return OUTPUTS

    def deployment(self):
        return DEPLOYMENT

    def base_dir(self):
        return None

    def bind_program(self, base_dir=None):
        pass


def _record(monkeypatch, rec):
    from styx.components.backends.local import LocalBackend

    monkeypatch.setattr(LocalBackend, "autostop_record", lambda self, cluster: rec)


def test_reconcile_marks_the_nodes_stopped_once(monkeypatch):
    s = FakeSession()
    _record(monkeypatch, None)
    assert power.reconcile_autostop(s, CLUSTER) is None and s.meta() == {}
    _record(monkeypatch, {"at": "2026-12-02T10:00:00Z", "action": "stop", "nodes": ["worker-0", "head"]})
    said = []
    done = power.reconcile_autostop(s, CLUSTER, said.append)
    assert done == {"at": "2026-12-02T10:00:00Z", "action": "stop", "nodes": ["worker-0", "head"]}
    assert power.stopped_nodes(s.meta()) == {"worker-0": "2026-12-02T10:00:00Z", "head": "2026-12-02T10:00:00Z"}
    assert said == ["as1: stopped by autostop at 2026-12-02T10:00:00Z (worker-0, head)"]
    # started again: the same record is not applied twice, and autostop is history
    rec = power.mark_started(power.record(s.meta()), ["head", "worker-0"], "2026-12-02T11:00:00Z")
    s.set_meta(power.META_KEY, rec)
    assert power.reconcile_autostop(s, CLUSTER) is None
    assert power.stopped_nodes(s.meta()) == {}
    assert len(power.record(s.meta())["intervals"]) == 2  # the credit counts the stopped hour
    # a later autostop is a new record
    _record(monkeypatch, {"at": "2026-12-02T12:00:00Z", "action": "down", "nodes": ["worker-0", "head"]})
    assert power.reconcile_autostop(s, CLUSTER)["action"] == "down"


def test_reconcile_skips_clouds_without_autostop():
    s = FakeSession()
    assert power.reconcile_autostop(s, {"name": "x", "cloud": "ssh"}) is None
    assert power.reconcile_autostop(s, {"name": "x", "cloud": "nope"}) is None
    assert s.meta() == {}


def test_targets_are_the_heads_phase_and_the_reaper_only():
    assert api.autostop_targets(DEPLOYMENT, CLUSTER) == [
        STACK + "styx:index:Cluster$styx:index:Node$command:remote:Command::as1-head-autostop",
        STACK + "styx:index:Cluster$command:local:Command::as1-autostop-reaper",
    ]


def test_on_a_cloud_every_workers_follower_is_a_target_too():
    aws = {"name": "as1", "cloud": "aws", "region": "us-east-1", "head": {"instance_type": "m6i.large"},
           "workers": [{"name": "worker", "count": 1, "instance_type": "m6i.large"}],
           "aws": {"ssh_cidrs": ["10.0.0.0/8"]}, "setup": {"autostop": {"idle_minutes": 5}}}
    assert api.autostop_targets(DEPLOYMENT, aws) == [
        STACK + "styx:index:Cluster$styx:index:Node$command:remote:Command::as1-head-autostop",
        STACK + "styx:index:Cluster$styx:index:Node$command:remote:Command::as1-worker-0-autostop",
    ]


def _run(monkeypatch, s, **kw):
    import styx.app.remote as remote

    monkeypatch.setattr(remote, "load", lambda stack, backend: (s, s.outputs(), s.cluster()))
    seen = {}

    class Result:
        ok, changes, error = True, {"update": 1}, None

    def run_update(session, tracker, title, op):
        seen.update(title=title, op=op, options=dict(session.up_options))
        return Result(), None

    r = api.autostop("as1", run_update=run_update, on_info=lambda m: None, **kw)
    return r, seen


def test_styx_autostop_sets_the_config_and_updates_only_its_targets(monkeypatch):
    s = FakeSession()
    r, seen = _run(monkeypatch, s, idle_minutes=30, down=True)
    assert r.autostop == {"idle_minutes": 30, "down": True}
    assert s.set_clusters[-1]["setup"]["autostop"] == {"idle_minutes": 30, "down": True}
    assert seen["op"] == "up" and seen["options"] == {"target": r.targets} and len(r.targets) == 2
    assert "replace" not in seen["options"]
    assert s.up_options == {}
    r, seen = _run(monkeypatch, s, off=True)
    assert r.autostop is None and "autostop" not in s.set_clusters[-1]["setup"]
    assert seen["options"]["target"] == r.targets  # the phase and reaper are deleted (their undos run)


def test_styx_autostop_refusals(monkeypatch, capsys):
    off = {**CLUSTER, "setup": {}}
    with pytest.raises(StyxError, match="--idle-minutes: required"):
        _run(monkeypatch, FakeSession(cluster=off))
    with pytest.raises(StyxError, match="--off: give no"):
        _run(monkeypatch, FakeSession(), off=True, idle_minutes=3)
    stopped = FakeSession(meta={power.META_KEY: {"stopped": {"head": "x"}}})
    with pytest.raises(StyxError, match="is stopped: run `styx start"):
        _run(monkeypatch, stopped, idle_minutes=3)
    ssh = {"name": "as1", "cloud": "ssh", "head": {"host": "10.0.0.1"}}
    with pytest.raises(StyxError) as e:
        _run(monkeypatch, FakeSession(cluster=ssh), idle_minutes=3)
    assert e.value.code == 2
    assert any("setup.autostop: not supported for cloud ssh" in p for p in e.value.problems), e.value.problems


def test_status_text():
    from styx.app.cli.status import _autostop_text

    assert _autostop_text({"idle_minutes": 5, "idle_since": "T1"}, "s") == "after 5 idle min; idle since T1"
    assert _autostop_text({"idle_minutes": 5, "busy": "Ray job running"}, "s") == \
        "after 5 idle min; busy: Ray job running"
    t = _autostop_text({"stopped_at": "T2", "action": "down"}, "s")
    assert t.startswith("stopped by autostop at T2") and "styx down --stack s" in t
