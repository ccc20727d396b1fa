"""Security invariants of the gcp backend, over many generated configs (under mocks).

- no firewall rule lets 0.0.0.0/0 (or ::/0) in, except tcp:22 when ssh_cidrs lists it explicitly;
- no rule opens anything but tcp:22 to an address range: Ray ports only from the cluster tag;
- every rule targets the cluster's tag only, and a deny-all rule sits under the allows;
- GPU instances always TERMINATE on host maintenance; spot is SPOT, preemptible, no restart;
- OS Login off unless asked; project-wide SSH keys blocked;
- the cluster's own service account, never with cloud-platform unless listed explicitly.
"""

from __future__ import annotations

import functools
import ipaddress
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gcp_mocks import (
    ACCOUNT,
    FIREWALL,
    INSTANCE,
    gcp_cluster,
    gcp_runner,
)

from styx.components.backends import gcp as g
from styx.model.config import NodeSpec, parse_cluster

OPEN = {"0.0.0.0/0", "::/0"}
CIDRS = ["203.0.113.0/24", "198.51.100.7/32", "0.0.0.0/0", "2001:db8::/32", "::/0", "10.0.0.0/8"]
CPU_TYPES = ["n2-standard-8", "e2-standard-4", "n1-standard-4", "c3-standard-8", "t2a-standard-4", "n4-standard-8"]
# (machine type, accelerator request): every valid pairing kind
WORKER_TYPES: list[tuple[str, str | None]] = [
    ("n2-standard-4", None),
    ("n1-standard-8", None),
    ("n1-standard-8", "T4:1"),
    ("n1-standard-16", "T4:4"),
    ("n1-standard-16", "V100:2"),
    ("n1-standard-8", "P100:1"),
    ("a2-highgpu-8g", "A100:8"),
    ("a2-highgpu-1g", None),
    ("a2-megagpu-16g", "A100:16"),
    ("a2-ultragpu-8g", "A100-80GB:8"),
    ("a3-highgpu-8g", "H100:8"),
    ("a3-megagpu-8g", None),
    ("a3-ultragpu-8g", "H200:8"),
    ("a4-highgpu-8g", "B200:8"),
    ("g2-standard-8", "L4:1"),
    ("g2-standard-24", None),
    ("g2-standard-96", "L4:8"),
]
IMAGES = ["ubuntu-22.04", "ubuntu-24.04", "gpu", "gpu-ubuntu-24.04", "projects/my-proj/global/images/family/mine"]
RAY_PORTS = {6379, 8265, 10001}


@pytest.fixture
def gcp_program(monkeypatch, tmp_path):
    yield from gcp_runner(monkeypatch, tmp_path)


@functools.cache
def private_key() -> str:
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/k"], check=True)
        return Path(d, "k").read_text()


@st.composite
def clusters(draw) -> dict[str, Any]:
    name = draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True))
    groups = []
    for i in range(draw(st.integers(0, 2))):
        mt, acc = draw(st.sampled_from(WORKER_TYPES))
        grp: dict[str, Any] = {"name": f"w{i}", "count": draw(st.integers(1, 2)), "instance_type": mt,
                               "spot": draw(st.booleans())}
        if acc:
            grp["resources"] = {"accelerators": acc}
        if draw(st.booleans()):
            grp["image"] = draw(st.sampled_from(IMAGES))
        groups.append(grp)
    gcp: dict[str, Any] = {
        "ssh_cidrs": draw(st.lists(st.sampled_from(CIDRS), min_size=1, max_size=4, unique=True)),
        "image": draw(st.sampled_from(IMAGES)),
        "spot_termination_action": draw(st.sampled_from(["STOP", "DELETE"])),
    }
    net = draw(st.sampled_from(["new", "default", "shared"]))
    if net == "default":
        gcp["network"] = "default"
    elif net == "shared":
        gcp.update(network="vpc", subnetwork="projects/p/regions/us-central1/subnetworks/sub")
    extra: dict[str, Any] = {}
    if draw(st.integers(0, 4)) == 0:
        gcp["os_login"] = True
        extra["ssh"] = {"private_key": private_key(), "user": "alice"}
    if draw(st.booleans()):
        gcp["scopes"] = draw(st.lists(st.sampled_from([
            "https://www.googleapis.com/auth/cloud-platform",
            "https://www.googleapis.com/auth/devstorage.read_only",
            "https://www.googleapis.com/auth/logging.write",
        ]), max_size=3, unique=True))
    ports = draw(st.lists(st.integers(1024, 65535), min_size=3, max_size=3, unique=True))
    return gcp_cluster(
        name=name,
        head={"instance_type": draw(st.sampled_from(CPU_TYPES)), "spot": draw(st.booleans())},
        workers=groups,
        gcp=gcp,
        setup={"ray": {"port": ports[0], "dashboard_port": ports[1], "client_port": ports[2]}},
        **extra,
    )


def _covers(allow: dict[str, Any], port: int) -> bool:
    if allow["protocol"] not in ("all", "tcp", "udp", "sctp"):
        return False
    ports = allow.get("ports")
    if not ports:
        return True
    for p in ports:
        lo, _, hi = str(p).partition("-")
        if int(lo) <= port <= int(hi or lo):
            return True
    return False


def check_invariants(cluster: dict[str, Any], rec) -> None:
    cfg = parse_cluster(cluster)
    tag = g.gce_name("styx", cfg.name)
    listed = set(cfg.gcp.ssh_cidrs)
    ray = {cfg.setup.ray.port, cfg.setup.ray.dashboard_port, cfg.setup.ray.client_port} | RAY_PORTS

    rules = [r.inputs for r in rec.of_type(FIREWALL)]
    allows = [r for r in rules if r.get("allows")]
    denies = [r for r in rules if r.get("denies")]
    assert allows and denies
    for r in rules:
        assert r.get("direction", "INGRESS") == "INGRESS"
        assert r["targetTags"] == [tag], "every rule applies to this cluster's nodes only"
    for r in allows:
        ranges = r.get("sourceRanges") or []
        if ranges:
            # an address range only ever reaches tcp:22, and only the ranges the config lists
            assert r["allows"] == [{"protocol": "tcp", "ports": ["22"]}], r
            assert set(ranges) <= listed, r
            assert len({ipaddress.ip_network(c, strict=False).version for c in ranges}) == 1
        else:
            assert r["sourceTags"] == [tag], r
        for port in ray:
            if any(_covers(a, port) for a in r["allows"]):
                assert not ranges and r["sourceTags"] == [tag], f"Ray port {port} open outside the cluster: {r}"
    for open_range in OPEN & {c for r in allows for c in r.get("sourceRanges") or []}:
        assert open_range in listed
    (deny,) = denies
    assert deny["denies"] == [{"protocol": "all"}] and deny["sourceRanges"] == ["0.0.0.0/0"]
    assert all(r["priority"] < deny["priority"] for r in allows)

    (sa,) = rec.of_type(ACCOUNT)
    email = f"{sa.inputs['accountId']}@"
    explicit_scopes = "scopes" in cfg.gcp.model_fields_set
    insts = [r.inputs for r in rec.of_type(INSTANCE)]
    assert len(insts) == len(cfg.nodes())
    for i in insts:
        mt = i["machineType"]
        s = i["scheduling"]
        gpu = g.is_gpu_machine(mt) or bool(i.get("guestAccelerators"))
        if gpu:
            assert s["onHostMaintenance"] == "TERMINATE", f"GPU machine {mt} must TERMINATE"
        if i.get("guestAccelerators"):
            assert mt.startswith("n1-") and not g.is_gpu_machine(mt)
        if s["provisioningModel"] == "SPOT":
            assert s["preemptible"] is True and s["automaticRestart"] is False
            assert s["onHostMaintenance"] == "TERMINATE"
            assert s["instanceTerminationAction"] == cfg.gcp.spot_termination_action
        md = i["metadata"]
        assert md["enable-oslogin"] == ("TRUE" if cfg.gcp.os_login else "FALSE")
        assert md["block-project-ssh-keys"] == "TRUE"
        assert not md["ssh-keys"].startswith("root:")
        sa_args = i["serviceAccount"]
        assert sa_args["email"].startswith(email)
        if not explicit_scopes:
            assert not any("cloud-platform" in x for x in sa_args["scopes"])
        assert sa_args["scopes"] == cfg.gcp.scopes
        shield = i.get("shieldedInstanceConfig")
        if shield is not None:
            assert shield["enableVtpm"] and shield["enableIntegrityMonitoring"]
            if gpu:
                assert shield["enableSecureBoot"] is False
        assert i["tags"] == [tag]
        # one external IP: a reserved address (gcp.static_ip) where the VM can stop, else ephemeral
        static = {r.inputs["labels"]["styx-node"]: r.inputs for r in rec.of_type("gcp:compute/address:Address")}
        (ac,) = i["networkInterfaces"][0]["accessConfigs"]
        mine = static.get(i["labels"]["styx-node"])
        assert ac == ({} if mine is None else {"natIp": ac.get("natIp")}), ac
        if mine is not None:
            assert mine["addressType"] == "EXTERNAL" and mine["region"] == cfg.region


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cluster=clusters())
def test_invariants_over_generated_configs(gcp_program, cluster):
    assert g.GcpBackend().config_problems(parse_cluster(cluster)) == []
    check_invariants(cluster, gcp_program(cluster))


def test_invariants_on_a_wide_open_request(gcp_program):
    """0.0.0.0/0 listed explicitly: SSH only; everything else still closed."""
    cluster = gcp_cluster(gcp={"ssh_cidrs": ["0.0.0.0/0"]})
    rec = gcp_program(cluster)
    check_invariants(cluster, rec)
    ssh = rec.named("demo-allow-ssh").inputs
    assert ssh["sourceRanges"] == ["0.0.0.0/0"] and ssh["allows"] == [{"protocol": "tcp", "ports": ["22"]}]


# Fast table-style properties of the pure helpers, over every known family and option.
@settings(max_examples=300, deadline=None)
@given(mt=st.sampled_from([m for m, _ in WORKER_TYPES] + CPU_TYPES),
       spot=st.booleans(), action=st.sampled_from(["STOP", "DELETE"]), with_acc=st.booleans())
def test_scheduling_terminates_every_gpu_machine(mt, spot, action, with_acc):
    acc = dict(WORKER_TYPES).get(mt) if with_acc else None
    spec = NodeSpec(instance_type=mt, resources={"accelerators": acc} if acc else None, spot=spot)
    plan, problem = g.gpu_plan(mt, spec)
    assert problem is None
    s = g.scheduling(spot, plan.has_gpu, action)
    if plan.has_gpu or g.is_gpu_machine(mt):
        assert s["on_host_maintenance"] == "TERMINATE"
    if spot:
        assert (s["provisioning_model"], s["preemptible"], s["automatic_restart"]) == ("SPOT", True, False)
        assert s["instance_termination_action"] == action
    assert plan.builtin == g.is_gpu_machine(mt)
    assert (plan.guest_type is not None) == (bool(acc) and mt.startswith("n1-"))


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True), min_size=1, max_size=3))
def test_generated_names_are_valid(parts):
    import re

    name = g.gce_name(*parts)
    assert len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)
    sa = g.service_account_id(parts[0])
    assert 6 <= len(sa) <= 30 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", sa)
