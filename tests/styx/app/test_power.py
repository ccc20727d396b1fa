"""styx.app.power: the stopped-state record, stopped time and its cost, and the refusals made before
any machine is touched (unknown node, a cloud that cannot stop, spot nodes)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from styx.app import power
from styx.app.project import StyxError

T0 = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
OUTPUTS = {"nodes": [{"name": "head", "role": "head"}, {"name": "worker-0", "role": "worker"}]}


class FakeSession:
    name = "ssx"

    def __init__(self, meta=None):
        self._meta = dict(meta or {})

    def meta(self):
        return dict(self._meta)

    def set_meta(self, key, value):
        self._meta[key] = value


class FakeBackend:
    def __init__(self):
        self.calls = []

    def stop_machines(self, cluster, nodes):
        self.calls.append(("stop", list(nodes)))

    def start_machines(self, cluster, nodes):
        self.calls.append(("start", list(nodes)))


def test_intervals_and_credit():
    rec = power.mark_stopped(power.record({}), ["head", "worker-0"], "2026-12-02T04:00:00Z")
    rec = power.mark_started(rec, ["worker-0"], "2026-12-02T04:30:00Z")
    meta = {power.META_KEY: rec}
    assert power.stopped_nodes(meta) == {"head": "2026-12-02T04:00:00Z"}
    now = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    assert power.stopped_seconds(meta, now) == {"head": 3600.0, "worker-0": 1800.0}
    pricing = {"nodes": [{"node": "head", "price_per_hour": 2.0}, {"node": "worker-0", "price_per_hour": 1.0}]}
    assert power.stopped_credit(pricing, meta, now) == pytest.approx(2.5)
    assert power.stopped_credit(None, meta, now) == 0.0


def test_stop_then_start_records_and_orders(monkeypatch):
    fb = FakeBackend()
    monkeypatch.setattr(power, "_backend", lambda cluster: fb)
    s = FakeSession()
    cluster = {"name": "ssx", "cloud": "local", "workers": [{"name": "worker", "count": 1}]}
    assert power.stop(s, OUTPUTS, cluster, None, lambda m: None, now=T0) == ["worker-0", "head"]
    assert fb.calls == [("stop", ["worker-0"]), ("stop", ["head"])]  # workers first, the head last
    assert power.stop(s, OUTPUTS, cluster, None, lambda m: None) == []  # already stopped: nothing done
    assert power.start_machines(s, OUTPUTS, cluster, None, lambda m: None, now=T0) == ["head", "worker-0"]
    assert fb.calls[-2:] == [("start", ["head"]), ("start", ["worker-0"])]
    assert power.stopped_nodes(s.meta()) == {}
    assert len(power.record(s.meta())["intervals"]) == 2


def test_refusals_before_anything_is_touched(monkeypatch):
    fb = FakeBackend()
    s = FakeSession()
    with pytest.raises(StyxError, match=r"--node gpu-9: no such node; nodes: head, worker-0"):
        power.stop(s, OUTPUTS, {"name": "ssx", "cloud": "local"}, ["gpu-9"], lambda m: None)
    with pytest.raises(StyxError, match=r"styx:cluster.cloud: ssh machines cannot be stopped"):
        power.stop(s, OUTPUTS, {"name": "ssx", "cloud": "ssh", "head": {"host": "10.0.0.1"}}, None, lambda m: None)
    monkeypatch.setattr(power, "_backend", lambda cluster: fb)
    spot = {"name": "ssx", "cloud": "local", "workers": [{"name": "worker", "count": 1, "spot": True}]}
    with pytest.raises(StyxError, match=r"worker-0: spot instances cannot be stopped"):
        power.stop(s, OUTPUTS, spot, None, lambda m: None)
    assert power.stop(s, OUTPUTS, spot, ["head"], lambda m: None, now=T0) == ["head"]  # the rest can
    assert fb.calls == [("stop", ["head"])]


def test_drift_does_not_dial_stopped_nodes(monkeypatch):
    from styx.app import api, remote
    from styx.app import drift as dr

    meta = {power.META_KEY: {"stopped": {"worker-0": "2026-12-02T04:00:00Z"}}}
    s = FakeSession(meta)
    s.deployment = lambda: {}
    monkeypatch.setattr(remote, "load", lambda stack, backend: (s, OUTPUTS, {"name": "ssx", "cloud": "local"}))
    seen = {}

    class Checked(Exception):
        pass

    def check(stack, dep, outputs, cluster, *, nodes, **kw):
        seen["nodes"] = nodes
        raise Checked

    monkeypatch.setattr(dr, "check", check)
    with pytest.raises(Checked):
        api.drift("ssx")
    assert seen["nodes"] == ["head"]
    with pytest.raises(StyxError, match=r"worker-0 of ssx stopped .*nothing to check"):
        api.drift("ssx", nodes=["worker-0"])
