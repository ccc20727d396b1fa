"""gcp backend under mocks: the resource graph, its inputs, check() and the example stack."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from test_gcp_mocks import (
    ACCOUNT,
    FIREWALL,
    IDS,
    INSTANCE,
    NETWORK,
    PROJECT,
    REMOTE,
    SUBNETWORK,
    by_name,
    gcp_cluster,
    gcp_runner,
)

from styx.components.backends import check_cluster, get_backend
from styx.components.backends import gcp as g
from styx.components.transport import SSHTransport
from styx.model.config import ConfigError, parse_cluster

ROOT = Path(__file__).resolve().parents[3]
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture
def gcp_program(monkeypatch, tmp_path):
    yield from gcp_runner(monkeypatch, tmp_path)


def instances(rec) -> dict[str, dict[str, Any]]:
    return {k: v.inputs for k, v in by_name(rec, INSTANCE).items()}


def sched(inst: dict[str, Any]) -> dict[str, Any]:
    return inst["scheduling"]


# --------------------------------------------------------------------------- the example


def test_a2_spot_cluster_graph(gcp_program):
    rec = gcp_program(gcp_cluster())
    assert len(rec.of_type(NETWORK)) == 1 and len(rec.of_type(SUBNETWORK)) == 1
    assert len(rec.of_type(ACCOUNT)) == 1
    assert set(by_name(rec, FIREWALL)) == {"demo-allow-ssh", "demo-allow-internal", "demo-deny-ingress"}
    inst = instances(rec)
    assert set(inst) == {"demo-head", "demo-gpu-0", "demo-gpu-1"}

    net = rec.of_type(NETWORK)[0].inputs
    assert net["autoCreateSubnetworks"] is False
    sub = rec.of_type(SUBNETWORK)[0].inputs
    assert sub["ipCidrRange"] == "10.43.0.0/20" and sub["region"] == "us-central1"

    for w in ("demo-gpu-0", "demo-gpu-1"):
        i = inst[w]
        assert i["machineType"] == "a2-highgpu-8g"
        assert not i.get("guestAccelerators"), "A2 has its A100s built in: no guest_accelerators block"
        assert sched(i) == {
            "provisioningModel": "SPOT", "preemptible": True, "automaticRestart": False,
            "onHostMaintenance": "TERMINATE", "instanceTerminationAction": "DELETE",
        }
        assert i["shieldedInstanceConfig"]["enableSecureBoot"] is False  # NVIDIA modules are unsigned
        assert i["labels"] == {"styx-cluster": "demo", "styx-node": w.removeprefix("demo-"),
                               "styx-role": "worker", "managed-by": "styx"}

    head = inst["demo-head"]
    assert head["machineType"] == "n2-standard-8"
    assert sched(head)["onHostMaintenance"] == "MIGRATE" and sched(head)["provisioningModel"] == "STANDARD"
    assert head["shieldedInstanceConfig"] == {
        "enableSecureBoot": True, "enableVtpm": True, "enableIntegrityMonitoring": True}
    for i in inst.values():
        assert i["zone"] == "us-central1-a"
        assert i["bootDisk"]["initializeParams"] == {"image": g.UBUNTU_2204, "size": 100, "type": "pd-balanced"}
        assert i["bootDisk"]["autoDelete"] is True
        assert i["metadata"]["user-data"].startswith("#cloud-config\n")  # the host key (test_host_key_in_user_data...)
        assert {k: v for k, v in i["metadata"].items() if k != "user-data"} == {
            "ssh-keys": "styx:ssh-ed25519 AAAAMOCKGCP styx",
            "enable-oslogin": "FALSE",
            "block-project-ssh-keys": "TRUE",
        }
        assert i["tags"] == ["styx-demo"]
        assert i["serviceAccount"] == {"email": f"styx-demo@{PROJECT}.iam.gserviceaccount.com",
                                       "scopes": list(g.DEFAULT_SCOPES)}
        nic = i["networkInterfaces"][0]
        # one external IP: the head's reserved address (gcp.static_ip, test_static_ip.py); spot workers' ephemeral
        assert len(nic["accessConfigs"]) == 1
        assert ("natIp" in nic["accessConfigs"][0]) == (i["name"] == "demo-head")
        assert nic["subnetwork"].endswith("/subnetworks/demo-subnet")
        assert NAME_RE.match(i["name"]) and len(i["name"]) <= 63


def test_outputs_and_addresses(gcp_program):
    rec = gcp_program(gcp_cluster())
    out = rec.outputs
    assert out["ssh_user"] == "styx"
    assert out["project"] == PROJECT and out["region"] == "us-central1"
    assert out["network"] == "demo-net" and out["subnetwork"] == "demo-subnet"
    assert out["service_account"] == f"styx-demo@{PROJECT}.iam.gserviceaccount.com"
    nodes = {n["name"]: n for n in out["nodes"]}
    assert nodes["head"]["host"].startswith("35.2.0.") and nodes["head"]["private_ip"].startswith("10.43.0.")
    assert nodes["gpu-0"]["host"].startswith("34.1.0.")  # a spot VM that cannot stop: its ephemeral IP
    assert out["head_ip"] == nodes["head"]["host"]
    assert out["ray_address"] == nodes["head"]["private_ip"] + ":6379"
    assert nodes["gpu-0"]["instance_type"] == "a2-highgpu-8g"
    # phases connect as styx to the external IP
    wait = rec.named("demo-gpu-0-wait_ssh").inputs["connection"]
    assert wait["host"] == nodes["gpu-0"]["host"] and wait["user"] == "styx" and wait["port"] == 22


def test_l4_on_g2_with_gpu_image(gcp_program):
    rec = gcp_program(gcp_cluster(
        workers=[{"name": "l4", "count": 1, "instance_type": "g2-standard-8", "resources": {"accelerators": "L4:1"}}],
        gcp={"ssh_cidrs": ["203.0.113.0/24"], "image": "gpu"},
    ))
    inst = instances(rec)
    w, head = inst["demo-l4-0"], inst["demo-head"]
    assert not w.get("guestAccelerators")
    assert sched(w) == {"provisioningModel": "STANDARD", "preemptible": False, "automaticRestart": True,
                        "onHostMaintenance": "TERMINATE"}
    assert w["bootDisk"]["initializeParams"]["image"] == g.DLVM_2204
    assert w["shieldedInstanceConfig"]["enableSecureBoot"] is False
    # `gpu` on a CPU machine is plain Ubuntu (no driver to carry), with secure boot on
    assert head["bootDisk"]["initializeParams"]["image"] == g.UBUNTU_2204
    assert head["shieldedInstanceConfig"]["enableSecureBoot"] is True


def test_t4_on_n1_gets_guest_accelerators(gcp_program):
    rec = gcp_program(gcp_cluster(
        workers=[{"name": "t4", "count": 1, "instance_type": "n1-standard-8", "resources": {"accelerators": "T4:1"}}],
    ))
    w = instances(rec)["demo-t4-0"]
    assert w["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 1}]
    assert sched(w)["onHostMaintenance"] == "TERMINATE" and sched(w)["automaticRestart"] is True
    assert not instances(rec)["demo-head"].get("guestAccelerators")


def test_existing_network_and_subnetwork(gcp_program):
    sub = "projects/host-proj/regions/us-central1/subnetworks/shared-sub"
    rec = gcp_program(gcp_cluster(gcp={"ssh_cidrs": ["203.0.113.0/24"], "network": "shared-vpc", "subnetwork": sub}))
    assert not rec.of_type(NETWORK) and not rec.of_type(SUBNETWORK)
    for fw in rec.of_type(FIREWALL):
        assert fw.inputs["network"] == "shared-vpc"
    for i in instances(rec).values():
        nic = i["networkInterfaces"][0]
        assert nic["network"] == "shared-vpc" and nic["subnetwork"] == sub
    assert rec.outputs["network"] == "shared-vpc" and rec.outputs["subnetwork"] == "shared-sub"


def test_existing_auto_mode_network_without_subnetwork(gcp_program):
    rec = gcp_program(gcp_cluster(gcp={"ssh_cidrs": ["203.0.113.0/24"], "network": "default"}))
    assert not rec.of_type(NETWORK) and not rec.of_type(SUBNETWORK)
    nic = instances(rec)["demo-head"]["networkInterfaces"][0]
    assert nic["network"] == "default" and "subnetwork" not in nic
    assert rec.outputs["network"] == "default" and "subnetwork" not in rec.outputs
    # the default network allows tcp:22 from anywhere at priority 65534: our deny (1000) wins over it
    deny = rec.named("demo-deny-ingress").inputs
    assert deny["priority"] < 65534 and deny["denies"] == [{"protocol": "all"}]


def test_firewall_rules(gcp_program):
    rec = gcp_program(gcp_cluster(gcp={"ssh_cidrs": ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]}))
    fw = {k: v.inputs for k, v in by_name(rec, FIREWALL).items()}
    assert set(fw) == {"demo-allow-ssh", "demo-allow-ssh-v6", "demo-allow-internal", "demo-deny-ingress"}
    assert fw["demo-allow-ssh"]["sourceRanges"] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert fw["demo-allow-ssh-v6"]["sourceRanges"] == ["2001:db8::/32"]
    for k in ("demo-allow-ssh", "demo-allow-ssh-v6"):
        assert fw[k]["allows"] == [{"protocol": "tcp", "ports": ["22"]}]
        assert fw[k]["targetTags"] == ["styx-demo"] and fw[k]["direction"] == "INGRESS"
    internal = fw["demo-allow-internal"]
    assert internal["sourceTags"] == internal["targetTags"] == ["styx-demo"]
    assert "sourceRanges" not in internal and internal["allows"] == [{"protocol": "all"}]
    for k in ("demo-allow-ssh", "demo-allow-internal"):
        assert fw[k]["priority"] < fw["demo-deny-ingress"]["priority"]


def test_each_nodes_commands_depend_on_its_instance(gcp_program, monkeypatch):
    """Destroy deletes a node's phases before its VM (and a replaced VM replaces them):
    the gate depends on the instance, every later phase on the one before it."""
    deps: dict[str, list[pulumi.Resource]] = {}
    orig = SSHTransport.run

    def spy(self, name, run, *, opts, **kw):
        d = opts.depends_on
        deps[name] = list(d) if isinstance(d, list | tuple) else [d] if d else []
        return orig(self, name, run, opts=opts, **kw)

    monkeypatch.setattr(SSHTransport, "run", spy)
    rec = gcp_program(gcp_cluster())
    commands = [r.name for r in rec.of_type(REMOTE)]
    assert set(commands) == set(deps) and len(commands) >= 9

    def reaches(name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for r in deps.get(todo.pop(), []):
                n = r._name
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    for node in ("head", "gpu-0", "gpu-1"):
        gate = f"demo-{node}-wait_ssh"
        # the instance first (its phases are deleted with it), then the head's reserved address (gcp.static_ip)
        assert [r._name for r in deps[gate]] == [f"demo-{node}", *(["demo-head-ip"] if node == "head" else [])]
        assert isinstance(deps[gate][0], pulumi.CustomResource)
        for cmd in commands:
            if cmd.startswith(f"demo-{node}-"):
                assert f"demo-{node}" in reaches(cmd), f"{cmd} does not depend on its instance"


def test_replaced_instance_reruns_its_phases(gcp_program):
    first = gcp_program(gcp_cluster())
    again = gcp_program(gcp_cluster())
    IDS.seed += 1  # every VM "replaced": new numeric instance ids, same names and self links
    try:
        replaced = gcp_program(gcp_cluster())
    finally:
        IDS.seed -= 1
    for r in first.of_type(REMOTE):
        t0 = r.inputs["triggers"]
        assert again.named(r.name).inputs["triggers"] == t0, "same VM: phases stay"
        assert replaced.named(r.name).inputs["triggers"] != t0, f"{r.name} would not re-run on a new VM"


def test_instance_replacement_options(gcp_program, monkeypatch):
    import pulumi_gcp

    seen: dict[str, pulumi.ResourceOptions] = {}
    orig = pulumi_gcp.compute.Instance.__init__

    def spy(self, resource_name, *a, opts=None, **kw):
        seen[resource_name] = opts
        orig(self, resource_name, *a, opts=opts, **kw)

    monkeypatch.setattr(pulumi_gcp.compute.Instance, "__init__", spy)
    gcp_program(gcp_cluster())
    for opts in seen.values():
        assert opts.delete_before_replace is True  # fixed names; never twice the GPU quota
        assert "machineType" in opts.replace_on_changes and "guestAccelerators" in opts.replace_on_changes
        assert {r._name for r in opts.depends_on} == {"demo-allow-ssh", "demo-allow-internal", "demo-deny-ingress"}


def test_options_flow_through(gcp_program):
    key = _private_key()
    rec = gcp_program(gcp_cluster(
        name="a" * 32,
        workers=[{"name": "b" * 32, "count": 2, "instance_type": "a3-ultragpu-8g", "spot": True,
                  "resources": {"accelerators": "H200:8"}, "disk_size_gb": 500, "image": "ubuntu-24.04"}],
        ssh={"user": "alice", "private_key": key},
        gcp={"ssh_cidrs": ["203.0.113.0/24"], "project": "my-proj", "os_login": True,
             "spot_termination_action": "STOP", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
    ))
    inst = instances(rec)
    w = inst["a" * 32 + "-" + "b" * 32 + "-1"]
    assert len(w["name"]) <= 63 and NAME_RE.match(w["name"])
    assert w["project"] == "my-proj"
    assert w["bootDisk"]["initializeParams"] == {"image": g.UBUNTU_2404, "size": 500, "type": "hyperdisk-balanced"}
    assert sched(w)["instanceTerminationAction"] == "STOP"
    assert w["metadata"]["enable-oslogin"] == "TRUE"
    assert w["metadata"]["ssh-keys"].startswith("alice:ssh-ed25519 ")
    assert w["serviceAccount"]["scopes"] == ["https://www.googleapis.com/auth/cloud-platform"]  # asked for
    assert len({i["name"] for i in inst.values()}) == 3
    sa = rec.of_type(ACCOUNT)[0].inputs
    assert NAME_RE.match(sa["accountId"]) and 6 <= len(sa["accountId"]) <= 30
    assert rec.outputs["project"] == "my-proj" and rec.outputs["ssh_user"] == "alice"
    for r in rec.of_type(FIREWALL) + rec.of_type(NETWORK) + rec.of_type(SUBNETWORK):
        assert r.inputs["project"] == "my-proj"
        assert len(r.inputs["name"]) <= 63 and NAME_RE.match(r.inputs["name"])


def _private_key() -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/k"], check=True)
        return Path(d, "k").read_text()


# --------------------------------------------------------------------------- check() and config


CATALOG = Path(__file__).resolve().parents[2] / "styx" / "model" / "catalog" / "data"


def test_auto_machine_type_is_planned_and_recorded(gcp_program, monkeypatch):
    monkeypatch.setenv("STYX_CATALOG_DIR", str(CATALOG))
    run = gcp_program(gcp_cluster(workers=[{"name": "gpu", "count": 1, "instance_type": "auto", "spot": True,
                                            "resources": {"accelerators": "A100:8"}}]))
    assert list(by_name(run, "pulumi:index:Stash")) == ["demo-placement"]
    inst = by_name(run, "gcp:compute/instance:Instance")
    assert inst["demo-gpu-0"].inputs["machineType"] == "a2-highgpu-8g"
    assert not inst["demo-gpu-0"].inputs.get("guestAccelerators")


def _check(**overrides: Any) -> list[str]:
    cfg = parse_cluster(gcp_cluster(**overrides))
    return get_backend("gcp").config_problems(cfg) + get_backend("gcp").check(cfg)


def test_check_clean_example():
    assert _check() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"zone": None}, "styx:cluster.zone: required for cloud gcp"),
        ({"zone": "europe-west4-a"}, "styx:cluster.zone: 'europe-west4-a' is not in region 'us-central1'"),
        ({"head": {"instance_type": "n2-standard-8", "zone": "us-east1-b"}},
         "styx:cluster.head.zone: 'us-east1-b' is not in region"),
        ({"ssh": {"user": "root"}}, "styx:cluster.ssh.user: 'root' is not allowed: root cannot log in"),
        ({"ssh": {"port": 2222}}, "styx:cluster.ssh.port: 2222 is not allowed: GCP images run sshd on 22"),
        ({"head": {"instance_type": "auto", "resources": {"accelerators": "A100:3"}}},
         "styx:cluster.head.instance_type: auto found no offer that fits"),
        ({"workers": [{"name": "gpu", "instance_type": "g2-standard-8", "resources": {"accelerators": "A100:8"}}]},
         "styx:cluster.workers[0].resources.accelerators: 'A100:8' does not match"),
        ({"workers": [{"name": "gpu", "instance_type": "a2-highgpu-4g", "resources": {"accelerators": "A100:8"}}]},
         "which has A100:4 built in"),
        ({"workers": [{"name": "gpu", "instance_type": "n2-standard-8", "resources": {"accelerators": "T4:1"}}]},
         "attachable GPUs need an N1 machine type"),
        ({"workers": [{"name": "gpu", "instance_type": "n1-standard-8", "resources": {"accelerators": "L4:1"}}]},
         "L4 does not attach to N1 machines"),
        ({"workers": [{"name": "gpu", "instance_type": "n1-standard-8", "resources": {"accelerators": "T4:3"}}]},
         "T4 attaches in counts [1, 2, 4]"),
        ({"gcp": {"ssh_cidrs": ["203.0.113.0/24"], "os_login": True}}, "styx:cluster.gcp.os_login:"),
    ],
)
def test_check_problems(overrides, expected, monkeypatch):
    monkeypatch.setenv("STYX_CATALOG_DIR", str(CATALOG))
    problems = _check(**overrides)
    assert any(expected in p for p in problems), problems


def test_check_zone_on_every_group_is_enough():
    assert _check(zone=None, head={"instance_type": "n2-standard-8", "zone": "us-central1-b"},
                  workers=[{"name": "w", "instance_type": "n2-standard-4", "zone": "us-central1-c"}]) == []
    problems = _check(zone=None, head={"instance_type": "n2-standard-8", "zone": "us-central1-b"})
    assert problems == ["styx:cluster.zone: required for cloud gcp (instances are zonal), e.g. us-central1-a; "
                        "or set zone on workers[0]"]


def test_check_runs_before_anything_is_registered(gcp_program):
    with pytest.raises(pulumi.RunError) as e:
        gcp_program(gcp_cluster(zone=None))
    assert "styx:cluster.zone: required for cloud gcp" in str(e.value)


@pytest.mark.parametrize(
    ("gcp", "expected"),
    [
        ({"ssh_cidrs": []}, "styx:cluster.gcp.ssh_cidrs: empty"),
        ({"ssh_cidrs": ["203.0.113.0/24"], "subnetwork": "s"}, "subnetwork needs network"),
        ({"ssh_cidrs": ["203.0.113.0/24"], "subnet_cidr": "8.8.0.0/16"}, "use a private range"),
        ({"ssh_cidrs": ["203.0.113.0/24"], "subnet_cidr": "10.0.0.1/20"}, "not an IPv4 network"),
        ({"ssh_cidrs": ["203.0.113.0/24"], "disk_type": "pd-fast"}, "styx:cluster.gcp.disk_type"),
    ],
)
def test_config_problems(gcp, expected):
    with pytest.raises(ConfigError) as e:
        check_cluster(gcp_cluster(gcp=gcp))  # the model, then GcpBackend.config_problems
    assert any(expected in p for p in e.value.problems), e.value.problems


def test_default_scopes_have_no_cloud_platform():
    cfg = parse_cluster(gcp_cluster())
    assert cfg.gcp.scopes == list(g.DEFAULT_SCOPES)
    assert not any("cloud-platform" in s for s in cfg.gcp.scopes)


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("machine", "gpus"),
    [
        ("a2-highgpu-1g", ("A100", 1)),
        ("a2-highgpu-8g", ("A100", 8)),
        ("a2-megagpu-16g", ("A100", 16)),
        ("a2-ultragpu-8g", ("A100-80GB", 8)),
        ("a3-highgpu-8g", ("H100", 8)),
        ("a3-edgegpu-8g", ("H100", 8)),
        ("a3-megagpu-8g", ("H100-MEGA", 8)),
        ("a3-ultragpu-8g", ("H200", 8)),
        ("a4-highgpu-8g", ("B200", 8)),
        ("g2-standard-8", ("L4", 1)),
        ("g2-standard-48", ("L4", 4)),
        ("g2-standard-96", ("L4", 8)),
        ("n1-standard-8", None),
        ("n2-standard-8", None),
        ("e2-medium", None),
    ],
)
def test_builtin_gpus(machine, gpus):
    assert g.builtin_gpus(machine) == gpus
    assert g.is_gpu_machine(machine) is (gpus is not None)


def test_gpu_plan_accepts_family_names():
    from styx.model.config import NodeSpec

    plan, problem = g.gpu_plan("a3-megagpu-8g", NodeSpec(instance_type="a3-megagpu-8g",
                                                          resources={"accelerators": "H100:8"}))
    assert problem is None and plan.builtin and plan.label == "H100-MEGA:8"
    plan, problem = g.gpu_plan("n1-standard-8", NodeSpec(instance_type="n1-standard-8",
                                                          resources={"accelerators": "nvidia-tesla-v100:2"}))
    assert problem is None and plan.guest_type == "nvidia-tesla-v100" and plan.count == 2


@pytest.mark.parametrize(
    ("setting", "machine", "gpu", "image", "kind"),
    [
        ("ubuntu-22.04", "n2-standard-8", False, g.UBUNTU_2204, "ubuntu"),
        ("ubuntu-24.04", "n2-standard-8", False, g.UBUNTU_2404, "ubuntu"),
        ("ubuntu-22.04", "t2a-standard-4", False, g.UBUNTU_2204_ARM, "ubuntu"),
        ("gpu", "a2-highgpu-8g", True, g.DLVM_2204, "dlvm"),
        ("gpu", "n2-standard-8", False, g.UBUNTU_2204, "ubuntu"),
        ("gpu-ubuntu-24.04", "g2-standard-8", True, g.DLVM_2404, "dlvm"),
        ("my-proj/my-family", "n2-standard-8", False, "my-proj/my-family", "custom"),
    ],
)
def test_resolve_image(setting, machine, gpu, image, kind):
    assert g.resolve_image(setting, machine, gpu) == (image, kind)


def test_shielded_and_names():
    assert g.shielded("custom", False) is None
    assert g.shielded("ubuntu", False) == {"enable_secure_boot": True, "enable_vtpm": True,
                                           "enable_integrity_monitoring": True}
    assert g.shielded("dlvm", True)["enable_secure_boot"] is False
    assert g.gce_name("demo", "head") == "demo-head"
    long = g.gce_name("x" * 40, "y" * 40)
    assert len(long) == 63 and NAME_RE.match(long) and long != g.gce_name("x" * 40, "y" * 39 + "z")
    assert g.service_account_id("demo") == "styx-demo"
    assert len(g.service_account_id("a" * 32)) <= 30
    assert g.label_value("Gpu.Node/1") == "gpu-node-1"


# --------------------------------------------------------------------------- the example stack


def test_example_stack_file(gcp_program):
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.gcp-gpu.yaml").read_text())
    raw = doc["config"]["styx:cluster"]
    cfg = parse_cluster(raw)
    assert cfg.cloud == "gcp" and cfg.region == "us-central1" and cfg.zone == "us-central1-a"
    assert cfg.gcp.ssh_cidrs == ["203.0.113.0/24"]
    assert cfg.head.instance_type == "n2-standard-8"
    (w,) = cfg.workers
    assert (w.count, w.instance_type, w.spot, w.resources.accelerators) == (2, "a2-highgpu-8g", True, "A100:8")
    assert get_backend("gcp").config_problems(cfg) == []
    rec = gcp_program(raw)
    inst = instances(rec)
    assert len(inst) == 3
    for name, i in inst.items():
        if name != f"{cfg.name}-head":
            assert sched(i)["provisioningModel"] == "SPOT" and sched(i)["onHostMaintenance"] == "TERMINATE"
            assert not i.get("guestAccelerators")


# --------------------------------------------------------------------------- pinned host keys


def test_host_key_in_user_data_as_a_secret_and_pinned(gcp_program):
    import mocking

    rec = gcp_program(gcp_cluster())
    for name, r in by_name(rec, INSTANCE).items():
        meta = r.raw["metadata"]
        assert mocking.is_secret_input(meta) or mocking.is_secret_input(meta.get("user-data")), name
        ud = r.inputs["metadata"]["user-data"]
        assert ud.startswith("#cloud-config\n") and "ssh_deletekeys: true" in ud and "ssh_genkeytypes: []" in ud
        assert "  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n" in ud
        assert "  ed25519_public: ssh-ed25519 AAAAMOCK\n" in ud
        assert yaml.safe_load(ud)["ssh_keys"]["ed25519_private"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    for r in rec.of_type("command:remote:Command"):
        assert r.inputs["connection"]["hostKey"] == "ssh-ed25519 AAAAMOCK", r.name


def test_jump_head_private_workers_get_no_external_ip_and_go_through_the_head(gcp_program):
    rec = gcp_program(gcp_cluster(ssh={"jump": "head"}))
    inst = instances(rec)
    assert len(inst["demo-head"]["networkInterfaces"][0]["accessConfigs"]) == 1
    for w in ("demo-gpu-0", "demo-gpu-1"):
        assert inst[w]["networkInterfaces"][0].get("accessConfigs") in (None, []), w
    for r in rec.of_type("command:remote:Command"):
        conn = r.inputs["connection"]
        if r.name.startswith("demo-head-"):
            assert "proxy" not in conn and conn["host"].startswith("35.2.0."), r.name  # its reserved address
        else:
            assert conn["host"].startswith("10.43.0."), r.name
            assert conn["proxy"]["host"].startswith("35.2.0.") and conn["proxy"]["hostKey"] == "ssh-ed25519 AAAAMOCK"


# --------------------------------------------------------------------------- styx stop / start


def _power(*stopped):
    import json

    return {"styx:power": json.dumps({"stopped": {n: "2026-12-02T04:00:00Z" for n in stopped}, "intervals": []})}


def test_desired_status_follows_the_stopped_record_and_nothing_else_changes(gcp_program):
    running = gcp_program(gcp_cluster())
    assert {i["desiredStatus"] for i in instances(running).values()} == {"RUNNING"}
    stopped = gcp_program(gcp_cluster(), extra_config=_power("head", "gpu-1"))
    got = instances(stopped)
    assert {n: i["desiredStatus"] for n, i in got.items()} == {
        "demo-head": "TERMINATED", "demo-gpu-0": "RUNNING", "demo-gpu-1": "TERMINATED"}
    for n, i in got.items():  # an update in place: not a replace_on_changes key, stopping allowed for updates
        assert i["allowStoppingForUpdate"] is True
        assert {k: v for k, v in i.items() if k != "desiredStatus"} == \
            {k: v for k, v in instances(running)[n].items() if k != "desiredStatus"}, n
    # every phase (triggers, connection, command) is the same: stopping re-runs nothing
    assert {r.name: r.inputs for r in stopped.of_type(REMOTE)} == {r.name: r.inputs for r in running.of_type(REMOTE)}


def test_gcp_spot_stops_only_with_the_stop_termination_action():
    b = get_backend("gcp")
    assert b.power_in_program and b.power_urns({}, "head", "urn:x") == ["urn:x"]
    assert b.can_stop(gcp_cluster(), "head") is None
    assert "spot_termination_action: DELETE" in b.can_stop(gcp_cluster(), "gpu-0")
    assert b.can_stop(gcp_cluster(gcp={"spot_termination_action": "STOP"}), "gpu-0") is None


def test_jump_bastion_no_vm_gets_an_external_ip_every_phase_through_the_bastion(gcp_program):
    rec = gcp_program(gcp_cluster(ssh={"jump": "ops@bastion.example.com:2200"}))
    for name, i in instances(rec).items():
        assert i["networkInterfaces"][0].get("accessConfigs") in (None, []), name
    for r in rec.of_type("command:remote:Command"):
        conn = r.inputs["connection"]
        assert conn["host"].startswith("10.43.0."), r.name
        assert (conn["proxy"]["host"], conn["proxy"]["port"], conn["proxy"]["user"]) == \
            ("bastion.example.com", 2200, "ops"), r.name
    assert all(n["private"] for n in rec.outputs["nodes"])
