"""`aws.static_ip` / `gcp.static_ip` under Pulumi mocks: a node dialled on its public address that can be stopped
gets a static one (AWS: an Elastic IP; GCP: a reserved EXTERNAL address as the VM's NAT IP), and everything
that dials or prints the node's public address takes it from there, so a stop/start (the cloud gives the machine
a new ephemeral IP) changes no phase's inputs. Spot nodes that cannot stop and private (`ssh.jump`) nodes keep
what they had; `static_ip: false` is the old behaviour; deletes release the address after the phases' undos."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
import test_aws_mocks
from test_aws_mocks import EIP, INSTANCE, REMOTE, Graph, RecordingMonitor, aws_cluster, by_name
from test_gcp_mocks import ADDRESS, IDS, gcp_cluster, gcp_runner
from test_gcp_mocks import INSTANCE as GCE

from styx.components.backends import get_backend
from styx.components.backends.gcp import gce_name
from styx.model.config import parse_cluster

# a head, two on-demand workers (stoppable) and one spot worker (cannot stop on AWS)
AWS_WORKERS = [{"name": "cpu", "count": 2, "instance_type": "m6i.large"},
               {"name": "gpu", "count": 1, "instance_type": "p4d.24xlarge", "spot": True,
                "resources": {"accelerators": "A100:8"}}]
GCP_WORKERS = [{"name": "cpu", "count": 2, "instance_type": "n2-standard-8"},
               {"name": "gpu", "count": 1, "instance_type": "a2-highgpu-8g", "spot": True,
                "resources": {"accelerators": "A100:8"}}]
STOPPABLE = ("head", "cpu-0", "cpu-1")


@pytest.fixture
def gcp_program(monkeypatch, tmp_path):
    """run(cluster) -> (Recorder, Graph): the GCP mocks, with the registrations' dependencies recorded."""
    box: dict[str, Graph] = {}
    orig_set = pulumi.runtime.set_mocks

    def set_mocks(mocks, *a, **kw):
        box["graph"] = Graph()
        kw["monitor"] = RecordingMonitor(mocks, box["graph"])
        return orig_set(mocks, *a, **kw)

    monkeypatch.setattr(pulumi.runtime, "set_mocks", set_mocks)
    runner = gcp_runner(monkeypatch, tmp_path)
    run = next(runner)

    def run_graph(cluster: dict[str, Any], **kw: Any):
        return run(cluster, **kw), box["graph"]

    yield run_graph
    next(runner, None)


def _node_of(cmd: str, nodes: tuple[str, ...] | list[str]) -> str:
    return next(n for n in nodes if cmd.startswith(f"demo-{n}-"))


def _phase_inputs(rec) -> dict[str, Any]:
    return {r.name: r.inputs for r in rec.of_type(REMOTE)}


# --------------------------------------------------------------------------- AWS


def test_aws_config_default_and_switch():
    assert parse_cluster(aws_cluster()).aws.static_ip is True
    assert parse_cluster(aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"], "static_ip": False})).aws.static_ip is False
    assert parse_cluster(gcp_cluster()).gcp.static_ip is True


def test_aws_elastic_ip_per_stoppable_node_is_what_styx_dials(aws_program):
    run = aws_program(aws_cluster(workers=AWS_WORKERS))
    eips = by_name(run, EIP)
    assert sorted(eips) == sorted(f"demo-{n}-ip" for n in STOPPABLE)  # the spot worker has none
    inst = by_name(run, INSTANCE)
    addr = {}
    for n in STOPPABLE:
        e = eips[f"demo-{n}-ip"]
        assert e.inputs["domain"] == "vpc"
        assert e.inputs["instance"] == run.outputs["aws_instance_ids"][n]  # associated by the EIP itself
        assert e.inputs["tags"] == {"Name": f"demo-{n}-ip", "styx:cluster": "demo", "styx:node": n}
        reg = run.graph.get(f"demo-{n}-ip")
        assert reg.parent == run.graph.get(f"demo-{n}").parent  # a child of the Node, beside its instance
        assert reg.provider.startswith(run.graph.get("demo-aws").urn + "::")
        addr[n] = run.outputs["static_addresses"][n]
        assert addr[n].startswith("192.0.2.")
        # the instance is as it would be without the EIP (a switch never replaces it)
        assert inst[f"demo-{n}"].inputs["associatePublicIpAddress"] is True
    assert set(run.outputs["static_addresses"]) == set(STOPPABLE)
    nodes = {n["name"]: n for n in run.outputs["nodes"]}
    for cmd in run.of_type(REMOTE):
        n = _node_of(cmd.name, [*STOPPABLE, "gpu-0"])
        host = cmd.inputs["connection"]["host"]
        assert host == (addr[n] if n in addr else nodes["gpu-0"]["host"]), cmd.name
    assert nodes["gpu-0"]["host"].startswith("198.51.100.")  # spot: its instance's own public IP
    for n in STOPPABLE:
        assert nodes[n]["host"] == addr[n]
    assert run.outputs["head_ip"] == addr["head"]
    assert f"ubuntu@{addr['head']} " in run.outputs["dashboard"]  # the tunnel dials the static address too


def test_aws_simulated_stop_start_changes_no_phase_input(aws_program, monkeypatch):
    """A start gives an instance a new public IP (the mocked instances get new ones); with Elastic IPs no phase's
    inputs (connection, triggers, program) change, so the next launch re-runs nothing. Without, they do."""
    def twice(cluster):  # as launched, and after a stop/start: the same private IPs, new public ones
        first = aws_program(cluster)
        monkeypatch.setattr(test_aws_mocks, "public_shift", 90)
        started = aws_program(cluster)
        monkeypatch.setattr(test_aws_mocks, "public_shift", 0)
        return first, started

    before, after = twice(aws_cluster(workers=AWS_WORKERS[:1]))
    assert before.outputs["static_addresses"] == after.outputs["static_addresses"]
    assert before.outputs["nodes"] == after.outputs["nodes"]
    assert {n: r.inputs for n, r in by_name(after, INSTANCE).items()} == \
        {n: r.inputs for n, r in by_name(before, INSTANCE).items()}
    assert _phase_inputs(after) == _phase_inputs(before)
    assert after.outputs["head_ip"] == before.outputs["head_ip"]

    old_before, old_after = twice(aws_cluster(workers=AWS_WORKERS[:1],
                                              aws={"ssh_cidrs": ["203.0.113.0/24"], "static_ip": False}))
    changed = {n for n, i in _phase_inputs(old_after).items() if i != _phase_inputs(old_before)[n]}
    assert changed == set(_phase_inputs(old_before)), "without static addresses every phase's connection moves"
    assert old_before.outputs["head_ip"] != old_after.outputs["head_ip"]


def test_aws_private_workers_get_no_elastic_ip_and_the_jump_is_the_heads(aws_program):
    run = aws_program(aws_cluster(workers=AWS_WORKERS[:1], ssh={"jump": "head"}))
    assert sorted(by_name(run, EIP)) == ["demo-head-ip"]
    head = run.outputs["static_addresses"]["head"]
    for r in run.of_type(REMOTE):
        conn = r.inputs["connection"]
        if r.name.startswith("demo-head-"):
            assert conn["host"] == head and "proxy" not in conn, r.name
        else:  # the private address (it survives a stop), through the head's static one
            assert conn["host"].startswith("10.42.0.") and conn["proxy"]["host"] == head, r.name
    assert run.outputs["ssh_jump"]["host"] == head
    bastion = aws_program(aws_cluster(workers=AWS_WORKERS[:1], ssh={"jump": "ops@bastion.example.com"}))
    assert by_name(bastion, EIP) == {} and "static_addresses" not in bastion.outputs


def test_aws_deletes_release_the_elastic_ip_after_the_phases(aws_program):
    """The engine deletes dependents first: every phase of the node depends on its EIP (its connection, and the
    gate explicitly), the EIP on the instance: phases (their undos dial the EIP) -> EIP -> instance."""
    run = aws_program(aws_cluster(workers=AWS_WORKERS[:1]))
    for cmd in run.of_type(REMOTE):
        n = _node_of(cmd.name, STOPPABLE)
        assert f"demo-{n}-ip" in run.graph.transitive_deps(cmd.name), cmd.name
        assert f"demo-{n}-ip" in run.graph.deps(cmd.name), f"{cmd.name}: its connection names the EIP"
    for n in STOPPABLE:
        assert f"demo-{n}-ip" in run.graph.deps(f"demo-{n}-wait_ssh")
        assert f"demo-{n}" in run.graph.deps(f"demo-{n}-ip")
        assert f"demo-{n}-ip" not in run.graph.transitive_deps(f"demo-{n}")  # nothing the instance needs
        assert f"demo-{n}-ip" not in run.graph.transitive_deps(f"demo-{n}-power")  # stop/start never touches it
        assert not {r.name for r in run.of_type(REMOTE)} & run.graph.transitive_deps(f"demo-{n}-ip")


def test_aws_static_ip_false_is_the_old_graph(aws_program, monkeypatch):
    off = aws_cluster(workers=AWS_WORKERS, aws={"ssh_cidrs": ["203.0.113.0/24"], "static_ip": False})
    run = aws_program(off)
    on = aws_program(aws_cluster(workers=AWS_WORKERS))
    assert by_name(run, EIP) == {} and "static_addresses" not in run.outputs
    nodes = {n["name"]: n["host"] for n in run.outputs["nodes"]}
    assert all(h.startswith("198.51.100.") for h in nodes.values())
    for cmd in run.of_type(REMOTE):
        assert cmd.inputs["connection"]["host"] == nodes[_node_of(cmd.name, list(nodes))], cmd.name
    # the same resources but the EIPs, the instances' inputs unchanged either way
    assert sorted(r.name for r in run.rec.resources) == sorted(r.name for r in on.rec.resources if r.typ != EIP)
    assert {n: r.inputs for n, r in by_name(run, INSTANCE).items()} == \
        {n: r.inputs for n, r in by_name(on, INSTANCE).items()}


# --------------------------------------------------------------------------- GCP


def test_gcp_reserved_address_per_stoppable_node_is_the_nat_ip_and_what_styx_dials(gcp_program):
    rec, _graph = gcp_program(gcp_cluster(workers=GCP_WORKERS))
    addrs = by_name(rec, ADDRESS)
    assert sorted(addrs) == sorted(f"demo-{n}-ip" for n in STOPPABLE)  # a DELETE spot VM cannot stop: none
    out = rec.outputs["static_addresses"]
    assert set(out) == set(STOPPABLE)
    inst = by_name(rec, GCE)
    for n in STOPPABLE:
        a = addrs[f"demo-{n}-ip"].inputs
        assert (a["addressType"], a["region"], a["name"]) == ("EXTERNAL", "us-central1", gce_name("demo", n, "ip"))
        assert a["labels"]["styx-node"] == n and a["labels"]["managed-by"] == "styx"
        assert out[n].startswith("35.2.0.")
        assert inst[f"demo-{n}"].inputs["networkInterfaces"][0]["accessConfigs"] == [{"natIp": out[n]}]
    assert inst["demo-gpu-0"].inputs["networkInterfaces"][0]["accessConfigs"] == [{}]  # ephemeral
    nodes = {n["name"]: n for n in rec.outputs["nodes"]}
    for cmd in rec.of_type(REMOTE):
        n = _node_of(cmd.name, [*STOPPABLE, "gpu-0"])
        assert cmd.inputs["connection"]["host"] == (out[n] if n in out else nodes["gpu-0"]["host"]), cmd.name
    assert nodes["gpu-0"]["host"].startswith("34.1.")
    assert rec.outputs["head_ip"] == out["head"] and f"styx@{out['head']} " in rec.outputs["dashboard"]


def test_gcp_spot_vm_that_stops_gets_one_too(gcp_program):
    """`spot_termination_action: STOP`: `styx stop` (and a preemption) stops it, and it is started again: the
    rule is "can be stopped" (`Backend.can_stop`), not "on-demand"."""
    rec, _ = gcp_program(gcp_cluster(gcp={"ssh_cidrs": ["203.0.113.0/24"], "spot_termination_action": "STOP"}))
    assert sorted(by_name(rec, ADDRESS)) == ["demo-gpu-0-ip", "demo-gpu-1-ip", "demo-head-ip"]


def test_gcp_simulated_stop_start_changes_no_phase_input(gcp_program):
    cluster = gcp_cluster(workers=GCP_WORKERS[:1])
    before, _ = gcp_program(cluster)
    IDS.ephemeral += 1  # a started VM: new ephemeral external IPs
    try:
        after, _ = gcp_program(cluster)
        off = gcp_cluster(workers=GCP_WORKERS[:1], gcp={"ssh_cidrs": ["203.0.113.0/24"], "static_ip": False})
        old_after, _ = gcp_program(off)
    finally:
        IDS.ephemeral -= 1
    old_before, _ = gcp_program(off)
    assert _phase_inputs(after) == _phase_inputs(before)
    assert after.outputs["nodes"] == before.outputs["nodes"] and after.outputs["head_ip"] == before.outputs["head_ip"]
    changed = {n for n, i in _phase_inputs(old_after).items() if i != _phase_inputs(old_before)[n]}
    assert changed == set(_phase_inputs(old_before)), "without static addresses every phase's connection moves"


def test_gcp_private_workers_get_no_address(gcp_program):
    rec, _ = gcp_program(gcp_cluster(workers=GCP_WORKERS[:1], ssh={"jump": "head"}))
    assert sorted(by_name(rec, ADDRESS)) == ["demo-head-ip"]
    head = rec.outputs["static_addresses"]["head"]
    for r in rec.of_type(REMOTE):
        conn = r.inputs["connection"]
        if not r.name.startswith("demo-head-"):
            assert conn["host"].startswith("10.43.0.") and conn["proxy"]["host"] == head, r.name
    for w in ("demo-cpu-0", "demo-cpu-1"):
        assert by_name(rec, GCE)[w].inputs["networkInterfaces"][0].get("accessConfigs") in (None, []), w


def test_gcp_deletes_release_the_address_after_the_vm_and_its_phases(gcp_program):
    rec, graph = gcp_program(gcp_cluster(workers=GCP_WORKERS[:1]))
    for cmd in rec.of_type(REMOTE):
        n = _node_of(cmd.name, STOPPABLE)
        assert f"demo-{n}-ip" in graph.deps(cmd.name), f"{cmd.name}: its connection names the address"
    for n in STOPPABLE:
        assert f"demo-{n}-ip" in graph.deps(f"demo-{n}")  # the VM's nat_ip: the VM goes before the address
        assert not {r.name for r in rec.of_type(REMOTE)} & graph.transitive_deps(f"demo-{n}-ip")
        assert graph.get(f"demo-{n}-ip").delete_before_replace  # a fixed name, like every named GCP resource


def test_gcp_static_ip_false_is_the_old_graph(gcp_program):
    off = gcp_cluster(workers=GCP_WORKERS, gcp={"ssh_cidrs": ["203.0.113.0/24"], "static_ip": False})
    rec, _ = gcp_program(off)
    on, _ = gcp_program(gcp_cluster(workers=GCP_WORKERS))
    assert by_name(rec, ADDRESS) == {} and "static_addresses" not in rec.outputs
    for name, i in by_name(rec, GCE).items():
        assert i.inputs["networkInterfaces"][0]["accessConfigs"] == [{}], name
    nodes = {n["name"]: n["host"] for n in rec.outputs["nodes"]}
    assert all(h.startswith("34.1.0.") for h in nodes.values())
    assert sorted(r.name for r in rec.resources) == sorted(r.name for r in on.resources if r.typ != ADDRESS)
    strip = json.dumps  # only the access config differs between the two
    for name, i in by_name(on, GCE).items():
        a, b = dict(i.inputs), dict(by_name(rec, GCE)[name].inputs)
        a.pop("networkInterfaces"), b.pop("networkInterfaces")
        assert strip(a, sort_keys=True) == strip(b, sort_keys=True), name


# --------------------------------------------------------------------------- the rule


def test_static_address_rule_per_backend():
    from styx.components.backends.base import NodeRequest, ProvisionContext

    def ask(cloud: str, cluster: dict[str, Any], node: str) -> bool:
        cfg = parse_cluster(cluster)
        spec = cfg.head if node == "head" else next(g for g in cfg.workers if node.startswith(g.name + "-"))
        req = NodeRequest(node, "head" if node == "head" else "worker", spec, "head" if node == "head" else
                          spec.name, 0)
        return get_backend(cloud).static_address(ProvisionContext(cfg=cfg, key=None, cluster=None), req)

    aws = aws_cluster(workers=AWS_WORKERS)
    assert ask("aws", aws, "head") and ask("aws", aws, "cpu-0") and not ask("aws", aws, "gpu-0")
    assert not ask("aws", {**aws, "ssh": {"jump": "head"}}, "cpu-0") and ask("aws", {**aws, "ssh": {"jump": "head"}},
                                                                            "head")
    assert not ask("aws", {**aws, "aws": {"ssh_cidrs": ["203.0.113.0/24"], "static_ip": False}}, "head")
    gcp = gcp_cluster(workers=GCP_WORKERS)
    assert ask("gcp", gcp, "head") and not ask("gcp", gcp, "gpu-0")
    local = {"name": "demo", "cloud": "local", "workers": [{"name": "worker", "count": 1}]}
    assert not ask("local", local, "head")  # no static_ip setting: sandboxes keep their address anyway
