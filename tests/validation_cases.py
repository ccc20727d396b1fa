"""Invalid configs across the five clouds, each with the line its one validation must print.

A case is (id, cloud, overrides, key path, bad value, allowed): `overrides` are merged into the cloud's
valid base config (dicts merge, anything else replaces; DROP removes a key); the problem line must name
the key path, show the bad value and say what is allowed. Shared by the three ways the checks are run
(`styx validate`, the program under mocks, a real `pulumi preview`): tests/styx/app/cli/test_validate_cases.py,
tests/components/test_program_validation.py, tests/styx/app/test_validation_engine.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, NamedTuple

CATALOG = Path(__file__).resolve().parent / "styx" / "model" / "catalog" / "data"  # aws, gcp, lambda test catalogs
DROP = object()
CIDRS = ["203.0.113.0/24"]

BASES: dict[str, dict[str, Any]] = {
    "aws": {"name": "v", "cloud": "aws", "region": "us-east-1", "head": {"instance_type": "m6i.2xlarge"},
            "aws": {"ssh_cidrs": CIDRS}},
    "gcp": {"name": "v", "cloud": "gcp", "region": "us-central1", "zone": "us-central1-a",
            "head": {"instance_type": "n1-standard-8"}, "gcp": {"ssh_cidrs": CIDRS}},
    "kubernetes": {"name": "v", "cloud": "kubernetes", "head": {}},
    "ssh": {"name": "v", "cloud": "ssh", "head": {"host": "10.0.0.5"}},
    "local": {"name": "v", "cloud": "local", "head": {}},
}
WORKER = {"aws": {"name": "w", "instance_type": "m6i.2xlarge"}, "gcp": {"name": "w", "instance_type": "n1-standard-8"},
          "kubernetes": {"name": "w"}, "ssh": {"name": "w", "hosts": ["10.0.0.6"]}, "local": {"name": "w"}}


class Case(NamedTuple):
    id: str
    cloud: str
    overrides: dict[str, Any]
    path: str  # below styx:cluster
    bad: str  # as the line shows it
    allowed: str  # a piece of what the line says is allowed

    def config(self) -> dict[str, Any]:
        return merge(copy.deepcopy(BASES[self.cloud]), self.overrides)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for k, v in over.items():
        if v is DROP:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def _worker(cloud: str, **kw: Any) -> list[dict[str, Any]]:
    return [{**WORKER[cloud], **kw}]


INT = "expected an integer"
BOOL = "expected a boolean"


def _generic(cloud: str) -> list[Case]:
    """Mistakes of the model itself: the same on every cloud."""
    w = lambda **kw: _worker(cloud, **kw)  # noqa: E731
    gpu = {"resources": {"accelerators": "A1000:8"}}
    return [Case(f"{cloud}-{i}", cloud, o, p, b, a) for i, (o, p, b, a) in enumerate([
        ({"workers": w(count=True)}, "workers[0].count", "True", INT),
        ({"workers": w(count="2")}, "workers[0].count", "'2'", INT),
        ({"workers": w(count=-1)}, "workers[0].count", "-1", "greater than or equal to 0"),
        ({"head": {"disk_size_gb": "100"}}, "head.disk_size_gb", "'100'", INT),
        ({"head": {"disk_size_gb": 5}}, "head.disk_size_gb", "5", "greater than or equal to 10"),
        ({"head": {"spot": "yes"}}, "head.spot", "'yes'", BOOL),
        ({"head": {"allow_unlisted": 1}}, "head.allow_unlisted", "1", BOOL),
        ({"name": "Bad_Name"}, "name", "'Bad_Name'", "lowercase letters"),
        ({"head": {"instnce_type": "x"}}, "head.instnce_type", "unknown key", "instance_type"),
        ({"setup": {"ray": {"port": 80}}}, "setup.ray.port", "80", "greater than or equal to 1024"),
        ({"setup": {"ray": {"enabled": "true"}}}, "setup.ray.enabled", "'true'", BOOL),
        ({"setup": {"gpu": {"mode": "sometimes"}}}, "setup.gpu.mode", "'sometimes'", "'auto', 'force' or 'skip'"),
        ({"setup": {"gpu": {"expected_count": True}}}, "setup.gpu.expected_count", "True", INT),
        ({"setup": {"python": {"version": "2.7"}}}, "setup.python.version", "'2.7'", "system|3"),
        ({"setup": {"python": {"installer": "conda"}}}, "setup.python.installer", "'conda'", "'uv' or 'pip'"),
        ({"setup": {"timeouts": {"python_env": 5}}}, "setup.timeouts", "5", "an integer from 10 to 86400"),
        ({"setup": {"env": {"1BAD": "x"}}}, "setup.env", "'1BAD'", "[A-Za-z_][A-Za-z0-9_]*"),
        ({"setup": {"file_mounts": [{"local": ".", "remote": "/etc"}]}}, "setup.file_mounts[0].remote", "'/etc'",
         "an absolute, normalised path"),
        ({"ssh": {"connect_timeout_s": 1}}, "ssh.connect_timeout_s", "1", "greater than or equal to 5"),
        ({"ssh": {"per_dial_timeout_s": "15"}}, "ssh.per_dial_timeout_s", "'15'", INT),
        ({"cloud": "azure"}, "cloud", "'azure'", "'kubernetes'"),
        ({"head": gpu}, "head.resources.accelerators", "'A1000'", "did you mean 'A100'"),
        ({"setup": {"docker": {"mode": "maybe"}}}, "setup.docker.mode", "'maybe'", "'skip', 'check' or 'install'"),
        ({"setup": {"packages": ["curl", ""]}}, "setup.packages[1]", "''", "non-empty and on one line"),
        ({"setup": {"ray": {"extra_start_args": ["--a\n--b"]}}}, "setup.ray.extra_start_args[0]", "'--a\\n--b'",
         "non-empty and on one line"),
    ])]


AWS = [
    ({"region": "us-east-9"}, "region", "'us-east-9'", "did you mean 'us-east-1'"),
    ({"region": DROP}, "region", "required", "cloud aws"),
    ({"zone": "eu-west-1a"}, "zone", "'eu-west-1a'", "us-east-1a"),
    ({"head": {"zone": "us-west-2a"}}, "head.zone", "'us-west-2a'", "us-east-1a"),
    ({"head": {"instance_type": "m6i.2xlargee"}}, "head.instance_type", "'m6i.2xlargee'", "did you mean 'm6i.2xlarge'"),
    ({"head": {"instance_type": "x9.huge"}}, "head.instance_type", "'x9.huge'", "allow_unlisted: true"),
    ({"head": {"instance_type": "M6I large"}}, "head.instance_type", "'M6I large'", "family.size"),
    ({"head": {"instance_type": DROP}}, "head.instance_type", "required", "a type, or auto"),
    ({"region": "us-west-2", "head": {"instance_type": "m6i.2xlarge"}}, "head.instance_type", "'m6i.2xlarge'",
     "us-east-1"),
    ({"workers": [{"name": "g", "instance_type": "p4d.24xlarge", "resources": {"accelerators": "H100:8"}}]},
     "workers[0].resources.accelerators", "'H100:8'", "allowed: A100:8"),
    ({"workers": [{"name": "g", "instance_type": "m6i.2xlarge", "resources": {"accelerators": "A100:8"}}]},
     "workers[0].resources.accelerators", "'A100:8'", "no accelerators"),
    ({"workers": [{"name": "g", "instance_type": "p4d.24xlarge", "resources": {"accelerators": "L4:8"}}]},
     "workers[0].resources.accelerators", "'L4'", "A100"),
    ({"ssh": {"port": 2222}}, "ssh.port", "2222", "allowed: 22"),
    ({"aws": {"ssh_cidrs": []}}, "aws.ssh_cidrs", "empty", "203.0.113.0/24"),
    ({"aws": {"ssh_cidrs": ["nope"]}}, "aws.ssh_cidrs", "'nope'", "203.0.113.0/24"),
    ({"head": {"image": "debian"}}, "head.image", "'debian'", "ubuntu-22.04"),
    ({"aws": {"image": "centos"}}, "aws.image", "'centos'", "'ubuntu-22.04', 'ubuntu-24.04' or 'gpu'"),
    ({"aws": {"imds_hop_limit": 3}}, "aws.imds_hop_limit", "3", "1 or 2"),
    ({"aws": {"spot_max_price": -1}}, "aws.spot_max_price", "-1", "greater than 0"),
    ({"aws": {"vpc_cidr": "10.0.0.0/8"}}, "aws.vpc_cidr", "'10.0.0.0/8'", "/16 to /24"),
    ({"aws": {"placement_group": "yes"}}, "aws.placement_group", "'yes'", BOOL),
]
GCP = [
    ({"region": "us-central9", "zone": "us-central9-a"}, "region", "'us-central9'", "did you mean 'us-central1'"),
    ({"zone": "us-central1-z"}, "zone", "'us-central1-z'", "us-central1-a"),
    ({"zone": "europe-west4-a"}, "zone", "'europe-west4-a'", "us-central1-a"),
    ({"zone": DROP}, "zone", "required", "us-central1-a"),
    ({"head": {"instance_type": "n1-standard-9"}}, "head.instance_type", "'n1-standard-9'", "did you mean"),
    ({"head": {"instance_type": "n9-mega-1"}}, "head.instance_type", "'n9-mega-1'", "allow_unlisted: true"),
    ({"workers": [{"name": "g", "instance_type": "a2-highgpu-4g", "resources": {"accelerators": "A100:8"}}]},
     "workers[0].resources.accelerators", "'A100:8'", "allowed: A100:4"),
    ({"workers": [{"name": "g", "instance_type": "n2-standard-8", "resources": {"accelerators": "T4:1"}}]},
     "workers[0].resources.accelerators", "'T4:1'", "N1 machine type"),
    ({"workers": [{"name": "g", "instance_type": "n1-standard-8", "resources": {"accelerators": "T4:3"}}]},
     "workers[0].resources.accelerators", "'T4:3'", "[1, 2, 4]"),
    ({"ssh": {"user": "root"}}, "ssh.user", "'root'", "another user"),
    ({"ssh": {"port": 2222}}, "ssh.port", "2222", "allowed: 22"),
    ({"gcp": {"disk_type": "pd-fast"}}, "gcp.disk_type", "'pd-fast'", "'pd-balanced'"),
    ({"gcp": {"subnet_cidr": "8.8.8.0/24"}}, "gcp.subnet_cidr", "'8.8.8.0/24'", "private range"),
    ({"gcp": {"spot_termination_action": "KEEP"}}, "gcp.spot_termination_action", "'KEEP'", "'STOP' or 'DELETE'"),
    ({"gcp": {"ssh_cidrs": []}}, "gcp.ssh_cidrs", "empty", "203.0.113.0/24"),
    ({"gcp": {"os_login": "no"}}, "gcp.os_login", "'no'", BOOL),
    ({"head": {"resources": {"any_of": ["T4:1", "A1000:1"]}}}, "head.resources.any_of[1]", "'A1000'",
     "did you mean 'A100'"),
]
K8S = [
    ({"head": {"spot": True}}, "head.spot", "not supported", "allowed: false"),
    ({"workers": [{"name": "w", "spot": True}]}, "workers[0].spot", "not supported", "allowed: false"),
    ({"head": {"instance_type": "m6i.2xlargee"}}, "head.instance_type", "'m6i.2xlargee'", "did you mean 'm6i.2xlarge'"),
    ({"head": {"instance_type": "auto", "resources": {"cpus": "4"}}}, "head.instance_type", "'auto'",
     "instance-type label"),
    ({"head": {"resources": {"any_of": ["A100:1"]}}}, "head.resources", "any_of/ordered", "accelerators: NAME:COUNT"),
    ({"head": {"resources": {"memory": "4x"}}}, "head.resources.memory", "'4x'", "GiB: N or N+"),
    ({"kubernetes": {"namespace": "kube-system"}}, "kubernetes.namespace", "'kube-system'", "create_namespace: false"),
    ({"kubernetes": {"service_type": "Public"}}, "kubernetes.service_type", "'Public'", "'ClusterIP'"),
    ({"kubernetes": {"shm_size": "8G"}}, "kubernetes.shm_size", "'8G'", "Ki|Mi|Gi|Ti"),
    ({"kubernetes": {"pod_ready_timeout_s": "900"}}, "kubernetes.pod_ready_timeout_s", "'900'", INT),
    ({"kubernetes": {"operator": "kuberay"}, "setup": {"packages": ["htop"]}}, "setup.packages", "kuberay",
     "bake it into kubernetes.image"),
    ({"kubernetes": {"operator": "ray-operator"}}, "kubernetes.operator", "'ray-operator'", "'none' or 'kuberay'"),
    ({"kubernetes": {"create_namespace": "false"}}, "kubernetes.create_namespace", "'false'", BOOL),
]
SSH = [
    ({"head": {"host": DROP}}, "head.host", "required", "existing machine's address"),
    ({"workers": [{"name": "w"}]}, "workers[0].hosts", "required", "a list of existing machines"),
    ({"workers": [{"name": "w", "count": 3, "hosts": ["10.0.0.6", "10.0.0.7"]}]}, "workers[0]", "count is 3",
     "2 hosts"),
    ({"head": {"host": {"host": "10.0.0.5", "port": 70000}}}, "head.host.port", "70000", "less than or equal to 65535"),
    ({"head": {"host": {"host": "10.0.0.5", "port": "22"}}}, "head.host.port", "'22'", INT),
    ({"head": {"spot": True}}, "head.spot", "not supported", "allowed: false"),
    ({"head": {"host": {"host": ""}}}, "head.host.host", "''", "at least 1 character"),
    ({"ssh": {"user": ""}}, "ssh.user", "''", "at least 1 character"),
    ({"ssh": {"private_key": "k", "private_key_file": "/k"}}, "ssh", "both", "either private_key or"),
]
LOCAL = [
    ({"local": {"subnet": "8.8.8.0/24"}}, "local.subnet", "'8.8.8.0/24'", "10/8, 172.16/12 or 192.168/16"),
    ({"local": {"subnet": "10.77.0.0/30"}}, "local.subnet", "'10.77.0.0/30'", "/29 or shorter"),
    ({"workers": [{"name": "w", "count": 40}]}, "workers[0].count", "40", "local.group_block (32)"),
    ({"local": {"mtu": 100}}, "local.mtu", "100", "greater than or equal to 576"),
    ({"local": {"mtu": "1400"}}, "local.mtu", "'1400'", INT),
    ({"head": {"spot": True}}, "head.spot", "not supported", "allowed: false"),
    ({"head": {"host": "10.0.0.5"}}, "head.host", "only allowed", "adopts existing machines"),
    ({"local": {"shm_size": "2G"}}, "local.shm_size", "'2G'", "[0-9]+[kmg]"),
    ({"local": {"group_block": 0}}, "local.group_block", "0", "greater than or equal to 1"),
]

CASES: list[Case] = [c for cloud in BASES for c in _generic(cloud)]
for _cloud, _table in (("aws", AWS), ("gcp", GCP), ("kubernetes", K8S), ("ssh", SSH), ("local", LOCAL)):
    CASES += [Case(f"{_cloud}-x{i}", _cloud, o, p, b, a) for i, (o, p, b, a) in enumerate(_table)]

# The real-engine subset: every cloud, each kind of check (model types, backend rules, catalog lookups).
REAL = ["aws-0", "aws-1", "aws-x0", "aws-x2", "aws-x4", "aws-x8", "aws-x9", "aws-x10", "aws-x12",
        "gcp-x0", "gcp-x1", "gcp-x2", "gcp-x4", "gcp-x6", "gcp-x10",
        "kubernetes-0", "kubernetes-x0", "kubernetes-x2", "kubernetes-20",
        "ssh-x0", "ssh-x2", "ssh-3",
        "local-x0", "local-x2", "local-5", "local-x5"]


def line_for(case: Case, lines: list[str]) -> str | None:
    """The problem line that names the case's key path, its bad value and what is allowed."""
    key = f"styx:cluster.{case.path}"
    for ln in lines:
        if (ln.startswith(key + ":") or ln.startswith(key + " ")) and case.bad in ln and case.allowed in ln:
            return ln
    return None
