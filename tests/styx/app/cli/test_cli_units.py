"""Units behind the CLI: URN mapping, progress tracking, failover placement, pricing, Ctrl-C forwarding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_fakes import REMOTE_T, SANDBOX_T, diag, failed, local_cluster, outs, pre, summary, urn

from styx.app import failover, pricing
from styx.app.cli.progress import CLUSTER_ROW, NameMap, PlanCollector, Tracker, split_urn
from styx.model.config import parse_cluster

# --------------------------------------------------------------------------- URNs


def test_split_urn():
    assert split_urn("urn:pulumi:s::styx::a:b:C$d:e:F::name-x") == ("a:b:C$d:e:F", "name-x")
    assert split_urn("garbage") == ("", "garbage")


def test_name_map_resolves_nodes_and_phases():
    m = NameMap("demo", ["head", "gpu-0", "gpu-1", "gpu-10"])
    assert m.resolve(urn("s", REMOTE_T, "demo-head-system_packages")) == ("head", "system_packages")
    assert m.resolve(urn("s", REMOTE_T, "demo-gpu-1-custom-hello")) == ("gpu-1", "custom-hello")
    assert m.resolve(urn("s", REMOTE_T, "demo-gpu-10-ray")) == ("gpu-10", "ray")
    assert m.resolve(urn("s", SANDBOX_T, "demo-gpu-0-sandbox")) == ("gpu-0", "provision")
    assert m.resolve(urn("s", "styx:index:Cluster$styx:index:Node$aws:ec2/instance:Instance", "demo-head")) == \
        ("head", "provision")
    assert m.resolve(urn("s", "styx:index:Cluster$command:local:Command", "demo-network")) == (CLUSTER_ROW,
                                                                                                 "network")
    assert m.resolve(urn("s", "styx:index:Cluster$styx:index:Node", "demo-head")) is None
    assert m.resolve(urn("s", "pulumi:pulumi:Stack", "styx-s")) is None
    assert m.resolve(urn("s", "pulumi:providers:command", "default")) is None


# --------------------------------------------------------------------------- tracker


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_tracker_follows_phases_elapsed_and_tails():
    clock = Clock()
    changes = []
    t = Tracker("demo", ["head", "worker-0"], clock=clock, on_change=lambda n, p: changes.append((n, p.name,
                                                                                                  p.status)))
    gate = urn("s", REMOTE_T, "demo-head-wait_ssh")
    ray = urn("s", REMOTE_T, "demo-head-ray")
    t.handle(pre(gate))
    clock.t = 103
    t.handle(outs(gate))
    t.handle(pre(ray))
    t.handle(diag(ray, "installing ray\ncollecting wheels"))
    clock.t = 110
    rows = {r["node"]: r for r in t.rows()}
    assert rows["head"] == {"node": "head", "phase": "ray", "status": "running", "done": 1, "elapsed_s": 10.0,
                            "tail": "collecting wheels"}
    assert rows["worker-0"]["status"] == "waiting"
    t.handle(diag(ray, "exit 1: pip failed", "error"))
    t.handle(failed(ray))
    t.handle(summary({"create": 2}))
    assert t.to_dict() == {"head": {"wait_ssh": "done", "ray": "failed"}}
    [f] = t.failures()
    assert f["node"] == "head" and f["phase"] == "ray" and f["error"] == "exit 1: pip failed"
    assert f["tail"] == ["installing ray", "collecting wheels", "exit 1: pip failed"]
    assert t.summary == {"create": 2}
    assert ("head", "ray", "failed") in changes and ("head", "wait_ssh", "done") in changes


def test_tracker_shows_a_replacement_once():
    seen = []
    t = Tracker("demo", ["head"], on_change=lambda n, p: seen.append((p.name, p.op, p.status)))
    u = urn("s", REMOTE_T, "demo-head-ray")
    for op in ("create-replacement", "replace", "delete-replaced"):
        t.handle(pre(u, op))
        t.handle(outs(u, op))
    assert seen == [("ray", "create-replacement", "running"), ("ray", "create-replacement", "done")]
    assert t.to_dict() == {"head": {"ray": "done"}}


def test_tracker_unchanged_phases_and_unknown_diagnostics():
    t = Tracker("demo", ["head"])
    u = urn("s", REMOTE_T, "demo-head-wait_ssh")
    t.handle(pre(u, "same"))
    t.handle(outs(u, "same"))
    t.handle(diag(None, "a global warning", "warning"))
    t.handle(diag(urn("s", "pulumi:pulumi:Stack", "styx-s"), "error: update failed", "error"))
    assert t.to_dict() == {"head": {"wait_ssh": "unchanged"}}
    assert t.failures() == []
    assert "a global warning" in t.messages and "error: update failed" in t.messages


def test_tracker_error_on_a_cluster_resource():
    t = Tracker("demo", ["head"])
    u = urn("s", "styx:index:Cluster$command:local:Command", "demo-network")
    t.handle(pre(u))
    t.handle(diag(u, "net-up failed", "error"))
    assert t.failures()[0]["node"] == CLUSTER_ROW


def test_render_table_does_not_crash():
    from rich.console import Console

    from styx.app.cli.progress import render_table

    t = Tracker("demo", ["head"])
    t.handle(pre(urn("s", REMOTE_T, "demo-head-wait_ssh")))
    con = Console(record=True, width=100)
    con.print(render_table(t, "x"))
    assert "wait_ssh" in con.export_text()


def test_plan_collector_folds_replacements():
    p = PlanCollector("demo", ["head"])
    u = urn("s", REMOTE_T, "demo-head-ray")
    p.handle(pre(u, "create-replacement"))
    p.handle(pre(u, "replace"))
    p.handle(pre(u, "delete-replaced"))
    p.handle(pre(urn("s", REMOTE_T, "demo-head-wait_ssh"), "same"))
    p.handle(pre(urn("s", REMOTE_T, "demo-head-custom-x"), "update"))
    assert p.plan == {"head": {"ray": "replace", "wait_ssh": "same", "custom-x": "update"}}
    [row] = p.compact()
    assert row["replace"] == ["ray"] and row["update"] == ["custom-x"] and row["same"] == ["wait_ssh"]


# --------------------------------------------------------------------------- failover


def test_capacity_errors_are_recognised():
    for msg in ("InsufficientCapacity: zone a has no capacity", "InsufficientInstanceCapacity: We currently do not",
                "ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                "QUOTA_EXCEEDED: Quota 'NVIDIA_A100_GPUS' exceeded", "VcpuLimitExceeded"):
        assert failover.is_capacity_error(msg), msg
    for msg in ("exit status 1", "permission denied", "", None):
        assert not failover.is_capacity_error(msg)


def test_local_next_placement_walks_the_zones():
    c = local_cluster()
    first = failover.next_placement(c, [])
    assert first["zone"] == "zone-a"
    nxt = failover.next_placement(c, ["local/zone-a"])
    assert nxt["zone"] == "zone-b" and c.get("zone") is None  # the input is not modified
    assert failover.next_placement(c, ["local/zone-a", "local/zone-b"]) is None
    parse_cluster(nxt)


def test_local_next_placement_moves_pinned_nodes_out_of_blocked_zones():
    c = local_cluster(zone="zone-b", local={"subnet": "10.78.0.0/24", "zones": ["zone-a", "zone-b", "zone-c"]})
    c["workers"][0]["zone"] = "zone-b"
    assert failover.next_placement(c, [])["zone"] == "zone-b"
    nxt = failover.next_placement(c, ["local/zone-b"])
    assert nxt["zone"] == "zone-a" and nxt["workers"][0]["zone"] == "zone-a"


def test_failed_place_from_the_message_or_the_node():
    c = local_cluster()
    assert failover.failed_place(c, "head", "InsufficientCapacity: zone zone-b has no capacity") == "local/zone-b"
    assert failover.failed_place(c, "worker-0", "InsufficientCapacity") == "local/zone-a"
    aws = {"name": "x", "cloud": "aws", "region": "us-east-1", "zone": "us-east-1a"}
    assert failover.failed_place(aws, "head", "InsufficientInstanceCapacity") == "aws/us-east-1/us-east-1a"
    assert failover.failed_place({"name": "x", "cloud": "gcp", "region": "us-central1"}, None,
                                 "QUOTA_EXCEEDED") == "gcp/us-central1"


def test_cloud_next_placement_uses_the_optimizer_blocklist():
    from pathlib import Path

    from styx.model.catalog import load_catalog

    data = Path(__file__).resolve().parents[2] / "model" / "catalog" / "data"
    if not data.is_dir():
        pytest.skip("optimizer test catalog not present")
    cat = load_catalog(data)
    c = {"name": "g", "cloud": "aws", "aws": {"ssh_cidrs": ["203.0.113.0/24"]},
         "head": {"instance_type": "auto", "resources": {"accelerators": "A100:8"}}}
    first = failover.next_placement(c, [], catalog_loader=lambda: cat)
    if first is None:
        pytest.skip("the test catalog has no aws A100:8")
    assert first["head"]["instance_type"] != "auto" and first["region"]
    place = failover.failed_place(first, "head", "InsufficientInstanceCapacity")
    second = failover.next_placement(c, [place], catalog_loader=lambda: cat)
    assert second is None or (second["region"], second.get("zone")) != (first["region"], first.get("zone"))
    assert failover.needs_initial_placement(c) and not failover.needs_initial_placement(local_cluster())


# --------------------------------------------------------------------------- pricing


def test_local_pricing_is_zero_and_per_node():
    rec = pricing.price_cluster(parse_cluster(local_cluster(workers=2)))
    assert rec["per_hour"] == 0.0 and rec["complete"] is True
    assert [(n["node"], n["instance_type"], n["zone"]) for n in rec["nodes"]] == [
        ("head", "sandbox", "zone-a"), ("worker-0", "sandbox", "zone-a"), ("worker-1", "sandbox", "zone-a")]


class _Offer:
    def __init__(self, region, zone, price, spot):
        self.region, self.zone, self.price, self.spot_price = region, zone, price, spot

    def price_for(self, spot):
        return self.spot_price if spot else self.price


class _Cat:
    def offers_of_type(self, cloud, itype):
        return {"p4d.24xlarge": [_Offer("us-east-1", "use1-az1", 32.77, 11.0),
                                 _Offer("us-west-2", "usw2-az1", 33.0, 12.0)]}.get(itype, [])


def test_cloud_pricing_from_the_catalog_at_launch():
    c = parse_cluster({"name": "g", "cloud": "aws", "region": "us-east-1", "aws": {"ssh_cidrs": ["10.0.0.0/8"]},
                       "head": {"instance_type": "p4d.24xlarge"},
                       "workers": [{"name": "w", "count": 2, "instance_type": "p4d.24xlarge", "spot": True},
                                   {"name": "x", "count": 1, "instance_type": "gone.type"}]})
    rec = pricing.price_cluster(c, catalog_loader=_Cat)
    by = {n["node"]: n for n in rec["nodes"]}
    assert by["head"]["price_per_hour"] == 32.77 and by["w-0"]["price_per_hour"] == 11.0
    assert by["x-0"]["price_per_hour"] is None and by["x-0"]["source"] == "not in catalog"
    assert rec["per_hour"] == round(32.77 + 22.0, 6) and rec["complete"] is False
    broken = pricing.price_cluster(c, catalog_loader=lambda: (_ for _ in ()).throw(RuntimeError("no catalog")))
    assert broken["per_hour"] == 0.0 and broken["nodes"][0]["source"] == "no catalog"


def test_price_history_and_cost_so_far():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a = pricing.record(None, {"per_hour": 2.0, "nodes": [], "priced_at": "x"}, now=t0)
    a2 = pricing.record(a, {"per_hour": 2.0, "nodes": [], "priced_at": "y"}, now=t0 + timedelta(hours=1))
    assert a2["history"] == a["history"] and a2["priced_at"] == "x"
    b = pricing.record(a2, {"per_hour": 5.0, "nodes": [], "priced_at": "z"}, now=t0 + timedelta(hours=2))
    assert [h["per_hour"] for h in b["history"]] == [2.0, 5.0]
    assert pricing.cost_so_far(b, t0, t0 + timedelta(hours=3)) == 2.0 * 2 + 5.0 * 1
    assert pricing.cost_so_far(None, t0) == 0.0
    assert pricing.cost_so_far({"per_hour": 1.0}, t0, t0 + timedelta(minutes=30)) == 0.5


# --------------------------------------------------------------------------- Ctrl-C forwarding


FAKE_PULUMI = textwrap.dedent("""\
    #!/usr/bin/env python3
    # stands in for the pulumi CLI: on SIGINT, "finish the current step", save, exit 255. Python, not bash:
    # it installs its handler even when started with SIGINT ignored (a test run in the background), as Go does
    import os, signal, sys, time
    mark = os.environ["MARK"]
    def on_int(*_):
        print("^C received; cancelling", file=sys.stderr, flush=True)
        time.sleep(0.2)
        with open(mark, "w") as f:
            f.write("saved\\n")
        sys.exit(255)
    signal.signal(signal.SIGINT, on_int)
    with open(mark + ".tmp", "w") as f:
        f.write("pgid=%d ppid=%d\\n" % (os.getpgrp(), os.getppid()))
    os.rename(mark + ".tmp", mark + ".info")
    print("running", flush=True)
    for _ in range(100):
        time.sleep(0.1)
    print("finished")
    """)


def test_runner_forwards_one_sigint_to_a_pulumi_in_its_own_session(tmp_path, monkeypatch):
    from pulumi.automation.errors import CommandError

    from styx.app.session import _Runner

    exe = tmp_path / "pulumi"
    exe.write_text(FAKE_PULUMI)
    exe.chmod(0o755)
    mark = tmp_path / "mark"

    class Base:
        command = str(exe)
        version = None

    r = _Runner(Base())
    errors = []

    def go():
        try:
            r.run(["up"], str(tmp_path), {"MARK": str(mark)})
        except CommandError as e:
            errors.append(e)

    th = threading.Thread(target=go)
    th.start()
    deadline = time.time() + 120
    while r.proc is None and time.time() < deadline:
        time.sleep(0.05)
    while not (tmp_path / "mark.info").exists() and time.time() < deadline:
        time.sleep(0.05)
    info = (tmp_path / "mark.info").read_text()
    assert f"pgid={os.getpgrp()}" not in info  # not in our process group: a terminal ^C does not reach it
    assert r.interrupt() is True
    th.join(120)
    assert not th.is_alive()
    assert mark.read_text().strip() == "saved"
    assert errors and "cancelling" in errors[0].result.stderr
    assert r.interrupts == 1 and r.proc is None
    assert r.interrupt() is False  # nothing running


def test_sigint_forwarding_context(monkeypatch):
    from styx.app.session import sigint_forwarding

    class S:
        n = 0

        def interrupt(self):
            self.n += 1
            return True

    s = S()
    seen = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when this test runs in a background job
    with sigint_forwarding(s, lambda n, fwd: seen.append((n, fwd))) as st:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert st["count"] == 2
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert seen == [(1, True), (2, True)] and s.n == 2
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("module", ["styx", "styx.app.cli"])
def test_python_m_styx_runs(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=False,
                       cwd=Path(__file__).resolve().parents[4])
    assert r.returncode == 0 and "launch" in r.stdout
