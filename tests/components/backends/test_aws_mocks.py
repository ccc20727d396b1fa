"""Mocks and helpers for the aws backend tests (AWS cannot be reached here). No tests in this module.

The shared mocks (tests/mocking.py) echo inputs back as outputs. The aws backend also needs what AWS computes
(instance ids and addresses, a key pair's name, the generated key's halves) and answers to its
invokes (getAmi, getSubnets, getAvailabilityZones). `install` swaps in mocks that add those and a
mock monitor that records what the engine would see for each registration: parent, provider and
dependencies (URNs), so tests can check the delete order the engine derives from them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mocking
import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks

from styx.components import phases

INSTANCE = "aws:ec2/instance:Instance"
EIP = "aws:ec2/eip:Eip"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
IGW = "aws:ec2/internetGateway:InternetGateway"
RT = "aws:ec2/routeTable:RouteTable"
RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"
KEYPAIR = "aws:ec2/keyPair:KeyPair"
PG = "aws:ec2/placementGroup:PlacementGroup"
PROVIDER = "pulumi:providers:aws"
TLS_KEY = "tls:index/privateKey:PrivateKey"
REMOTE = "command:remote:Command"
LOCAL = "command:local:Command"

MOCK_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nMOCKAWSPRIVATE\n-----END OPENSSH PRIVATE KEY-----\n"
MOCK_PUBLIC = "ssh-ed25519 AAAAMOCKAWS styx\n"


def aws_cluster(**overrides: Any) -> dict[str, Any]:
    """1 head m6i.large + 2 A100:8 spot workers on p4d.24xlarge (the issue's example)."""
    base: dict[str, Any] = {
        "name": "demo",
        "cloud": "aws",
        "region": "us-east-1",
        "head": {"instance_type": "m6i.large"},
        "workers": [{
            "name": "gpu", "count": 2, "instance_type": "p4d.24xlarge", "spot": True, "disk_size_gb": 500,
            "resources": {"accelerators": "A100:8"},
        }],
        "aws": {"ssh_cidrs": ["203.0.113.0/24"]},
        "setup": {"packages": ["jq"]},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return base


def user_data_of(r: Any) -> str:
    """An instance's cloud-config as the instance reads it: userData, or userDataBase64 (gzipped)."""
    import base64
    import gzip

    if "userDataBase64" in r.inputs:
        return gzip.decompress(base64.b64decode(r.inputs["userDataBase64"])).decode()
    return r.inputs["userData"]


@dataclass
class Registration:
    urn: str
    typ: str
    name: str
    parent: str
    provider: str
    dependencies: list[str]
    ignore_changes: list[str]
    delete_before_replace: bool
    custom: bool


@dataclass
class Graph:
    """What the engine would receive for each registration (by URN); names refer to custom resources.

    (A Node component and its instance share a name, e.g. `demo-head`; lookups by name pick the
    custom resource.)
    """

    regs: dict[str, Registration] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def get(self, name: str) -> Registration:
        hits = [r for r in self.regs.values() if r.name == name and r.custom]
        assert len(hits) == 1, f"{len(hits)} custom resources named {name}"
        return hits[0]

    def deps(self, name: str) -> set[str]:
        """Names this resource depends on directly (explicit depends_on + property dependencies)."""
        return {self.regs[u].name for u in self.get(name).dependencies if u in self.regs}

    def transitive_deps(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for d in self.deps(todo.pop()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen


# moves every instance's public IP, not its private one: a "started" instance (a stopped EC2 instance gets a new
# public IP when it runs again, unless it has an Elastic IP; its private IP stays)
public_shift = 0


def mock_id(prefix: str, name: str, n: int = 17) -> str:
    return f"{prefix}-{hashlib.sha256(name.encode()).hexdigest()[:n]}"


def _enrich(typ: str, name: str, inputs: dict[str, Any], outs: dict[str, Any]) -> str | None:
    """Fill in what AWS computes (wire names, camelCase). Returns a resource id to use, if any."""
    if typ == TLS_KEY:
        outs["privateKeyOpenssh"] = MOCK_PRIVATE
        outs["publicKeyOpenssh"] = MOCK_PUBLIC
    elif typ == INSTANCE:
        # per name, not per call: the engine registers the instances concurrently, in any order
        n = int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) % 240 + 10
        outs["publicIp"] = f"198.51.100.{(n + public_shift) % 250}"
        outs["privateIp"] = f"10.42.0.{n % 250}"
        outs["availabilityZone"] = inputs.get("availabilityZone") or "us-east-1a"
        return mock_id("i", name)
    elif typ == EIP:  # stable per name: an Elastic IP keeps its address whatever happens to the instance
        outs["publicIp"] = f"192.0.2.{int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) % 250 + 1}"
        outs["allocationId"] = mock_id("eipalloc", name)
        outs["associationId"] = mock_id("eipassoc", name)
        return outs["allocationId"]
    elif typ == KEYPAIR:
        outs["keyName"] = inputs.get("keyName") or f"{name}-abc1234"
        return outs["keyName"]
    elif typ == PG:
        outs["name"] = inputs.get("name") or f"{name}-abc1234"
        return outs["name"]
    elif typ in (SG, VPC, SUBNET, IGW, RT):
        prefix = {SG: "sg", VPC: "vpc", SUBNET: "subnet", IGW: "igw", RT: "rtb"}[typ]
        return mock_id(prefix, name)
    return None


def _answer(token: str, args: dict[str, Any]) -> dict[str, Any]:
    if token == "aws:ec2/getAmi:getAmi":
        pattern = next((f["values"][0] for f in args.get("filters", []) if f["name"] == "name"), "")
        ami = mock_id("ami", pattern)
        return {"id": ami, "imageId": ami, "name": pattern.replace("*", "20250101")}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {"id": "us-east-1", "names": ["us-east-1b", "us-east-1a", "us-east-1c"],
                "zoneIds": ["use1-az2", "use1-az1", "use1-az4"]}
    if token == "aws:ec2/getSubnets:getSubnets":
        return {"id": "us-east-1", "ids": ["subnet-0bbbbbbbbbbbbbbbb", "subnet-0aaaaaaaaaaaaaaaa"],
                "filters": args.get("filters", [])}
    return {}


def make_aws_mocks(rec: mocking.Recorder, base_factory: Callable[[mocking.Recorder], Any], graph: Graph):
    base = base_factory(rec)

    class AwsMocks(type(base)):  # type: ignore[misc]
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            rid, outs = super().new_resource(args)
            own = _enrich(args.typ, args.name, dict(args.inputs), outs)
            return [own or rid, outs]

        def call(self, args: pulumi.runtime.MockCallArgs):
            graph.calls.append((args.token, dict(args.args)))
            return _answer(args.token, dict(args.args))

    return AwsMocks()


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, graph: Graph):
        super().__init__(mocks)
        self.graph = graph

    def RegisterResource(self, request):
        resp = super().RegisterResource(request)
        deps = list(request.dependencies)
        for pd in request.propertyDependencies.values():
            deps += list(pd.urns)
        self.graph.regs[resp.urn] = Registration(
            urn=resp.urn, typ=request.type, name=request.name, parent=request.parent, provider=request.provider,
            dependencies=deps, ignore_changes=list(request.ignoreChanges),
            delete_before_replace=bool(request.deleteBeforeReplace), custom=bool(request.custom),
        )
        return resp


@dataclass
class AwsRun:
    rec: mocking.Recorder
    graph: Graph

    def of_type(self, typ: str) -> list[mocking.Registered]:
        return self.rec.of_type(typ)

    def named(self, name: str) -> mocking.Registered:
        return self.rec.named(name)

    @property
    def outputs(self) -> dict[str, Any]:
        return self.rec.outputs


def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., AwsRun]:
    """Patch the shared mocks for AWS and return run(cluster_dict, **kw) -> AwsRun.

    Call phases.script_text.cache_clear() when done (the cache may hold the stub scripts).
    """
    phases.script_text.cache_clear()
    state: dict[str, Graph] = {}
    orig_make = mocking.make_mocks
    orig_set = pulumi.runtime.set_mocks

    def make(rec: mocking.Recorder):
        state["graph"] = Graph()
        return make_aws_mocks(rec, orig_make, state["graph"])

    def set_mocks(mocks, *a, **kw):
        kw["monitor"] = RecordingMonitor(mocks, state["graph"])
        return orig_set(mocks, *a, **kw)

    monkeypatch.setattr(mocking, "make_mocks", make)
    monkeypatch.setattr(pulumi.runtime, "set_mocks", set_mocks)

    def run(cluster: dict[str, Any], **kw: Any) -> AwsRun:
        rec = mocking.run_program(json.loads(json.dumps(cluster)), **kw)
        return AwsRun(rec, state["graph"])

    return run


def by_name(run: AwsRun, typ: str) -> dict[str, mocking.Registered]:
    return {r.name: r for r in run.of_type(typ)}
