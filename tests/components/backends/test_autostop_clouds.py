"""setup.autostop on AWS and GCP under Pulumi mocks: the nodes stop themselves (no cloud credentials on them).
The head's watcher gets the power-off settings and its private address to serve its request on, each worker
a follower of it; AWS instances stop on a shutdown from inside; and the refusals: `down: true`, spot nodes
that cannot stop, adopted `ssh` hosts."""

from __future__ import annotations

import pytest
from test_aws_mocks import INSTANCE, REMOTE, aws_cluster, by_name
from test_gcp_mocks import gcp_cluster, gcp_runner

from styx.components.backends import backend_class, check_cluster
from styx.components.phases import AUTOSTOP_PORT
from styx.model.config import ConfigError, parse_cluster

AUTO = {"autostop": {"idle_minutes": 10, "check_interval_s": 30}}
ON_DEMAND_AWS = [{"name": "gpu", "count": 2, "instance_type": "m6i.large"}]
ON_DEMAND_GCP = [{"name": "gpu", "count": 2, "instance_type": "n2-standard-8"}]


@pytest.fixture
def gcp_program(monkeypatch, tmp_path):
    yield from gcp_runner(monkeypatch, tmp_path)


def _env(program: str) -> dict[str, str]:
    """The `export K=V` lines of a phase's program (its stdin)."""
    import shlex

    out = {}
    for line in program.splitlines():
        if line.startswith("export ") and "STYX_PHASE=autostop " in line + " ":
            for word in shlex.split(line[len("export "):]):
                k, v = word.split("=", 1)
                out[k] = v
    return out


def _check_followers(rec, head_private: str) -> None:
    cmds = by_name(rec, REMOTE)
    head = _env(cmds["demo-head-autostop"].inputs["stdin"])
    assert head["STYX_AUTOSTOP_POWEROFF"] == "1" and head["STYX_AUTOSTOP_BIND"] == head_private
    assert head["STYX_AUTOSTOP_PORT"] == str(AUTOSTOP_PORT) and "STYX_AUTOSTOP_ROLE" not in head
    for w in ("gpu-0", "gpu-1"):
        env = _env(cmds[f"demo-{w}-autostop"].inputs["stdin"])
        assert env["STYX_AUTOSTOP_ROLE"] == "follower" and env["STYX_AUTOSTOP_POWEROFF"] == "1"
        assert env["STYX_AUTOSTOP_HEAD"] == head_private, env  # the head's private address, never a public one
        # after Ray on its node, with the undo that stops the follower
        assert "autostop_delete" in cmds[f"demo-{w}-autostop"].inputs["delete"] or cmds[
            f"demo-{w}-autostop"].inputs.get("delete")


def test_aws_head_serves_workers_follow_instances_stop_on_shutdown(aws_program):
    run = aws_program(aws_cluster(workers=ON_DEMAND_AWS, setup=AUTO))
    head_private = next(n for n in run.outputs["nodes"] if n["name"] == "head")["private_ip"]
    _check_followers(run.rec, head_private)
    for inst in run.of_type(INSTANCE):
        assert inst.inputs["instanceInitiatedShutdownBehavior"] == "stop", inst.name


def test_aws_on_demand_instances_stop_on_shutdown_even_without_autostop(aws_program):
    run = aws_program(aws_cluster(workers=ON_DEMAND_AWS))
    assert {i.inputs.get("instanceInitiatedShutdownBehavior") for i in run.of_type(INSTANCE)} == {"stop"}
    assert not [c for c in run.of_type(REMOTE) if c.name.endswith("-autostop")]


def test_gcp_head_serves_workers_follow(gcp_program):
    rec = gcp_program(gcp_cluster(workers=ON_DEMAND_GCP, setup=AUTO))
    head_private = next(n for n in rec.outputs["nodes"] if n["name"] == "head")["private_ip"]
    _check_followers(rec, head_private)


def test_local_keeps_its_head_only_watcher_without_power_off():
    from mocking import local_cluster, run_program

    rec = run_program(local_cluster(setup=AUTO))
    cmds = {r.name: r for r in rec.of_type("command:remote:Command")}
    assert [n for n in cmds if n.endswith("-autostop")] == ["demo-head-autostop"]
    env = _env(cmds["demo-head-autostop"].inputs["stdin"])
    assert not {"STYX_AUTOSTOP_POWEROFF", "STYX_AUTOSTOP_BIND", "STYX_AUTOSTOP_ROLE"} & set(env), env
    # a down request: the reaper runs `styx down` of this stack with this Python (no secret in the text)
    reaper = rec.named("demo-autostop-reaper").inputs["create"]
    assert "STYX_SB_DOWN_STACK=" in reaper and "STYX_SB_DOWN_PYTHON=" in reaper
    assert "PASSPHRASE" not in reaper


# --------------------------------------------------------------------------- what is refused, and why


def _problems(cluster: dict) -> list[str]:
    with pytest.raises(ConfigError) as e:
        check_cluster(cluster)
    return e.value.problems if hasattr(e.value, "problems") else str(e.value).splitlines()


@pytest.mark.parametrize("make, workers", [(aws_cluster, ON_DEMAND_AWS), (gcp_cluster, ON_DEMAND_GCP)])
def test_down_true_is_refused_on_clouds_naming_the_field_and_where_it_works(make, workers):
    text = "\n".join(_problems(make(workers=workers, setup={"autostop": {"idle_minutes": 5, "down": True}})))
    assert "styx:cluster.setup.autostop.down: true is not supported for cloud" in text, text
    assert "allowed: false; down: true with cloud local" in text, text


def test_aws_spot_nodes_cannot_autostop():
    text = "\n".join(_problems(aws_cluster(setup=AUTO)))  # its workers are spot
    assert "styx:cluster.workers[0].spot: spot instances cannot be stopped (only terminated), and " \
           "setup.autostop stops every node" in text, text


def test_gcp_spot_autostops_when_preemption_stops_too():
    spot = [{"name": "gpu", "count": 1, "instance_type": "n2-standard-8", "spot": True}]
    text = "\n".join(_problems(gcp_cluster(workers=spot, setup=AUTO)))
    assert "styx:cluster.workers[0].spot: spot VMs with gcp.spot_termination_action: DELETE" in text, text
    ok = gcp_cluster(workers=spot, setup=AUTO, gcp={"ssh_cidrs": ["203.0.113.0/24"],
                                                    "spot_termination_action": "STOP"})
    assert check_cluster(ok).setup.autostop.idle_minutes == 10


def test_adopted_ssh_hosts_refuse_autostop_with_why():
    cfg = parse_cluster({"name": "s", "cloud": "ssh", "head": {"host": "10.0.0.1"},
                         "setup": {"autostop": {"idle_minutes": 5}}})
    [line] = [p for p in backend_class("ssh")().config_problems(cfg) if "autostop" in p]
    assert line.startswith("styx:cluster.setup.autostop: not supported for cloud ssh: styx adopts these machines")
    assert "(allowed with cloud aws, gcp, local)" in line, line


@pytest.mark.parametrize("cloud, outputs, stopped", [
    ("aws", {"instanceState": "stopped"}, True), ("aws", {"instanceState": "running"}, False),
    ("aws", {}, None), ("gcp", {"currentStatus": "TERMINATED"}, True), ("gcp", {"currentStatus": "RUNNING"}, False),
    ("local", {"anything": 1}, None),
])
def test_machine_stopped_reads_the_refreshed_machine(cloud, outputs, stopped):
    assert backend_class(cloud)().machine_stopped(outputs) is stopped
