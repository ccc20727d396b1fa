"""styx.app.power: the stopped-state record, stopped time and its cost, and the refusals made before
any machine is touched (unknown node, a cloud that cannot stop, spot nodes)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from styx.app import power
from styx.app.project import StyxError
from styx.components.backends.base import Backend

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
    power_in_program = False
    can_stop = Backend.can_stop

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


# --------------------------------------------------------------------------- AWS / GCP: through the program

AWS = {"name": "ssx", "cloud": "aws", "region": "us-east-1", "head": {"instance_type": "m6i.large"},
       "workers": [{"name": "worker", "count": 1, "instance_type": "m6i.large"}], "aws": {"ssh_cidrs": ["10.0.0.0/8"]}}
PHASE = "command:remote:Command"


def _urn(chain, name):
    return f"urn:pulumi:ssx::styx::styx:index:Cluster$styx:index:Node${chain}::{name}"


def _deployment():
    res = []
    for n in ("head", "worker-0"):
        machine = _urn("aws:ec2/instance:Instance", f"ssx-{n}")
        res.append({"urn": machine, "type": "aws:ec2/instance:Instance"})
        res.append({"urn": _urn(PHASE, f"ssx-{n}-ray"), "type": PHASE, "deletedWith": machine,
                    "inputs": {"create": f"exec bash -c 'w' styx ray {n} 600 create"}})
    return {"resources": res}


class EngineSession(FakeSession):
    """The session calls a cloud stop/start makes: the state, one targeted `up`, a refresh."""

    def __init__(self, meta=None, ok=True):
        super().__init__(meta)
        self.ok, self.calls, self.up_options = ok, [], {}

    def deployment(self):
        return _deployment()

    def bind_program(self):
        self.calls.append(("bind",))

    def up(self, *a, **kw):
        from styx.app.session import OpResult

        # the program reads the record: it must be written before the update
        self.calls.append(("up", sorted(self.up_options.get("target", [])), sorted(stopped_now(self))))
        return OpResult(self.ok, error=None if self.ok else "InsufficientInstanceCapacity")

    def refresh(self, target=None):
        from styx.app.session import OpResult

        self.calls.append(("refresh", sorted(target or [])))
        return OpResult(True)


def stopped_now(s):
    return power.stopped_nodes(s.meta())


def test_cloud_stop_and_start_are_one_targeted_up_of_the_state_resources():
    s = EngineSession()
    assert power.stop(s, OUTPUTS, AWS, None, lambda m: None, now=T0) == ["worker-0", "head"]
    states = sorted(_urn("aws:ec2transitgateway/instanceState:InstanceState", f"ssx-{n}-power")
                    for n in ("head", "worker-0"))
    assert s.calls == [("bind",), ("up", states, ["head", "worker-0"])]
    assert s.up_options == {}
    s.calls.clear()
    assert power.start_machines(s, OUTPUTS, AWS, ["worker-0"], lambda m: None, now=T0) == ["worker-0"]
    # started, then the machine read back (a new public address)
    assert s.calls == [("bind",), ("up", [states[1]], ["head"]),
                       ("refresh", [_urn("aws:ec2/instance:Instance", "ssx-worker-0")])]
    assert power.record(s.meta())["intervals"] == [{"node": "worker-0", "from": "2026-12-02T04:00:00Z",
                                                    "to": "2026-12-02T04:00:00Z"}]


def test_cloud_stop_that_fails_keeps_the_old_record():
    s = EngineSession(ok=False)
    with pytest.raises(StyxError, match=r"stopping worker-0, head failed: InsufficientInstanceCapacity"):
        power.stop(s, OUTPUTS, AWS, None, lambda m: None, now=T0)
    assert stopped_now(s) == {}


def test_cloud_spot_refusals():
    aws_spot = {**AWS, "workers": [{"name": "worker", "count": 1, "instance_type": "m6i.large", "spot": True}]}
    with pytest.raises(StyxError, match=r"worker-0: spot instances cannot be stopped"):
        power.stop(EngineSession(), OUTPUTS, aws_spot, None, lambda m: None)
    gcp = {"name": "ssx", "cloud": "gcp", "region": "us-central1", "zone": "us-central1-a",
           "head": {"instance_type": "n2-standard-8"},
           "workers": [{"name": "worker", "count": 1, "instance_type": "n2-standard-8", "spot": True}],
           "gcp": {"ssh_cidrs": ["10.0.0.0/8"]}}
    with pytest.raises(StyxError, match=r"worker-0: spot VMs with gcp.spot_termination_action: DELETE"):
        power.stop(EngineSession(), OUTPUTS, gcp, None, lambda m: None)
    s = EngineSession()
    gcp_stop = {**gcp, "gcp": {**gcp["gcp"], "spot_termination_action": "STOP"}}
    assert power.stop(s, OUTPUTS, gcp_stop, ["worker-0"], lambda m: None, now=T0) == ["worker-0"]
    # GCP: the run state is the Instance's own desired_status
    assert s.calls[-1] == ("up", [_urn("aws:ec2/instance:Instance", "ssx-worker-0")], ["worker-0"])


def test_cloud_start_reruns_only_ray_without_dialing_old_addresses(monkeypatch):
    from styx.app import api, remote
    from styx.app import drift as dr

    s = EngineSession({power.META_KEY: {"stopped": {"head": "2026-12-02T04:00:00Z",
                                                   "worker-0": "2026-12-02T04:00:00Z"}}})
    monkeypatch.setattr(remote, "load", lambda stack, backend: (s, OUTPUTS, AWS))
    monkeypatch.setattr(api, "drift", lambda *a, **kw: pytest.fail("no SSH drift on a cloud start"))
    seen = {}

    def repair(stack, *, backend, report, on_info, run_update):
        seen["report"] = report
        return api.RepairResult(stack, True, [{"node": n.node, "phase": "ray"} for n in report.nodes], {}, {}, report)

    monkeypatch.setattr(api, "repair", repair)
    dep = _deployment()
    for r in dep["resources"]:
        if "inputs" in r:
            r["inputs"]["delete"] = "exec undo"
    s.deployment = lambda: dep
    s.edit_state = lambda edit: edit(dep) and seen.setdefault("imported", dep)
    out = api.start("ssx", on_info=lambda m: None)
    # the old Ray's undo would dial the old address: dropped for the started nodes
    assert [r["inputs"].get("delete") for r in seen["imported"]["resources"] if "inputs" in r] == [None, None]
    assert out.started == ["head", "worker-0"] and out.stopped == []
    assert [(n.node, [p.phase for p in n.drifted]) for n in seen["report"].nodes] == [("head", ["ray"]),
                                                                                       ("worker-0", ["ray"])]
    assert seen["report"].nodes[0].status == dr.DRIFTED


def test_down_of_a_stopped_cloud_cluster_does_not_start_it(monkeypatch):
    from styx.app import api

    s = EngineSession({power.META_KEY: {"stopped": {"head": "2026-12-02T04:00:00Z"}}})
    s.cluster = lambda: AWS
    s.remove = lambda: s.calls.append(("remove",))
    monkeypatch.setattr(api, "make_engine", lambda backend: None)
    monkeypatch.setattr(api, "open_stack", lambda engine, stack: s)
    monkeypatch.setattr(api, "repair_pending", lambda *a, **kw: None)
    monkeypatch.setattr(power, "start_machines", lambda *a, **kw: pytest.fail("a cloud down starts nothing"))
    from styx.app.session import OpResult

    said = []
    out = api.down("ssx", on_info=said.append, run_update=lambda session, tracker, title, op: (OpResult(True), 0))
    assert out.removed and ("remove",) in s.calls
    assert any("destroying its stopped machines as they are" in m for m in said)


# --------------------------------------------------------------------------- autostop on a cloud (the nodes shut down)

AWS_AUTO = {**AWS, "setup": {"autostop": {"idle_minutes": 5}}}


class ShutDownSession(EngineSession):
    """A cloud cluster whose machines in `down` shut themselves down: a refresh shows them stopped."""

    def __init__(self, down, meta=None, cluster=AWS_AUTO):
        super().__init__(meta)
        self.down, self._cluster, self.refreshed = set(down), cluster, False

    def cluster(self):
        return self._cluster

    def deployment(self):
        dep = _deployment()
        for r in dep["resources"]:
            if r["type"] == "aws:ec2/instance:Instance":
                n = r["urn"].rsplit("ssx-", 1)[1]
                r["outputs"] = {"instanceState": "stopped" if self.refreshed and n in self.down else "running"}
        return dep

    def refresh(self, target=None):
        self.refreshed = True
        return super().refresh(target)


def test_a_cloud_autostop_is_seen_by_a_refresh_and_recorded_once():
    s = ShutDownSession({"head", "worker-0"})
    said = []
    auto = power.reconcile_autostop(s, AWS_AUTO, said.append)
    assert auto["nodes"] == ["head", "worker-0"] and auto["action"] == "stop" and auto["synced"] is False
    assert s.calls == [("refresh", sorted(_urn("aws:ec2/instance:Instance", f"ssx-{n}") for n in ("head", "worker-0")))]
    assert set(stopped_now(s)) == {"head", "worker-0"} and "stopped by autostop" in said[0]
    s.calls.clear()
    assert power.reconcile_autostop(s, AWS_AUTO)["at"] == auto["at"]  # nothing left running: no refresh
    assert s.calls == []


def test_a_cloud_cluster_on_its_way_down_is_not_yet_autostopped():
    s = ShutDownSession({"worker-0"})  # the head shuts down last
    assert power.reconcile_autostop(s, AWS_AUTO) is None and stopped_now(s) == {}


def test_no_refresh_without_autostop():
    s = ShutDownSession({"head"}, cluster=AWS)
    assert power.reconcile_autostop(s, AWS) is None and s.calls == []


def test_starting_an_autostopped_cloud_cluster_records_the_stop_in_the_program_first():
    s = ShutDownSession({"head", "worker-0"})
    power.reconcile_autostop(s, AWS_AUTO)
    s.calls.clear()
    assert power.start_machines(s, OUTPUTS, AWS_AUTO, None, lambda m: None, now=T0) == ["head", "worker-0"]
    states = sorted(_urn("aws:ec2transitgateway/instanceState:InstanceState", f"ssx-{n}-power")
                    for n in ("head", "worker-0"))
    # 1. the run state follows the record (stopped: what the machines did themselves); 2. the start
    assert [c[:3] for c in s.calls if c[0] == "up"] == [("up", states, ["head", "worker-0"]), ("up", states, [])]
    assert power.record(s.meta())["autostop"]["synced"] is True and stopped_now(s) == {}


# --------------------------------------------------------------------------- the time autostop asked for the stop


def _autostop_session(line, *, at="2026-12-02T05:00:00Z", earlier=()):
    """A cloud cluster autostop stopped (styx saw it at `at`), started again at 06:00: its head's autostop phase
    ran again and said `line`."""
    intervals = [{"node": "head", "from": a, "to": b} for a, b in earlier]
    intervals += [{"node": n, "from": at, "to": "2026-12-02T06:00:00Z"} for n in ("head", "worker-0")]
    s = FakeSession({power.META_KEY: {"stopped": {}, "intervals": intervals,
                                      "autostop": {"at": at, "action": "stop", "nodes": ["head", "worker-0"]}}})
    dep = _deployment()
    dep["resources"].append({"urn": _urn(PHASE, "ssx-head-autostop"), "type": PHASE,
                             "inputs": {"create": "exec bash -c 'w' styx autostop head 600 create"},
                             "outputs": {"stdout": f"log line\n{line}\n"}})
    s.deployment = lambda: dep
    return s


STARTED = ("styx autostop: ok: watcher started (pid 7; idle 5 min, then stop; this machine shuts down; "
           "a check every 60 s)")


def test_the_time_autostop_requested_the_stop_replaces_when_styx_saw_it():
    s = _autostop_session(STARTED + "; requested before: stop 2026-12-02T04:40:00Z")
    now = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    seen_only = power.stopped_seconds(s.meta(), now)
    said = []
    assert power.autostop_requested_time(s, "head", said.append) == "2026-12-02T04:40:00Z"
    rec = power.record(s.meta())
    assert rec["autostop"]["at"] == "2026-12-02T04:40:00Z" and rec["autostop"]["seen_at"] == "2026-12-02T05:00:00Z"
    assert {i["node"]: i["from"] for i in rec["intervals"]} == {"head": "2026-12-02T04:40:00Z",
                                                               "worker-0": "2026-12-02T04:40:00Z"}
    # 20 more stopped minutes per node: credited in cost_so_far
    assert power.stopped_seconds(s.meta(), now) == {n: v + 1200.0 for n, v in seen_only.items()}
    assert "requested the stop at 2026-12-02T04:40:00Z" in said[0]
    assert power.autostop_requested_time(s, "head") is None  # once
    assert power.record(s.meta())["autostop"]["at"] == "2026-12-02T04:40:00Z"


@pytest.mark.parametrize("line", [
    STARTED,  # no request was left on the head
    STARTED + "; requested before: stop 2026-12-02T05:10:00Z",  # after styx saw the stop: not this one's
    STARTED + "; requested before: stop 2026-12-02T01:30:00Z",  # before an earlier stop ended: a stale one
    STARTED + "; requested before: down 2026-12-02T04:40:00Z",  # not a stop
    "styx autostop: skipped: watcher already running (pid 7; requested before: stop 2026-12-02T04:40:00Z)",
])
def test_a_request_time_that_does_not_fit_this_stop_is_not_taken(line):
    s = _autostop_session(line, earlier=[("2026-12-02T01:00:00Z", "2026-12-02T02:00:00Z")])
    before = s.meta()
    assert power.autostop_requested_time(s, "head") is None
    assert s.meta() == before


def test_a_cloud_start_after_autostop_reads_the_request_time(monkeypatch):
    from styx.app import api, remote

    at = "2026-12-02T05:00:00Z"
    s = EngineSession({power.META_KEY: {"stopped": {"head": at, "worker-0": at},
                                        "autostop": {"at": at, "action": "stop", "nodes": ["head", "worker-0"],
                                                     "synced": True}}})
    monkeypatch.setattr(remote, "load", lambda stack, backend: (s, OUTPUTS, AWS_AUTO))
    order = []
    monkeypatch.setattr(api, "repair", lambda stack, **kw: order.append("repair") or api.RepairResult(
        stack, True, [], {}, {}, kw["report"]))
    monkeypatch.setattr(power, "autostop_requested_time", lambda session, head, info: order.append(("read", head)))
    api.start("ssx", on_info=lambda m: None)
    assert order == ["repair", ("read", "head")]  # after the head's autostop phase ran again
