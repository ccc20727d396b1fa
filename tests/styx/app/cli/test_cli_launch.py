"""`styx launch` against the fake engine: config sources, progress, JSON, failover, cancel, pending ops."""

from __future__ import annotations

import json

import pytest
from cli_fakes import capacity_in, local_cluster
from click.testing import CliRunner

from styx.app.cli import main
from styx.app.session import OpResult


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_launch_from_a_cluster_file_json(fake_engine, cluster_file):
    r = run("launch", str(cluster_file()), "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["ok"] is True and body["stack"] == "demo" and body["cluster"] == "demo"
    assert body["placement"] == {"cloud": "local", "region": None, "zone": "zone-a"}
    assert [a["result"] for a in body["attempts"]] == ["ok"]
    assert "ssh_private_key" not in body["outputs"]  # never printed
    assert body["outputs"]["head_ip"] == "10.78.0.2"
    assert body["phases"]["head"]["custom-hello"] == "done"
    assert body["pricing"]["per_hour"] == 0.0
    # progress went to stderr, stdout is only the JSON document
    assert "launching demo" in r.stderr
    st = fake_engine.stacks["demo"]
    meta = st.meta()
    assert meta["styx:launched_at"] and meta["styx:pricing"]["nodes"][0]["instance_type"] == "sandbox"
    assert meta["styx:placement"]["zone"] == "zone-a"


def test_launch_human_output_has_a_line_per_phase_change(fake_engine, cluster_file):
    r = run("launch", str(cluster_file()))
    assert r.exit_code == 0, r.output
    assert "is up" in r.stdout and "head 10.78.0.2" in r.stdout
    assert "head" in r.stderr and "custom-hello" in r.stderr and "done" in r.stderr
    assert "worker-0" in r.stderr and "provision" in r.stderr


def test_second_launch_resumes_nothing_is_rerun(fake_engine, cluster_file):
    f = str(cluster_file())
    assert run("launch", f).exit_code == 0
    r = run("launch", f, "--json")
    body = json.loads(r.stdout)
    assert set(body["phases"]["head"].values()) == {"unchanged"}
    assert body["changes"] == {"same": 6}


def test_launch_from_a_stack_file_takes_its_stack_name(fake_engine, cluster_file):
    r = run("launch", str(cluster_file(stack_file="dev")), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["stack"] == "dev"
    assert "dev" in fake_engine.stacks


def test_launch_with_flags_makes_a_quick_cluster(fake_engine):
    r = run("launch", "--name", "quick", "--workers", "2", "--no-ray", "--subnet", "10.78.9.0/24",
            "--stack", "q1", "--json")
    assert r.exit_code == 0, r.output
    c = fake_engine.stacks["q1"].cluster()
    assert c["cloud"] == "local" and c["workers"] == [{"name": "worker", "count": 2}]
    assert c["setup"]["ray"]["enabled"] is False and c["local"]["subnet"] == "10.78.9.0/24"
    assert len(json.loads(r.stdout)["outputs"]["nodes"]) == 3


def test_launch_with_only_stack_reapplies_the_stored_config(fake_engine, cluster_file):
    assert run("launch", str(cluster_file()), "--stack", "s1").exit_code == 0
    r = run("launch", "--stack", "s1", "--json")
    assert r.exit_code == 0, r.output
    assert len(fake_engine.stacks["s1"].ups) == 2


def test_launch_bad_config_exits_2_naming_key_paths(fake_engine, cluster_file):
    bad = local_cluster()
    bad["workers"][0]["count"] = -1
    bad["setup"]["nope"] = 1
    r = run("launch", str(cluster_file(bad)))
    assert r.exit_code == 2
    assert "styx:cluster.workers[0].count" in r.stderr and "styx:cluster.setup.nope" in r.stderr
    assert fake_engine.stacks == {}
    rj = run("launch", str(cluster_file(bad)), "--json")
    assert rj.exit_code == 2
    body = json.loads(rj.stdout)
    assert body["ok"] is False and body["exit_code"] == 2 and len(body["problems"]) == 2


def test_launch_missing_file_is_usage_error(fake_engine):
    r = run("launch", "/nonexistent/cluster.yaml")
    assert r.exit_code == 2


def test_capacity_failover_to_the_next_local_zone(fake_engine, cluster_file):
    fake_engine.default_up = capacity_in({"zone-a"})
    r = run("launch", str(cluster_file()), "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert [a["result"] for a in body["attempts"]] == ["capacity", "ok"]
    assert body["attempts"][0]["blocked"] == ["local/zone-a"]
    assert body["placement"]["zone"] == "zone-b"
    ups = fake_engine.stacks["demo"].ups
    assert [u.get("zone") for u in ups] == [None, "zone-b"]
    assert "InsufficientCapacity" in r.stderr and "blocked" in r.stderr


def test_capacity_everywhere_fails_with_exit_1(fake_engine, cluster_file):
    fake_engine.default_up = capacity_in({"zone-a", "zone-b"})
    r = run("launch", str(cluster_file()), "--json")
    assert r.exit_code == 1
    body = json.loads(r.stdout)
    assert body["ok"] is False and "no capacity left" in body["error"]
    assert [a["result"] for a in body["attempts"]] == ["capacity", "capacity"]


def test_no_failover_stops_at_the_first_capacity_error(fake_engine, cluster_file):
    fake_engine.default_up = capacity_in({"zone-a"})
    r = run("launch", str(cluster_file()), "--no-failover")
    assert r.exit_code == 1
    assert len(fake_engine.stacks["demo"].ups) == 1
    assert "failed: head / provision" in r.stderr and "InsufficientCapacity" in r.stderr


def test_retry_until_up_starts_over(fake_engine, cluster_file, monkeypatch):
    import time

    sleeps = []
    monkeypatch.setattr(time, "sleep", lambda s: sleeps.append(s))
    # round 1: both zones full; round 2: zone-a has room
    fake_engine.up_fns = [capacity_in({"zone-a", "zone-b"}), capacity_in({"zone-a", "zone-b"})]
    r = run("launch", str(cluster_file()), "--retry-until-up", "--retry-interval", "7", "--json")
    assert r.exit_code == 0, r.output
    assert sleeps == [7]
    assert [a["result"] for a in json.loads(r.stdout)["attempts"]] == ["capacity", "capacity", "ok"]


def test_retry_until_up_gives_up_after_max_rounds(fake_engine, cluster_file, monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda s: None)
    fake_engine.default_up = capacity_in({"zone-a", "zone-b"})
    r = run("launch", str(cluster_file()), "--retry-until-up", "--max-rounds", "2")
    assert r.exit_code == 1
    assert len(fake_engine.stacks["demo"].ups) == 4


def test_a_failing_phase_prints_its_output_tail(fake_engine, cluster_file):
    from cli_fakes import REMOTE_T, diag, failed, pre, urn

    def up(st, on_event):
        u = urn(st.name, REMOTE_T, "demo-worker-0-custom-hello")
        for e in (pre(u), diag(u, "line one\nline two"), diag(u, "exit status 3: boom", "error"), failed(u)):
            on_event(e)
        return OpResult(False, error="error: update failed")

    fake_engine.default_up = up
    r = run("launch", str(cluster_file()), "--json")
    assert r.exit_code == 1
    body = json.loads(r.stdout)
    assert body["failures"][0]["node"] == "worker-0" and body["failures"][0]["phase"] == "custom-hello"
    assert body["failures"][0]["tail"][-2:] == ["line two", "exit status 3: boom"]
    assert [a["result"] for a in body["attempts"]] == ["failed"]


def test_cancelled_launch_says_how_to_resume(fake_engine, cluster_file):
    fake_engine.default_up = lambda st, on_event: OpResult(False, error="error: update canceled", cancelled=True)
    r = run("launch", str(cluster_file()), "--json")
    assert r.exit_code == 1
    body = json.loads(r.stdout)
    assert "cancelled" in body["error"] and "again to resume" in body["error"]
    assert body["attempts"][0]["result"] == "cancelled"


def test_pending_operations_need_consent(fake_engine, cluster_file):
    f = str(cluster_file())
    assert run("launch", f).exit_code == 0
    st = fake_engine.stacks["demo"]
    st.pending = [{"type": "creating", "resource": {"urn": "urn:pulumi:demo::styx::x::demo-head-ray"}}]
    r = run("launch", f)  # stdin is not a terminal: refuse
    assert r.exit_code == 1 and "--yes" in r.stderr and "demo-head-ray" in r.stderr
    assert st.pending
    r = run("launch", f, "--yes")
    assert r.exit_code == 0, r.output
    assert st.pending == [] and "dropped 1 pending operation" in r.stderr


@pytest.mark.parametrize("flag", [["--cloud", "local", "--name", "x", "--workers", "0"]])
def test_launch_without_workers(fake_engine, flag):
    r = run("launch", *flag, "--no-ray", "--json")
    assert r.exit_code == 0, r.output
    assert [n["name"] for n in json.loads(r.stdout)["outputs"]["nodes"]] == ["head"]


def test_stale_lock_is_removed_with_consent_live_lock_refuses(fake_engine, cluster_file):
    f = str(cluster_file())
    assert run("launch", f).exit_code == 0
    st = fake_engine.stacks["demo"]
    st.lock_list = [{"pid": 123, "hostname": "h", "timestamp": "t", "path": "/x", "stale": False}]
    r = run("launch", f, "--yes")
    assert r.exit_code == 1 and "locked by pid 123" in r.stderr
    st.lock_list[0]["stale"] = True
    st.pending = [{"type": "creating", "resource": {"urn": "u"}}]
    r = run("launch", f)
    assert r.exit_code == 1 and "stale lock of pid 123" in r.stderr and st.lock_list
    r = run("launch", f, "--yes")
    assert r.exit_code == 0, r.output
    assert st.lock_list == [] and st.pending == [] and "removed 1 stale lock" in r.stderr


def test_relaunch_stays_in_the_zone_it_failed_over_to(fake_engine, cluster_file):
    f = str(cluster_file())
    fake_engine.default_up = capacity_in({"zone-a"})
    assert run("launch", f).exit_code == 0
    fake_engine.default_up = capacity_in(set())  # zone-a has room again: the running cluster does not move
    r = run("launch", f, "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["placement"]["zone"] == "zone-b" and [a["result"] for a in body["attempts"]] == ["ok"]
    assert set(body["phases"]["head"].values()) == {"unchanged"}


def test_keep_placement_for_clouds():
    from styx.app.failover import keep_placement

    user = {"name": "g", "cloud": "aws", "head": {"instance_type": "auto", "resources": {"accelerators": "A100:8"}}}
    stored = {"name": "g", "cloud": "aws", "region": "us-west-2", "zone": "usw2-az1",
              "head": {"instance_type": "p4d.24xlarge", "resources": {"accelerators": "A100:8"}}}
    kept = keep_placement(user, stored)
    assert kept["region"] == "us-west-2" and kept["zone"] == "usw2-az1"
    assert kept["head"]["instance_type"] == "p4d.24xlarge"
    changed = {**user, "head": {"instance_type": "auto", "resources": {"accelerators": "H100:8"}}}
    assert keep_placement(changed, stored)["head"]["instance_type"] == "auto"  # a new request is re-optimized
    assert keep_placement({**user, "region": "us-east-1"}, stored)["region"] == "us-east-1"  # the user's pin wins
    assert keep_placement(user, None) == user
