"""The aws backend under Pulumi mocks: graph, inputs, outputs, config checks (AWS is never contacted)."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from mocking import Secret
from test_aws_mocks import (
    EGRESS,
    IGW,
    INGRESS,
    INSTANCE,
    KEYPAIR,
    LOCAL,
    MOCK_PRIVATE,
    MOCK_PUBLIC,
    PG,
    PROVIDER,
    REMOTE,
    RT,
    RTA,
    SG,
    SUBNET,
    TLS_KEY,
    VPC,
    aws_cluster,
    by_name,
    mock_id,
    user_data_of,
)

from styx.components.backends import check_cluster, get_backend
from styx.components.backends.aws import (
    CANONICAL_OWNER,
    AwsBackend,
    arch_of,
    cidr_slug,
    subnet_cidr,
    zone_block,
)
from styx.components.runner import lib_hash
from styx.model.config import ConfigError, parse_cluster

NODES = ("head", "gpu-0", "gpu-1")


def _ami_calls(run):
    return [args for tok, args in run.graph.calls if tok == "aws:ec2/getAmi:getAmi"]


def _filter(args, name):
    return next(f["values"] for f in args["filters"] if f["name"] == name)


# ------------------------------------------------------------------ registry, helpers


def test_registry_resolves_aws_backend():
    b = get_backend("aws")
    assert isinstance(b, AwsBackend)
    assert b.key_generator == "tls"


@pytest.mark.parametrize(("typ", "arch"), [
    ("m6i.large", "x86_64"), ("p4d.24xlarge", "x86_64"), ("g4dn.xlarge", "x86_64"), ("p5.48xlarge", "x86_64"),
    ("m7g.large", "arm64"), ("c6gn.16xlarge", "arm64"), ("g5g.xlarge", "arm64"), ("t4g.micro", "arm64"),
    ("a1.large", "arm64"), ("is4gen.large", "arm64"), ("m7i-flex.large", "x86_64"), ("inf2.xlarge", "x86_64"),
])
def test_arch_of(typ, arch):
    assert arch_of(typ) == arch


def test_subnet_blocks_are_stable_and_disjoint():
    assert subnet_cidr("10.42.0.0/16", "default") == "10.42.0.0/20"
    assert subnet_cidr("10.42.0.0/16", "us-east-1a") == "10.42.16.0/20"
    assert subnet_cidr("10.42.0.0/16", "us-east-1c") == "10.42.48.0/20"
    assert subnet_cidr("10.9.8.0/24", "us-east-1b") == "10.9.8.32/28"
    assert len({zone_block(z) for z in ("default", "us-east-1a", "us-east-1b", "us-east-1f")}) == 4
    assert cidr_slug("2001:db8::/32") == "2001-db8-32"


# ------------------------------------------------------------------ default network: new VPC


def test_default_vpc_graph(aws_program):
    run = aws_program(aws_cluster())
    assert len(run.of_type(PROVIDER)) == 1
    assert run.of_type(PROVIDER)[0].inputs["region"] == "us-east-1"
    assert len(run.of_type(VPC)) == 1
    vpc = run.of_type(VPC)[0]
    assert vpc.inputs["cidrBlock"] == "10.42.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] is True
    assert len(run.of_type(IGW)) == 1
    (rt,) = run.of_type(RT)
    assert rt.inputs["routes"][0]["cidrBlock"] == "0.0.0.0/0"
    assert rt.inputs["routes"][0]["gatewayId"].startswith("igw-")
    (subnet,) = run.of_type(SUBNET)  # every node is in the default zone: one public subnet
    assert subnet.inputs["mapPublicIpOnLaunch"] is True
    assert subnet.inputs["cidrBlock"] == "10.42.0.0/20"
    assert subnet.inputs["availabilityZone"] == "us-east-1a"  # first available zone, sorted
    assert len(run.of_type(RTA)) == 1
    (sg,) = run.of_type(SG)
    assert sg.inputs["vpcId"].startswith("vpc-")
    assert not sg.inputs.get("ingress")  # rules are separate resources
    assert len(run.of_type(INSTANCE)) == 3
    assert {r.name for r in run.of_type(INSTANCE)} == {f"demo-{n}" for n in NODES}
    for inst in run.of_type(INSTANCE):
        assert inst.inputs["subnetId"] == mock_id("subnet", "demo-subnet-default")
    # every AWS resource goes through the cluster's explicit provider (region from the config)
    prov_urn = run.graph.get("demo-aws").urn
    for reg in run.graph.regs.values():
        if reg.typ.startswith("aws:"):
            assert reg.provider.startswith(prov_urn + "::"), reg.name


def test_zones_get_their_own_subnets(aws_program):
    cluster = aws_cluster(zone="us-east-1b")
    cluster["workers"].append({"name": "cpu", "count": 1, "instance_type": "c6i.xlarge", "zone": "us-east-1d"})
    run = aws_program(cluster)
    subnets = by_name(run, SUBNET)
    assert set(subnets) == {"demo-subnet-us-east-1b", "demo-subnet-us-east-1d"}
    assert subnets["demo-subnet-us-east-1b"].inputs["cidrBlock"] == "10.42.32.0/20"
    assert subnets["demo-subnet-us-east-1d"].inputs["availabilityZone"] == "us-east-1d"
    inst = by_name(run, INSTANCE)
    assert inst["demo-head"].inputs["availabilityZone"] == "us-east-1b"
    assert inst["demo-cpu-0"].inputs["availabilityZone"] == "us-east-1d"
    assert not [c for c in run.graph.calls if "getAvailabilityZones" in c[0]]  # no default zone needed
    nodes = {n["name"]: n for n in run.outputs["nodes"]}
    assert nodes["cpu-0"]["zone"] == "us-east-1d"


# ------------------------------------------------------------------ existing VPC / subnet


def test_existing_vpc_and_subnet(aws_program):
    run = aws_program(aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"], "vpc_id": "vpc-0123abcd",
                                       "subnet_id": "subnet-0456cdef"}))
    for t in (VPC, SUBNET, IGW, RT, RTA):
        assert run.of_type(t) == [], t
    (sg,) = run.of_type(SG)
    assert sg.inputs["vpcId"] == "vpc-0123abcd"
    for inst in run.of_type(INSTANCE):
        assert inst.inputs["subnetId"] == "subnet-0456cdef"
        assert inst.inputs["associatePublicIpAddress"] is True
    assert run.outputs["aws_vpc_id"] == "vpc-0123abcd"
    assert not [c for c in run.graph.calls if "getSubnets" in c[0]]


def test_existing_vpc_without_subnet_looks_one_up_per_zone(aws_program):
    run = aws_program(aws_cluster(zone="us-east-1a", aws={"ssh_cidrs": ["203.0.113.0/24"], "vpc_id": "vpc-0123abcd"}))
    calls = [args for tok, args in run.graph.calls if tok == "aws:ec2/getSubnets:getSubnets"]
    assert len(calls) == 1
    assert _filter(calls[0], "vpc-id") == ["vpc-0123abcd"]
    assert _filter(calls[0], "availability-zone") == ["us-east-1a"]
    for inst in run.of_type(INSTANCE):  # the lowest id of what the lookup returned
        assert inst.inputs["subnetId"] == "subnet-0aaaaaaaaaaaaaaaa"
    assert run.of_type(VPC) == []


# ------------------------------------------------------------------ instances: GPU spot workers


def test_head_and_two_gpu_spot_workers(aws_program):
    run = aws_program(aws_cluster())
    inst = by_name(run, INSTANCE)
    head, w0, w1 = inst["demo-head"], inst["demo-gpu-0"], inst["demo-gpu-1"]
    assert head.inputs["instanceType"] == "m6i.large"
    assert "instanceMarketOptions" not in head.inputs  # on-demand
    for w in (w0, w1):
        assert w.inputs["instanceType"] == "p4d.24xlarge"
        market = w.inputs["instanceMarketOptions"]
        assert market["marketType"] == "spot"
        assert market["spotOptions"]["spotInstanceType"] == "one-time"
        assert market["spotOptions"]["instanceInterruptionBehavior"] == "terminate"
        assert "maxPrice" not in market["spotOptions"]  # default cap: the on-demand price
        assert w.inputs["rootBlockDevice"]["volumeSize"] == 500
    assert head.inputs["rootBlockDevice"]["volumeSize"] == 100
    for name, i in inst.items():
        node = name.removeprefix("demo-")
        assert i.inputs["tags"] == {"Name": name, "styx:cluster": "demo", "styx:node": node,
                                    "styx:role": "head" if node == "head" else "worker"}
        assert i.inputs["rootBlockDevice"]["volumeType"] == "gp3"
        assert i.inputs["rootBlockDevice"]["encrypted"] is True
        assert i.inputs["rootBlockDevice"]["deleteOnTermination"] is True
        assert i.inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                               "httpPutResponseHopLimit": 1}
        assert i.inputs["keyName"] == "demo-key-abc1234"
        assert i.inputs["vpcSecurityGroupIds"] == [run.outputs["aws_security_group_id"]]
        assert "placementGroup" not in i.inputs
    # one AMI lookup shared by all three x86 nodes: Canonical Ubuntu 22.04
    (ami,) = _ami_calls(run)
    assert ami["owners"] == [CANONICAL_OWNER]
    assert ami["mostRecent"] is True
    assert _filter(ami, "name") == ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"]
    assert _filter(ami, "architecture") == ["x86_64"]
    assert {i.inputs["ami"] for i in inst.values()} == {mock_id("ami", _filter(ami, "name")[0])}
    # the looked-up AMI is pinned: a new upstream release never replaces running nodes
    (pin,) = [r for r in run.of_type(LOCAL) if r.name == "demo-ami-ubuntu-22.04-x86_64"]
    assert pin.inputs["environment"]["STYX_AMI"] == mock_id("ami", _filter(ami, "name")[0])
    assert "create" not in pin.inputs  # state only: nothing runs
    assert run.graph.get(pin.name).ignore_changes == ["environment"]
    for name in inst:
        # read at first boot only (host key, first-boot work); an image change does replace the node
        assert run.graph.get(name).ignore_changes == ["userData", "userDataBase64"]
    assert run.outputs["aws_images"] == {"ubuntu-22.04/x86_64": mock_id("ami", _filter(ami, "name")[0])}


def test_spot_max_price_placement_group_and_hop_limit(aws_program):
    run = aws_program(aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"], "spot_max_price": 12.5,
                                       "placement_group": True, "imds_hop_limit": 2, "root_volume_type": "io2"}))
    (pg,) = run.of_type(PG)
    assert pg.inputs["strategy"] == "cluster"
    inst = by_name(run, INSTANCE)
    for w in ("demo-gpu-0", "demo-gpu-1"):
        assert inst[w].inputs["instanceMarketOptions"]["spotOptions"]["maxPrice"] == "12.5"
        assert inst[w].inputs["placementGroup"] == "demo-pg-abc1234"
    assert "placementGroup" not in inst["demo-head"].inputs  # the head is not a GPU peer
    for i in inst.values():
        assert i.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2
        assert i.inputs["rootBlockDevice"]["volumeType"] == "io2"
        assert i.inputs["rootBlockDevice"]["iops"] == 3000
    assert run.outputs["aws_placement_group"] == "demo-pg-abc1234"


def test_gpu_image_option(aws_program):
    cluster = aws_cluster()
    cluster["workers"][0]["image"] = "gpu"
    run = aws_program(cluster)
    lookups = {_filter(a, "name")[0]: a for a in _ami_calls(run)}
    assert set(lookups) == {"ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
                            "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"}
    assert lookups["Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"]["owners"] == ["amazon"]
    inst = by_name(run, INSTANCE)
    assert inst["demo-gpu-0"].inputs["ami"] == inst["demo-gpu-1"].inputs["ami"] != inst["demo-head"].inputs["ami"]


def test_ubuntu_2404_arm64(aws_program):
    run = aws_program(aws_cluster(head={"instance_type": "m7g.large"}, workers=[],
                                  aws={"ssh_cidrs": ["203.0.113.0/24"], "image": "ubuntu-24.04"}))
    (ami,) = _ami_calls(run)
    assert _filter(ami, "name") == ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"]
    assert _filter(ami, "architecture") == ["arm64"]
    assert [r.name for r in run.of_type(LOCAL) if not r.name.endswith(("-ray-token", "-host-key"))] == [
        "demo-ami-ubuntu-24.04-arm64"]  # a new image: a new pin


def test_explicit_ami(aws_program):
    run = aws_program(aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"], "ami": "ami-0abcdef1234567890"}))
    assert _ami_calls(run) == []
    for i in run.of_type(INSTANCE):
        assert i.inputs["ami"] == "ami-0abcdef1234567890"
    assert [r.name for r in run.of_type(LOCAL) if not r.name.endswith("-host-key")] == ["demo-ray-token"]  # nothing
    # to pin; the Ray token
    assert "aws_images" not in run.outputs


def test_node_image_overrides_cluster_ami(aws_program):
    cluster = aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"], "ami": "ami-0abcdef1234567890"})
    cluster["workers"][0]["image"] = "ami-0fedcba9876543210"
    run = aws_program(cluster)
    inst = by_name(run, INSTANCE)
    assert inst["demo-head"].inputs["ami"] == "ami-0abcdef1234567890"
    assert inst["demo-gpu-0"].inputs["ami"] == "ami-0fedcba9876543210"


def test_preview_registers_the_same_graph(aws_program):
    up = aws_program(aws_cluster())
    pre = aws_program(aws_cluster(), preview=True)
    assert sorted((r.typ, r.name) for r in pre.rec.resources) == sorted((r.typ, r.name) for r in up.rec.resources)


# ------------------------------------------------------------------ key


def test_generated_key_is_tls_and_secret(aws_program):
    run = aws_program(aws_cluster())
    (key,) = run.of_type(TLS_KEY)
    assert key.inputs["algorithm"] == "ED25519"
    (kp,) = run.of_type(KEYPAIR)
    assert kp.inputs["publicKey"] == MOCK_PUBLIC  # only the public half goes to AWS
    assert isinstance(run.outputs["ssh_private_key"], Secret)
    assert run.outputs["ssh_private_key"].value == MOCK_PRIVATE
    assert not any("ssh-keygen" in str(r.inputs.get("create", "")) for r in run.of_type(LOCAL)
                   if not r.name.endswith("-host-key"))  # no ssh-keygen for the cluster key (host keys: one per node)


def test_configured_key_is_not_generated(aws_program, tmp_path):
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    run = aws_program(aws_cluster(ssh={"private_key_file": str(tmp_path / "k")}))
    assert run.of_type(TLS_KEY) == []
    assert "ssh_private_key" not in run.outputs
    (kp,) = run.of_type(KEYPAIR)
    assert kp.inputs["publicKey"].split()[:2] == (tmp_path / "k.pub").read_text().split()[:2]


# ------------------------------------------------------------------ phases over SSH, identity, order


def test_phases_ssh_to_public_ip_as_ubuntu(aws_program):
    run = aws_program(aws_cluster())
    outputs = run.outputs
    hosts = {n["name"]: n for n in outputs["nodes"]}
    assert outputs["ssh_user"] == "ubuntu"
    for cmd in run.of_type(REMOTE):
        node = next(n for n in NODES if cmd.name.startswith(f"demo-{n}-"))
        conn = cmd.inputs["connection"]
        assert conn["host"] == hosts[node]["host"]
        # the on-demand head: its Elastic IP (aws.static_ip, tests/.../test_static_ip.py); spot: the instance's
        assert conn["host"].startswith("192.0.2." if node == "head" else "198.51.100.")
        assert conn["user"] == "ubuntu"
        assert conn["port"] == 22
    assert outputs["ray_address"] == hosts["head"]["private_ip"] + ":6379"
    assert "-L 8265:127.0.0.1:8265" in outputs["dashboard"]
    assert f"ubuntu@{hosts['head']['host']}" in outputs["dashboard"]


def test_explicit_ssh_user_is_kept(aws_program):
    run = aws_program(aws_cluster(ssh={"user": "ec2-user"}, aws={"ssh_cidrs": ["203.0.113.0/24"],
                                                                 "ami": "ami-0abcdef1234567890"}))
    assert run.outputs["ssh_user"] == "ec2-user"


def test_gate_identity_is_the_instance_id(aws_program):
    """A replaced instance (new id) changes the gate's trigger, so every phase re-runs on it."""
    from styx.components.node import digest
    from styx.components.phases import GATE, body_of

    run = aws_program(aws_cluster())
    ids = run.outputs["aws_instance_ids"]
    for node in NODES:
        gate = run.named(f"demo-{node}-wait_ssh")
        assert ids[node].startswith("i-")
        assert gate.inputs["triggers"][0] == digest(GATE.name, body_of(GATE), ids[node], lib_hash())


def test_every_phase_depends_on_its_instance(aws_program):
    """Delete order: the engine deletes dependents first, so phases (whose deletes SSH in) go before
    their instance, and the instance before its SSH rule / route -- destroy never dials a dead host."""
    run = aws_program(aws_cluster(setup={"packages": ["jq"], "env": {"A": "1"},
                                         "custom_scripts": [{"name": "hi", "inline": "true"}]}))
    remotes = [r.name for r in run.of_type(REMOTE)]
    assert len(remotes) >= 3 * 6
    for name in remotes:
        node = next(n for n in NODES if name.startswith(f"demo-{n}-"))
        deps = run.graph.transitive_deps(name)
        assert f"demo-{node}" in deps, f"{name} does not depend on its instance"
        others = {f"demo-{n}" for n in NODES if n != node} & deps
        # only a worker's python_env (after the head's wheel cache) and Ray start follow the head (and so depend
        # on the head's instance too), and what comes after them on the worker
        assert not others or (node != "head" and others == {"demo-head"}
                              and not name.endswith(("-wait_ssh", "-system_packages"))), (name, others)
    for node in NODES:
        direct = run.graph.deps(f"demo-{node}")
        assert "demo-ssh-203-0-113-0-24" in direct
        assert "demo-rta-default" in direct
        assert {"demo-intra", "demo-egress", "demo-sg", "demo-key"} <= direct


def test_outputs(aws_program):
    run = aws_program(aws_cluster())
    out = run.outputs
    assert out["aws_region"] == "us-east-1"
    assert out["aws_vpc_id"].startswith("vpc-")
    assert out["aws_security_group_id"].startswith("sg-")
    assert out["aws_key_pair"] == "demo-key-abc1234"
    assert set(out["aws_instance_ids"]) == set(NODES)
    assert "aws_placement_group" not in out
    nodes = {n["name"]: n for n in out["nodes"]}
    assert nodes["gpu-0"]["instance_type"] == "p4d.24xlarge"


# ------------------------------------------------------------------ security group


def test_security_group_rules(aws_program):
    run = aws_program(aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24", "198.51.100.7", "2001:db8::/32",
                                                     "203.0.113.5/24"]}))
    sg_id = run.outputs["aws_security_group_id"]
    rules = by_name(run, INGRESS)
    assert set(rules) == {"demo-ssh-203-0-113-0-24", "demo-ssh-198-51-100-7-32", "demo-ssh-2001-db8-32",
                          "demo-intra"}
    for name, r in rules.items():
        assert r.inputs["securityGroupId"] == sg_id
        if name == "demo-intra":
            assert r.inputs["ipProtocol"] == "-1"
            assert r.inputs["referencedSecurityGroupId"] == sg_id
            assert "cidrIpv4" not in r.inputs and "cidrIpv6" not in r.inputs
        else:
            assert (r.inputs["ipProtocol"], r.inputs["fromPort"], r.inputs["toPort"]) == ("tcp", 22, 22)
    assert rules["demo-ssh-2001-db8-32"].inputs["cidrIpv6"] == "2001:db8::/32"
    assert rules["demo-ssh-198-51-100-7-32"].inputs["cidrIpv4"] == "198.51.100.7/32"
    (egress,) = run.of_type(EGRESS)
    assert egress.inputs["cidrIpv4"] == "0.0.0.0/0"


def test_world_ssh_cidr_opens_port_22_only(aws_program):
    run = aws_program(aws_cluster(aws={"ssh_cidrs": ["0.0.0.0/0", "::/0"]}))
    world = [r for r in run.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"
             or r.inputs.get("cidrIpv6") == "::/0"]
    assert len(world) == 2
    for r in world:
        assert (r.inputs["ipProtocol"], r.inputs["fromPort"], r.inputs["toPort"]) == ("tcp", 22, 22)


# ------------------------------------------------------------------ config checks


def _cfg(**overrides):
    return parse_cluster(aws_cluster(**overrides))


def test_empty_ssh_cidrs_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        check_cluster(aws_cluster(aws={"ssh_cidrs": []}))  # the model, then AwsBackend.config_problems
    assert "styx:cluster.aws.ssh_cidrs" in str(e.value)
    assert "0.0.0.0/0" in str(e.value)


def test_check_passes_for_the_example():
    assert AwsBackend().config_problems(_cfg()) == []


def test_check_accepts_accelerators_that_match_the_gpu_table():
    workers = [{"name": "a", "instance_type": "p4de.24xlarge", "resources": {"accelerators": "A100:8"}},
               {"name": "b", "instance_type": "g5.xlarge", "resources": {"accelerators": "a10g"}},
               {"name": "c", "instance_type": "m6i.large", "resources": {"cpus": "2"}}]
    assert AwsBackend().config_problems(_cfg(workers=workers)) == []


CATALOG = Path(__file__).resolve().parents[2] / "styx" / "model" / "catalog" / "data"


def test_auto_type_is_resolved_recorded_and_used(aws_program, monkeypatch):
    monkeypatch.setenv("STYX_CATALOG_DIR", str(CATALOG))
    run = aws_program(aws_cluster(head={"instance_type": "auto", "resources": {"cpus": "8+"}},
                                  workers=[{"name": "gpu", "count": 2, "instance_type": "auto", "spot": True,
                                            "resources": {"accelerators": "A100:8"}}]))
    stash = by_name(run, "pulumi:index:Stash")
    assert list(stash) == ["demo-placement"]
    recorded = stash["demo-placement"].inputs["input"]
    assert recorded["cloud"] == "aws" and recorded["region"] == "us-east-1"
    types = {n: r.inputs["instanceType"] for n, r in by_name(run, "aws:ec2/instance:Instance").items()}
    assert types == {"demo-head": "m6i.2xlarge", "demo-gpu-0": "p4d.24xlarge", "demo-gpu-1": "p4d.24xlarge"}


def test_auto_type_without_a_fit_is_reported_before_anything_is_registered(aws_program, monkeypatch):
    monkeypatch.setenv("STYX_CATALOG_DIR", str(CATALOG))
    with pytest.raises(pulumi.RunError, match="auto found no offer that fits"):
        aws_program(aws_cluster(head={"instance_type": "auto", "resources": {"accelerators": "H100:3"}}))
    with pytest.raises(pulumi.RunError,
                       match=r"styx:cluster.head.resources.accelerators: 'B200' is not a GPU in the aws catalog"):
        aws_program(aws_cluster(head={"instance_type": "auto", "resources": {"accelerators": "B200:8"}}))


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"head": {"instance_type": "m6i.large", "image": "debian"}}, "head.image: 'debian' is not an AMI id"),
    ({"head": {"instance_type": "M6I large"}}, "head.instance_type: 'M6I large' is not an EC2 instance type"),
    ({"zone": "eu-west-1a"}, "zone: 'eu-west-1a' is not in region 'us-east-1'"),
    ({"head": {"instance_type": "m6i.large", "zone": "us-west-2a"}}, "head.zone: 'us-west-2a' is not in region"),
    ({"ssh": {"port": 2222}}, "ssh.port: 2222 is not allowed: AWS images run sshd on 22"),
    ({"workers": [{"name": "a", "instance_type": "p4d.24xlarge", "zone": "us-east-1a"},
                  {"name": "b", "instance_type": "p4d.24xlarge", "zone": "us-east-1b"}],
      "aws": {"ssh_cidrs": ["203.0.113.0/24"], "placement_group": True}},
     "aws.placement_group: a cluster placement group lives in one zone"),
    ({"head": {"instance_type": "m6i.large", "zone": "us-east-1a"},
      "workers": [{"name": "a", "instance_type": "p4d.24xlarge", "zone": "us-east-1b"}],
      "aws": {"ssh_cidrs": ["203.0.113.0/24"], "vpc_id": "vpc-01", "subnet_id": "subnet-01"}},
     "aws.subnet_id: a subnet lives in one zone"),
    ({"head": {"instance_type": "m6i.large", "zone": "us-east-1-bos-1a"}, "zone": "us-east-1a"},
     "share a zone letter"),
    ({"workers": [{"name": "g", "instance_type": "p4d.24xlarge", "resources": {"accelerators": "H100:8"}}]},
     "workers[0].resources.accelerators: 'H100:8' does not match p4d.24xlarge, which has A100:8"),
    ({"workers": [{"name": "g", "instance_type": "g5.xlarge", "resources": {"accelerators": "A10G"}},
                  {"name": "h", "instance_type": "g5.xlarge", "resources": {"accelerators": "A10G:4"}}]},
     "workers[1].resources.accelerators: 'A10G:4' does not match g5.xlarge, which has A10G:1"),
])
def test_check_problems(overrides, needle):
    problems = AwsBackend().config_problems(_cfg(**overrides))
    assert any(needle in p for p in problems), problems
    assert all(p.startswith("styx:cluster.") for p in problems)


@pytest.mark.parametrize("bad", ["10.0.0.0/8", "10.42.0.0/25", "fd00::/48", "nope"])
def test_vpc_cidr_validation(bad):
    with pytest.raises(ConfigError, match=r"styx:cluster\.aws\.vpc_cidr"):
        parse_cluster(aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"], "vpc_cidr": bad}))


# ------------------------------------------------------------------ the example stack


def test_example_stack_file(aws_program):
    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[3] / "stacks" / "Pulumi.aws-gpu.yaml").read_text())
    raw = doc["config"]["styx:cluster"]
    assert AwsBackend().config_problems(parse_cluster(raw)) == []
    run = aws_program(raw)
    inst = by_name(run, INSTANCE)
    assert set(inst) == {"aws-gpu-head", "aws-gpu-gpu-0", "aws-gpu-gpu-1"}
    assert inst["aws-gpu-head"].inputs["instanceType"] == "m6i.large"
    for w in ("aws-gpu-gpu-0", "aws-gpu-gpu-1"):
        assert inst[w].inputs["instanceType"] == "p4d.24xlarge"
        assert inst[w].inputs["instanceMarketOptions"]["marketType"] == "spot"
        assert inst[w].inputs["placementGroup"]
    assert len(run.of_type(PG)) == 1
    assert [r.inputs["cidrIpv4"] for r in run.of_type(INGRESS) if "cidrIpv4" in r.inputs] == ["203.0.113.0/24"]


# --------------------------------------------------------------------------- pinned host keys


def test_host_key_in_user_data_as_a_secret_and_pinned(aws_program):
    import mocking
    import yaml

    run = aws_program(aws_cluster())
    for r in run.of_type(INSTANCE):
        assert mocking.is_secret_input(r.raw["userDataBase64"]), r.name  # setup.first_boot auto: gzipped
        ud = user_data_of(r)
        assert ud.startswith("#cloud-config\n") and "ssh_deletekeys: true" in ud and "ssh_genkeytypes: []" in ud
        keys = yaml.safe_load(ud)["ssh_keys"]
        assert keys["ed25519_private"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert keys["ed25519_public"].startswith("ssh-ed25519 ")
        assert {"userData", "userDataBase64"} <= set(run.graph.get(r.name).ignore_changes), "first boot only"
    gens = sorted(r.name for r in run.of_type(LOCAL) if r.name.endswith("-host-key"))
    assert gens == ["demo-gpu-0-host-key", "demo-gpu-1-host-key", "demo-head-host-key"]
    for r in run.of_type(REMOTE):
        assert r.inputs["connection"]["hostKey"].startswith("ssh-ed25519 "), r.name


def test_jump_head_private_workers_get_no_public_ip_and_go_through_the_head(aws_program):
    run = aws_program(aws_cluster(ssh={"jump": "head"}))
    inst = by_name(run.rec, INSTANCE)
    assert inst["demo-head"].inputs["associatePublicIpAddress"] is True
    for w in ("demo-gpu-0", "demo-gpu-1"):
        assert inst[w].inputs["associatePublicIpAddress"] is False, w
    for r in run.of_type(REMOTE):
        conn = r.inputs["connection"]
        if r.name.startswith("demo-head-"):
            assert "proxy" not in conn and conn["host"].startswith("192.0.2."), r.name  # its Elastic IP
        else:
            assert conn["host"].startswith("10.42.0."), f"{r.name}: the private address"
            assert conn["proxy"]["host"].startswith("192.0.2.") and conn["proxy"]["hostKey"].startswith("ssh-")
    nodes = {n["name"]: n for n in run.rec.outputs["nodes"]}
    assert nodes["gpu-0"]["private"] is True and nodes["gpu-0"]["host"].startswith("10.42.0.")


# --------------------------------------------------------------------------- styx stop / start


STATE = "aws:ec2transitgateway/instanceState:InstanceState"


def _power(*stopped):
    import json

    return {"styx:power": json.dumps({"stopped": {n: "2026-12-02T04:00:00Z" for n in stopped}, "intervals": []})}


def test_instance_state_per_on_demand_node_follows_the_stopped_record(aws_program):
    cluster = aws_cluster(workers=[{"name": "cpu", "count": 2, "instance_type": "m6i.large"},
                                   {"name": "gpu", "count": 1, "instance_type": "p4d.24xlarge", "spot": True,
                                    "resources": {"accelerators": "A100:8"}}])
    running = aws_program(cluster)
    states = by_name(running, STATE)
    # spot instances cannot be stopped on AWS: no state resource (styx stop refuses them)
    assert sorted(states) == ["demo-cpu-0-power", "demo-cpu-1-power", "demo-head-power"]
    assert {r.inputs["state"] for r in states.values()} == {"running"}
    inst = by_name(running, INSTANCE)
    assert states["demo-cpu-0-power"].inputs["instanceId"].startswith("i-")
    assert running.graph.get("demo-cpu-0-power").parent == running.graph.get("demo-cpu-0").parent  # the Node
    assert running.graph.get("demo-cpu-0").urn in running.graph.get("demo-cpu-0-power").dependencies

    stopped = aws_program(cluster, extra_config=_power("head", "cpu-1"))
    st = by_name(stopped, STATE)
    assert {n: r.inputs["state"] for n, r in st.items()} == {
        "demo-head-power": "stopped", "demo-cpu-0-power": "running", "demo-cpu-1-power": "stopped"}
    # stopping changes nothing else: the instances' inputs and every phase (its triggers, its command) stay
    assert {n: r.inputs for n, r in by_name(stopped, INSTANCE).items()} == {n: r.inputs for n, r in inst.items()}
    assert {r.name: r.inputs for r in stopped.of_type(REMOTE)} == {r.name: r.inputs for r in running.of_type(REMOTE)}
    # no phase depends on a state resource (a stop never re-runs or replaces a phase)
    urns = {running.graph.get(n).urn for n in st}
    for r in stopped.of_type(REMOTE):
        assert not urns & set(stopped.graph.get(r.name).dependencies), r.name


def test_power_urns_name_the_state_resource_beside_the_instance(aws_program):
    run = aws_program(aws_cluster(workers=[{"name": "cpu", "count": 1, "instance_type": "m6i.large"}]))
    b = get_backend("aws")
    inst, state = run.graph.get("demo-cpu-0").urn, run.graph.get("demo-cpu-0-power").urn
    assert b.power_urns({}, "cpu-0", inst) == [state]
    assert b.power_in_program and b.can_stop(aws_cluster(), "head") is None
    assert "spot" in b.can_stop(aws_cluster(), "gpu-0")


def test_jump_bastion_no_instance_gets_a_public_ip_every_phase_through_the_bastion(aws_program):
    run = aws_program(aws_cluster(ssh={"jump": "ops@bastion.example.com:2200"}))
    for name, r in by_name(run.rec, INSTANCE).items():
        assert r.inputs["associatePublicIpAddress"] is False, name
    for r in run.of_type(REMOTE):
        conn = r.inputs["connection"]
        assert conn["host"].startswith("10.42.0."), f"{r.name}: the private address"
        assert (conn["proxy"]["host"], conn["proxy"]["port"], conn["proxy"]["user"]) == \
            ("bastion.example.com", 2200, "ops"), r.name
        assert conn["proxy"]["hostKey"].startswith("ssh-"), r.name
    assert all(n["private"] for n in run.rec.outputs["nodes"])
