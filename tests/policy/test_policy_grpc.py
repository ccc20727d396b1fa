"""The pack as the engine runs it: `policy/__main__.py` serves the Analyzer gRPC protocol.

No Pulumi CLI and no cloud provider plugin are needed: the test starts the pack the way the engine
does (it prints its port), then calls GetAnalyzerInfo, Configure and Analyze like the engine would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

grpc = pytest.importorskip("grpc")
from google.protobuf import empty_pb2, struct_pb2  # noqa: E402
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MANDATORY = 1  # analyzer_pb2.EnforcementLevel.MANDATORY


@pytest.fixture(scope="module")
def analyzer():
    proc = subprocess.Popen([sys.executable, "-u", str(ROOT / "policy" / "__main__.py")], cwd=ROOT / "policy",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
            pytest.fail(f"policy pack did not start: stdout={line!r} stderr={err[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _analyze(stub, typ: str, props: dict) -> list:
    s = struct_pb2.Struct()
    s.update(props)
    resp = stub.Analyze(analyzer_pb2.AnalyzeRequest(type=typ, properties=s, urn=f"urn:pulumi:t::p::{typ}::x", name="x"))
    return list(resp.diagnostics)


def test_info(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "styx-security"
    assert {p.name for p in info.policies} == {
        "styx-no-world-ingress-except-ssh", "styx-ray-ports-not-public", "styx-aws-imdsv2-required",
        "styx-aws-ebs-encrypted", "styx-gcp-gpu-terminate-on-maintenance"}
    assert all(p.enforcementLevel == MANDATORY for p in info.policies)


def test_bad_instance_is_mandatory_violation(analyzer):
    diags = _analyze(analyzer, "aws:ec2/instance:Instance",
                     {"instanceType": "m6i.large", "metadataOptions": {"httpTokens": "optional"}})
    assert {d.policyName for d in diags} == {"styx-aws-imdsv2-required", "styx-aws-ebs-encrypted"}
    assert all(d.enforcementLevel == MANDATORY for d in diags)


def test_good_instance_passes(analyzer):
    assert _analyze(analyzer, "aws:ec2/instance:Instance", {
        "instanceType": "m6i.large",
        "metadataOptions": {"httpTokens": "required", "httpEndpoint": "enabled"},
        "rootBlockDevice": {"encrypted": True},
    }) == []


def test_world_rules(analyzer):
    typ = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    ssh = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}
    assert _analyze(analyzer, typ, ssh) == []
    diags = _analyze(analyzer, typ, {**ssh, "fromPort": 8265, "toPort": 8265})
    assert {d.policyName for d in diags} == {"styx-no-world-ingress-except-ssh", "styx-ray-ports-not-public"}
    fw = _analyze(analyzer, "gcp:compute/firewall:Firewall",
                  {"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["6379"]}]})
    assert {d.policyName for d in fw} == {"styx-no-world-ingress-except-ssh", "styx-ray-ports-not-public"}


def test_configured_ray_ports(analyzer):
    typ = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    rule = {"ipProtocol": "tcp", "fromPort": 7000, "toPort": 7000, "cidrIpv4": "203.0.113.0/24"}
    assert _analyze(analyzer, typ, rule) == []
    props = struct_pb2.Struct()
    props.update({"rayPorts": [7000, "6379"]})
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
        "styx-ray-ports-not-public": analyzer_pb2.PolicyConfig(enforcementLevel=MANDATORY, properties=props)}))
    try:
        assert {d.policyName for d in _analyze(analyzer, typ, rule)} == {"styx-ray-ports-not-public"}
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={}))
