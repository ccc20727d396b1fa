"""setup.autostop in the program: the watcher phase on the head only (after Ray, with its undo), its
parameters, the local backend's host-side reaper, and the refusal on clouds that cannot autostop."""

from __future__ import annotations

import pytest
from mocking import local_cluster, run_program

from styx.components.backends import backend_class
from styx.components.phases import PHASES, NodeInfo, PhaseContext, script_text
from styx.model.config import parse_cluster

AUTO = {"idle_minutes": 7, "check_interval_s": 10}


def _cluster(**setup):
    return local_cluster(setup={"autostop": AUTO, **setup})


def _phases(rec):
    return [r.name for r in rec.of_type("command:remote:Command")]


def test_the_phase_runs_on_the_head_only_after_ray_with_an_undo():
    rec = run_program(_cluster())
    names = _phases(rec)
    assert "demo-head-autostop" in names
    assert not [n for n in names if n.endswith("-autostop") and "head" not in n], names
    phase = rec.named("demo-head-autostop")
    assert "autostop_delete" in phase.inputs["delete"] or phase.inputs.get("delete")
    program = phase.inputs["stdin"]
    for line in ("STYX_AUTOSTOP_IDLE_MINUTES='7'", "STYX_AUTOSTOP_INTERVAL='10'", "STYX_AUTOSTOP_DOWN='0'",
                 "STYX_AUTOSTOP_RAY='1'", "STYX_RAY_DASHBOARD_PORT='8265'", "STYX_RAY_AUTH='token'"):
        assert line in program or line.replace("'", "") in program, line
    assert "STYX_RAY_AUTH_TOKEN" not in program  # the watcher reads the token file the ray phase wrote
    order = [p.name for p in PHASES]
    assert order.index("autostop") == len(order) - 1 and order.index("ray") < order.index("autostop")


def test_the_program_carries_the_shared_pid_helpers_before_the_undo_and_the_script():
    program = run_program(_cluster()).named("demo-head-autostop").inputs["stdin"]
    helper = script_text("autostop_lib.sh").rstrip("\n")
    first = program.index(helper)
    second = program.index(helper, first + 1)
    undo, script = (program.index(script_text(n).rstrip("\n")) for n in ("autostop_delete.sh", "autostop.sh"))
    assert first < undo < second < script  # runner.program: the undo part first, then the create part


def test_no_autostop_no_phase_no_reaper():
    rec = run_program(local_cluster())
    assert not [n for n in _phases(rec) if n.endswith("-autostop")]
    assert not [r for r in rec.resources if r.name.endswith("autostop-reaper")]


def test_local_reaper_gets_the_nodes_workers_first_head_last():
    rec = run_program(_cluster())
    reaper = rec.named("demo-autostop-reaper")
    assert "autostop-reaper-start" in reaper.inputs["create"]
    assert "STYX_SB_AUTOSTOP_NODES='worker-0 worker-1 head'" in reaper.inputs["create"]
    assert "autostop-reaper-stop" in reaper.inputs["delete"]
    assert reaper.inputs["triggers"] == ["worker-0 worker-1 head"]
    assert backend_class("local")().autostop_helpers(parse_cluster(_cluster())) == [
        ("command:local:Command", "demo-autostop-reaper")]


def test_env_of_down_and_ray_off():
    cfg = parse_cluster(local_cluster(setup={"autostop": {"idle_minutes": 1, "down": True},
                                             "ray": {"enabled": False}}))
    row = next(p for p in PHASES if p.name == "autostop")
    head = PhaseContext(cfg, NodeInfo("head", "head", cfg.head, "10.0.0.2", "10.0.0.2"))
    worker = PhaseContext(cfg, NodeInfo("worker-0", "worker", cfg.workers[0], "10.0.0.10", "10.0.0.2"))
    assert row.applies(head) and not row.applies(worker)
    env = dict(row.env(head))
    assert env["STYX_AUTOSTOP_DOWN"] == "1" and env["STYX_AUTOSTOP_RAY"] == "0" and env["STYX_RAY_AUTH"] == "none"
    assert env["STYX_AUTOSTOP_INTERVAL"] == "60"  # the default check


@pytest.mark.parametrize("bad, msg", [
    ({"idle_minutes": 0}, "idle_minutes"),
    ({"idle_minutes": 5, "check_interval_s": 1}, "check_interval_s"),
    ({"idle_minutes": 5, "when": "never"}, "when"),
    ({}, "idle_minutes"),
])
def test_bad_autostop_config_names_the_field(bad, msg):
    from styx.model.config import ConfigError

    with pytest.raises(ConfigError, match=msg):
        parse_cluster(local_cluster(setup={"autostop": bad}))


def test_a_cloud_without_autostop_refuses_it_before_anything_is_made():
    cfg = parse_cluster({"name": "s", "cloud": "ssh", "head": {"host": "10.0.0.1"},
                         "setup": {"autostop": {"idle_minutes": 5}}})
    problems = backend_class("ssh")().config_problems(cfg)
    assert any(p.startswith("styx:cluster.setup.autostop: not supported for cloud ssh") for p in problems), problems
