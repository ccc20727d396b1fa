"""Security invariants of the aws backend over many configs (hypothesis + a table), under mocks.

For every generated config, what the program registers and exports must satisfy:
- ingress from a CIDR is TCP 22 only, from a CIDR the user listed (0.0.0.0/0 / ::/0 only when listed);
- no CIDR-sourced rule reaches a Ray port (the config's ports and Ray's defaults); the only other
  ingress is the self-referencing rule of the cluster's own security group; no inline ingress;
- every instance requires IMDSv2 and has an encrypted root volume deleted with it;
- the private key is a secret output and appears in no plain output;
- every remote command of a node depends (transitively) on that node's instance;
- the policy pack in policy/ finds nothing wrong with any registered resource.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mocking import Registered, Secret
from test_aws_mocks import INGRESS, INSTANCE, REMOTE, SG, AwsRun, aws_cluster, by_name

from styx.components.backends.aws import AwsBackend
from styx.model.config import parse_cluster

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / "policy") not in sys.path:
    sys.path.insert(0, str(ROOT / "policy"))

from styx_policy.policies import check_all  # noqa: E402

RAY_DEFAULTS = (6379, 8265, 10001)
WORLD = ("0.0.0.0/0", "::/0")


def _nets(cidrs: list[str]) -> set[Any]:
    return {ipaddress.ip_network(c, strict=False) for c in cidrs}


def _plain_strings(value: Any):
    """Every string inside an exported value that is not marked secret."""
    if isinstance(value, Secret):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _plain_strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _plain_strings(v)


def check_invariants(cluster: dict[str, Any], run: AwsRun) -> None:
    cfg = parse_cluster(cluster)
    listed = _nets(cfg.aws.ssh_cidrs)
    ray_ports = {cfg.setup.ray.port, cfg.setup.ray.dashboard_port, cfg.setup.ray.client_port, *RAY_DEFAULTS}
    (sg,) = run.of_type(SG)
    assert not sg.inputs.get("ingress"), "no inline ingress on the security group"
    sg_id = run.outputs["aws_security_group_id"]
    assert not run.of_type("aws:ec2/securityGroupRule:SecurityGroupRule")

    ssh_sources = set()
    for rule in run.of_type(INGRESS):
        src = rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6")
        if src is None:
            assert rule.inputs.get("referencedSecurityGroupId") == sg_id, f"{rule.name}: only the self rule has no CIDR"
            assert not rule.inputs.get("prefixListId")
            continue
        net = ipaddress.ip_network(src)
        ports = (rule.inputs.get("ipProtocol"), rule.inputs.get("fromPort"), rule.inputs.get("toPort"))
        assert ports == ("tcp", 22, 22), f"{rule.name}: {src} may only reach tcp/22, got {ports}"
        assert net in listed, f"{rule.name}: {src} is not in ssh_cidrs {cfg.aws.ssh_cidrs}"
        if str(net) in WORLD:
            assert net in listed, "world ingress only when the user listed it"
        for p in ray_ports:
            assert not rule.inputs["fromPort"] <= p <= rule.inputs["toPort"], f"{rule.name} reaches Ray port {p}"
        ssh_sources.add(net)
    assert ssh_sources == listed, "every listed CIDR (and only those) reaches SSH"

    instances = {r.name: r for r in run.of_type(INSTANCE)}
    nodes = cfg.nodes()
    assert set(instances) == {f"{cfg.name}-{n}" for n, *_ in nodes}
    for name, role, spec, _ in nodes:
        i = instances[f"{cfg.name}-{name}"].inputs
        md = i["metadataOptions"]
        assert md["httpTokens"] == "required" and md["httpEndpoint"] == "enabled"
        assert md["httpPutResponseHopLimit"] in (1, 2)
        root = i["rootBlockDevice"]
        assert root["encrypted"] is True and root["deleteOnTermination"] is True
        assert root["volumeSize"] == spec.disk_size_gb
        assert ("instanceMarketOptions" in i) == spec.spot
        assert i["tags"]["styx:role"] == role and i["tags"]["styx:node"] == name
        assert i["associatePublicIpAddress"] is True

    out = run.outputs
    assert isinstance(out["ssh_private_key"], Secret)
    for k, v in out.items():
        for s in _plain_strings(v):
            assert "PRIVATE KEY" not in s, f"output {k} holds a private key in plain text"

    for cmd in run.of_type(REMOTE):
        node = next(n for n, *_ in nodes if cmd.name.startswith(f"{cfg.name}-{n}-"))
        assert f"{cfg.name}-{node}" in run.graph.transitive_deps(cmd.name), f"{cmd.name} does not follow its instance"

    config = {"rayPorts": [str(p) for p in sorted(ray_ports)] + ["10002-19999"]}
    for r in run.rec.resources:
        assert check_all(r.typ, r.inputs, config) == {}, (r.typ, r.name)


# ------------------------------------------------------------------ generated configs

CIDR_POOL = ["0.0.0.0/0", "::/0", "203.0.113.0/24", "198.51.100.7/32", "10.0.0.0/8", "2001:db8::/32",
             "192.0.2.0/28", "0.0.0.0/1", "203.0.113.9/24"]
TYPES = ["m6i.large", "p4d.24xlarge", "g5.xlarge", "m7g.large", "g5g.xlarge", "p5.48xlarge"]

random_v4 = st.builds(lambda ip, p: str(ipaddress.ip_network(f"{ipaddress.IPv4Address(ip)}/{p}", strict=False)),
                      st.integers(0, 2**32 - 1), st.integers(0, 32))
ray_ports = st.lists(st.integers(1024, 65535), min_size=3, max_size=3, unique=True)


@st.composite
def clusters(draw) -> dict[str, Any]:
    zone = draw(st.sampled_from([None, "us-east-1a", "us-east-1c"]))
    existing = draw(st.sampled_from(["new", "vpc", "vpc+subnet"]))
    aws: dict[str, Any] = {
        "ssh_cidrs": draw(st.lists(st.one_of(st.sampled_from(CIDR_POOL), random_v4), min_size=1, max_size=4)),
        "image": draw(st.sampled_from(["ubuntu-22.04", "ubuntu-24.04", "gpu"])),
        "root_volume_type": draw(st.sampled_from(["gp3", "gp2", "io2"])),
        "imds_hop_limit": draw(st.sampled_from([1, 2])),
        "placement_group": draw(st.booleans()),
    }
    if draw(st.booleans()):
        aws["ami"] = "ami-0abcdef1234567890"
    if draw(st.booleans()):
        aws["spot_max_price"] = draw(st.floats(0.01, 100, allow_nan=False))
    if existing != "new":
        aws["vpc_id"] = "vpc-0123abcd"
    if existing == "vpc+subnet":
        aws["subnet_id"] = "subnet-0456cdef"
    workers = []
    for i in range(draw(st.integers(0, 2))):
        workers.append({
            "name": f"w{i}", "count": draw(st.integers(0, 2)), "instance_type": draw(st.sampled_from(TYPES)),
            "spot": draw(st.booleans()), "disk_size_gb": draw(st.integers(10, 2000)),
            "image": draw(st.sampled_from([None, "gpu", "ubuntu-24.04", "ami-0fedcba9876543210"])),
        })
    rp = draw(ray_ports)
    return aws_cluster(
        zone=zone,
        head={"instance_type": draw(st.sampled_from(TYPES)), "spot": draw(st.booleans())},
        workers=workers,
        aws=aws,
        setup={"packages": ["jq"], "env": {"A": "1"},
               "ray": {"port": rp[0], "dashboard_port": rp[1], "client_port": rp[2]}},
    )


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cluster=clusters())
def test_invariants_over_generated_configs(aws_program, cluster):
    assert AwsBackend().config_problems(parse_cluster(cluster)) == []
    check_invariants(cluster, aws_program(cluster))


# ------------------------------------------------------------------ a table of edge cases

TABLE = {
    "example": aws_cluster(),
    "world-ssh-v4": aws_cluster(aws={"ssh_cidrs": ["0.0.0.0/0"]}),
    "world-ssh-v4-v6": aws_cluster(aws={"ssh_cidrs": ["0.0.0.0/0", "::/0"]}),
    "host-bits-and-duplicates": aws_cluster(aws={"ssh_cidrs": ["203.0.113.9/24", "203.0.113.0/24", "198.51.100.7"]}),
    "ray-ports-moved": aws_cluster(setup={"ray": {"port": 8000, "dashboard_port": 65535, "client_port": 1024}}),
    "head-only": aws_cluster(workers=[]),
    "existing-vpc": aws_cluster(aws={"ssh_cidrs": ["10.0.0.0/8"], "vpc_id": "vpc-0a", "subnet_id": "subnet-0b"}),
    "existing-vpc-lookup": aws_cluster(zone="us-east-1c", aws={"ssh_cidrs": ["10.0.0.0/8"], "vpc_id": "vpc-0a"}),
    "multi-zone": aws_cluster(zone="us-east-1a", workers=[
        {"name": "a", "count": 1, "instance_type": "g5.xlarge", "zone": "us-east-1b"},
        {"name": "b", "count": 2, "instance_type": "g5g.xlarge", "spot": True}]),
    "placement-gpu": aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"], "placement_group": True, "image": "gpu",
                                      "spot_max_price": 9.99, "imds_hop_limit": 2}),
    "no-ray": aws_cluster(setup={"ray": {"enabled": False}}),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_invariants_table(aws_program, name):
    assert AwsBackend().config_problems(parse_cluster(TABLE[name])) == []
    check_invariants(TABLE[name], aws_program(TABLE[name]))


# ------------------------------------------------------------------ the checker is not vacuous


def _bad(typ: str, name: str, **inputs: Any) -> Registered:
    return Registered(typ, name, inputs)


@pytest.mark.parametrize(("make", "needle"), [
    (lambda sg: _bad(INGRESS, "x", securityGroupId=sg, ipProtocol="tcp", fromPort=8265, toPort=8265,
                     cidrIpv4="0.0.0.0/0"), "may only reach tcp/22"),
    (lambda sg: _bad(INGRESS, "x", securityGroupId=sg, ipProtocol="tcp", fromPort=22, toPort=22,
                     cidrIpv4="0.0.0.0/0"), "is not in ssh_cidrs"),
    (lambda sg: _bad(INGRESS, "x", securityGroupId=sg, ipProtocol="-1", referencedSecurityGroupId="sg-other"),
     "only the self rule"),
])
def test_checker_catches_a_bad_rule(aws_program, make, needle):
    cluster = aws_cluster()
    run = aws_program(cluster)
    run.rec.resources.append(make(run.outputs["aws_security_group_id"]))
    with pytest.raises(AssertionError, match=needle):
        check_invariants(cluster, run)


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("metadataOptions", {"httpEndpoint": "enabled", "httpTokens": "optional", "httpPutResponseHopLimit": 1}, ""),
    ("rootBlockDevice", {"encrypted": False, "deleteOnTermination": True, "volumeSize": 100}, ""),
])
def test_checker_catches_a_bad_instance(aws_program, field, value, needle):
    cluster = aws_cluster()
    run = aws_program(cluster)
    inst = by_name(run, INSTANCE)["demo-head"]
    inst.inputs[field] = value
    with pytest.raises(AssertionError):
        check_invariants(cluster, run)
    # and the policy pack flags the same resource
    assert check_all(INSTANCE, inst.inputs)
