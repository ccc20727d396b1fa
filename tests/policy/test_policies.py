"""The policy pack's checks, called directly with fake resource properties (engine wire names)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi_policy import EnforcementLevel, ResourceValidationArgs
from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE, unknown_checking_proxy

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "policy") not in sys.path:
    sys.path.insert(0, str(ROOT / "policy"))

from styx_policy import aws, gcp, net  # noqa: E402
from styx_policy.policies import RESOURCE_CHECKS, check_all, policies  # noqa: E402

SG = aws.SECURITY_GROUP
SGR = aws.SECURITY_GROUP_RULE
RULE = aws.INGRESS_RULE
EC2 = aws.INSTANCE
FW = gcp.FIREWALL
VM = gcp.INSTANCE

WORLD = "styx-no-world-ingress-except-ssh"
RAY = "styx-ray-ports-not-public"
IMDS = "styx-aws-imdsv2-required"
EBS = "styx-aws-ebs-encrypted"
GPU = "styx-gcp-gpu-terminate-on-maintenance"


def violations(typ: str, props: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """check_all on props wrapped the way the engine hands them over (Mapping/Sequence proxies)."""
    return check_all(typ, unknown_checking_proxy(props), config)


def run_policy(name: str, typ: str, props: dict[str, Any], config: dict[str, Any] | None = None) -> list[str]:
    """Call the real ResourceValidationPolicy.validate with fake args."""
    (policy,) = [p for p in policies() if p.name == name]
    args = ResourceValidationArgs(typ, unknown_checking_proxy(props), f"urn:pulumi:s::p::{typ}::x", "x",
                                  None, None, config)  # type: ignore[arg-type]
    got: list[str] = []
    policy.validate(args, lambda msg, urn=None: got.append(msg))
    return got


GOOD_INSTANCE = {
    "instanceType": "p4d.24xlarge",
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
    "rootBlockDevice": {"encrypted": True, "volumeSize": 100, "deleteOnTermination": True},
}


# ------------------------------------------------------------------ the pack


def test_pack_has_the_policies_all_mandatory():
    ps = policies()
    assert [p.name for p in ps] == [WORLD, RAY, IMDS, EBS, GPU]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in ps)
    assert set(RESOURCE_CHECKS) == {p.name for p in ps}
    assert "rayPorts" in next(p for p in ps if p.name == RAY).config_schema.properties


def test_pack_files_exist():
    pack = ROOT / "policy"
    assert "runtime: python" in (pack / "PulumiPolicy.yaml").read_text()
    assert "pulumi-policy" in (pack / "requirements.txt").read_text()
    assert "PolicyPack(" in (pack / "__main__.py").read_text()


# ------------------------------------------------------------------ net helpers


@pytest.mark.parametrize(("cidr", "world", "internal"), [
    ("0.0.0.0/0", True, False), ("::/0", True, False), ("0.0.0.0/1", False, False),
    ("10.0.0.0/8", False, True), ("10.1.2.3/32", False, True), ("172.20.0.0/16", False, True),
    ("192.168.1.0/24", False, True), ("100.64.0.0/10", False, True), ("fd00::/8", False, True),
    ("203.0.113.0/24", False, False), ("192.0.2.0/24", False, False), ("2001:db8::/32", False, False),
    ("8.0.0.0/7", False, False), ("nonsense", False, False), ("10.0.0.0/7", False, False),
])
def test_cidr_classes(cidr, world, internal):
    assert net.is_world(cidr) is world
    assert net.is_internal(cidr) is internal


def test_port_parsing():
    assert net.parse_port_specs(["22", "8000-9000", 443]) == ((22, 22), (8000, 9000), (443, 443))
    assert net.parse_port_specs(["x"]) == net.ALL_PORTS
    assert net.port_range(None, None, "all") == net.ALL_PORTS
    assert net.port_range(-1, -1, "tcp") == net.ALL_PORTS
    assert net.port_range(None, None, "tcp") == net.ALL_PORTS
    assert net.port_range(0, 0, "icmp") == ()
    assert net.port_range(9000, 8000, "udp") == ((8000, 9000),)
    assert net.normalize_protocol("-1") == "all" and net.normalize_protocol("6") == "tcp"
    assert net.normalize_protocol(None) == "all"


# ------------------------------------------------------------------ AWS security groups


@pytest.mark.parametrize(("props", "expect"), [
    ({"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "203.0.113.0/24"}, set()),
    ({"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}, set()),
    ({"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"}, set()),
    ({"ipProtocol": "-1", "referencedSecurityGroupId": "sg-1"}, set()),
    ({"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535, "prefixListId": "pl-1"}, set()),
    ({"ipProtocol": "tcp", "fromPort": 8265, "toPort": 8265, "cidrIpv4": "10.0.0.0/8"}, set()),
    ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "203.0.113.0/24"}, set()),
    ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"}, {WORLD}),
    ({"ipProtocol": "tcp", "fromPort": 22, "toPort": 23, "cidrIpv4": "0.0.0.0/0"}, {WORLD}),
    ({"ipProtocol": "udp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}, {WORLD}),
    ({"ipProtocol": "icmp", "fromPort": -1, "toPort": -1, "cidrIpv4": "0.0.0.0/0"}, {WORLD}),
    ({"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"}, {WORLD, RAY}),
    ({"ipProtocol": "-1", "cidrIpv6": "::/0"}, {WORLD, RAY}),
    ({"ipProtocol": "tcp", "fromPort": 8000, "toPort": 65535, "cidrIpv4": "0.0.0.0/0"}, {WORLD, RAY}),
    ({"ipProtocol": "tcp", "fromPort": 8000, "toPort": 65535, "cidrIpv4": "203.0.113.0/24"}, {RAY}),
    ({"ipProtocol": "tcp", "fromPort": 6379, "toPort": 6379, "cidrIpv4": "198.51.100.7/32"}, {RAY}),
    ({"ipProtocol": "tcp", "fromPort": 10001, "toPort": 10001, "cidrIpv6": "2001:db8::/32"}, {RAY}),
    ({"ipProtocol": "6", "fromPort": 8265, "toPort": 8265, "cidrIpv4": "0.0.0.0/1"}, {RAY}),
    ({"ipProtocol": "tcp", "fromPort": 15000, "toPort": 15000, "cidrIpv4": "203.0.113.0/24"}, {RAY}),  # workers
])
def test_vpc_ingress_rule(props, expect):
    assert set(violations(RULE, props)) == expect


def test_inline_security_group_ingress():
    props = {"ingress": [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0", "10.0.0.0/8"]},
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True},
        {"protocol": "tcp", "fromPort": 8265, "toPort": 8265, "cidrBlocks": ["10.0.0.0/8"],
         "ipv6CidrBlocks": ["::/0"]},
    ], "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]}
    v = violations(SG, props)
    assert set(v) == {WORLD, RAY}
    assert all(m.startswith("ingress[2]: ::/0") for m in v[WORLD] + v[RAY])
    assert violations(SG, {"ingress": props["ingress"][:2], "egress": props["egress"]}) == {}
    assert violations(SG, {}) == {}


def test_security_group_rule_resource():
    bad = {"type": "ingress", "protocol": "tcp", "fromPort": 8265, "toPort": 8265, "cidrBlocks": ["0.0.0.0/0"]}
    assert set(violations(SGR, bad)) == {WORLD, RAY}
    assert violations(SGR, {**bad, "type": "egress"}) == {}
    assert violations(SGR, {**bad, "cidrBlocks": None, "sourceSecurityGroupId": "sg-1"}) == {}


def test_ray_ports_follow_the_config():
    rule = {"ipProtocol": "tcp", "fromPort": 7000, "toPort": 7000, "cidrIpv4": "203.0.113.0/24"}
    assert violations(RULE, rule) == {}
    assert set(violations(RULE, rule, {"rayPorts": ["7000"]})) == {RAY}
    assert set(violations(RULE, rule, {"rayPorts": ["6000-8000"]})) == {RAY}
    assert run_policy(RAY, RULE, rule, {"rayPorts": ["7000"]})


def test_unknown_values_elsewhere_are_not_touched():
    """During preview the referenced group id is unknown; the checks never read it."""
    props = {"ipProtocol": "-1", "referencedSecurityGroupId": UNKNOWN_OBJECT_VALUE, "securityGroupId":
             UNKNOWN_OBJECT_VALUE}
    assert violations(RULE, props) == {}


# ------------------------------------------------------------------ AWS instances


def test_good_instance():
    assert violations(EC2, GOOD_INSTANCE) == {}


@pytest.mark.parametrize(("change", "expect"), [
    ({"metadataOptions": None}, {IMDS}),
    ({"metadataOptions": {"httpTokens": "optional"}}, {IMDS}),
    ({"metadataOptions": {"httpEndpoint": "enabled"}}, {IMDS}),
    ({"metadataOptions": {"httpEndpoint": "disabled"}}, set()),
    ({"rootBlockDevice": None}, {EBS}),
    ({"rootBlockDevice": {"encrypted": False}}, {EBS}),
    ({"rootBlockDevice": {"volumeSize": 10}}, {EBS}),
    ({"ebsBlockDevices": [{"deviceName": "/dev/sdf", "encrypted": True}]}, set()),
    ({"ebsBlockDevices": [{"deviceName": "/dev/sdf"}]}, {EBS}),
])
def test_instance_invariants(change, expect):
    props = {k: v for k, v in {**GOOD_INSTANCE, **change}.items() if v is not None}
    assert set(violations(EC2, props)) == expect


def test_launch_template_and_volume():
    assert set(violations(aws.LAUNCH_TEMPLATE, {"metadataOptions": {"httpTokens": "optional"}})) == {IMDS}
    assert violations(aws.LAUNCH_TEMPLATE, {"metadataOptions": {"httpTokens": "required"}}) == {}
    assert set(violations(aws.VOLUME, {"size": 10})) == {EBS}
    assert violations(aws.VOLUME, {"size": 10, "encrypted": True}) == {}


def test_policy_validate_reports_through_the_sdk():
    bad = {**GOOD_INSTANCE, "metadataOptions": {"httpTokens": "optional"}}
    assert run_policy(IMDS, EC2, bad) == ["metadataOptions.httpTokens is 'optional'; IMDSv2 needs \"required\""]
    assert run_policy(IMDS, EC2, GOOD_INSTANCE) == []
    assert run_policy(WORLD, EC2, bad) == []  # a policy ignores types it does not know


# ------------------------------------------------------------------ GCP


@pytest.mark.parametrize(("props", "expect"), [
    ({"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["22"]}]}, set()),
    ({"sourceRanges": ["203.0.113.0/24"], "allows": [{"protocol": "tcp", "ports": ["22"]}]}, set()),
    ({"sourceTags": ["styx-demo"], "allows": [{"protocol": "all"}]}, set()),
    ({"sourceRanges": ["10.43.0.0/20"], "allows": [{"protocol": "all"}]}, set()),
    ({"sourceRanges": ["0.0.0.0/0"], "denies": [{"protocol": "all"}]}, set()),
    ({"direction": "EGRESS", "destinationRanges": ["0.0.0.0/0"], "allows": [{"protocol": "all"}]}, set()),
    ({"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "all"}], "disabled": True}, set()),
    ({"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["22", "80"]}]}, {WORLD}),
    ({"sourceRanges": ["::/0"], "allows": [{"protocol": "icmp"}]}, {WORLD}),
    ({"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp"}]}, {WORLD, RAY}),
    ({"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "all"}]}, {WORLD, RAY}),
    ({"allows": [{"protocol": "tcp", "ports": ["8265"]}]}, {WORLD, RAY}),  # no source at all = 0.0.0.0/0
    ({"sourceRanges": ["203.0.113.0/24"], "allows": [{"protocol": "tcp", "ports": ["8000-9000"]}]}, {RAY}),
    ({"sourceRanges": ["203.0.113.0/24"], "allows": [{"protocol": "udp", "ports": ["6379"]}]}, {RAY}),
    ({"sourceRanges": ["2001:db8::/32"], "allows": [{"protocol": "tcp", "ports": ["10001"]}]}, {RAY}),
])
def test_gcp_firewall(props, expect):
    assert set(violations(FW, props)) == expect


@pytest.mark.parametrize(("props", "expect"), [
    ({"machineType": "n2-standard-8"}, set()),
    ({"machineType": "a2-highgpu-8g", "scheduling": {"onHostMaintenance": "TERMINATE"}}, set()),
    ({"machineType": "a2-highgpu-8g"}, {GPU}),
    ({"machineType": "a3-highgpu-8g", "scheduling": {"onHostMaintenance": "MIGRATE"}}, {GPU}),
    ({"machineType": "zones/us-central1-a/machineTypes/g2-standard-8", "scheduling": {}}, {GPU}),
    ({"machineType": "n1-standard-8", "guestAccelerators": [{"type": "nvidia-tesla-t4", "count": 1}],
      "scheduling": {"onHostMaintenance": "MIGRATE"}}, {GPU}),
    ({"machineType": "n1-standard-8", "guestAccelerators": [{"type": "nvidia-tesla-t4", "count": 1}],
      "scheduling": {"onHostMaintenance": "TERMINATE", "provisioningModel": "SPOT"}}, set()),
    ({"machineType": "n1-standard-8", "guestAccelerators": [{"type": "nvidia-tesla-t4", "count": 0}]}, set()),
])
def test_gcp_gpu_maintenance(props, expect):
    assert set(violations(VM, props)) == expect
    assert set(violations(gcp.INSTANCE_TEMPLATE, props)) == expect


# ------------------------------------------------------------------ an oracle over random rules

PUBLIC_OR_WORLD = ["0.0.0.0/0", "::/0", "203.0.113.0/24", "2001:db8::/32", "8.8.8.8/32", "0.0.0.0/1"]
PRIVATE = ["10.0.0.0/8", "172.16.5.0/24", "192.168.0.0/16", "fd12::/16", "100.64.1.0/24"]
RAY_DEFAULT = [6379, 8265, 10001, 52365, *range(10002, 20000)]


def _oracle(proto: str, lo: int, hi: int, cidr: str) -> set[str]:
    n = ipaddress.ip_network(cidr)
    world = n.prefixlen == 0
    private = cidr in PRIVATE
    ports = range(0, 65536) if proto == "-1" else range(lo, hi + 1) if proto in ("tcp", "udp") else range(0)
    out = set()
    if world and not (proto == "tcp" and lo == hi == 22):
        out.add(WORLD)
    if not private and any(p in ports for p in RAY_DEFAULT):
        out.add(RAY)
    return out


@settings(max_examples=300, deadline=None, database=None)
@given(proto=st.sampled_from(["tcp", "udp", "icmp", "-1"]), lo=st.integers(0, 65535), span=st.integers(0, 70000),
       cidr=st.sampled_from(PUBLIC_OR_WORLD + PRIVATE))
def test_aws_rule_matches_oracle(proto, lo, span, cidr):
    hi = min(65535, lo + span)
    key = "cidrIpv6" if ":" in cidr else "cidrIpv4"
    props = {"ipProtocol": proto, "fromPort": lo, "toPort": hi, key: cidr}
    assert set(violations(RULE, props)) == _oracle(proto, lo, hi, cidr)
    # the same rule written as a GCP firewall gives the same verdict
    gproto = "all" if proto == "-1" else proto
    allow: dict[str, Any] = {"protocol": gproto}
    if proto in ("tcp", "udp"):
        allow["ports"] = [str(lo) if lo == hi else f"{lo}-{hi}"]
    assert set(violations(FW, {"sourceRanges": [cidr], "allows": [allow]})) == _oracle(proto, lo, hi, cidr)
