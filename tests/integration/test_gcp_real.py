"""A real GCP cluster: `pulumi up`, check it, `pulumi up` again (no changes), `pulumi destroy`.

Costs money and needs (each missing one skips the test with its reason):
- credentials: GOOGLE_APPLICATION_CREDENTIALS (a key file) or gcloud's application-default
  credentials (`gcloud auth application-default login`);
- a project: STYX_GCP_PROJECT, GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT or gcloud's `core/project`;
- STYX_GCP_SSH_CIDR: the address range of this machine, e.g. "$(curl -s https://ifconfig.me)/32"
  (styx never opens SSH to the world by default; this is also the opt-in to spend money);
- the Pulumi toolchain (`bash toolchain/install-pulumi.sh`) with the gcp and tls plugins registered:
  `pulumi plugin install resource gcp 10.2.0 && pulumi plugin install resource tls 5.6.2`.
Optional: STYX_GCP_ZONE (default us-central1-a); STYX_GCP_GPU_TYPE (e.g. g2-standard-4) adds one spot
GPU worker and checks nvidia-smi on it.

Run: pytest -m cloud tests/integration/test_gcp_real.py
"""

from __future__ import annotations

import configparser
import os
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from styx.app import hostkeys

pytestmark = [pytest.mark.cloud, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
GCP_PLUGIN, TLS_PLUGIN = "resource-gcp-v10.2.0", "resource-tls-v5.6.2"


def _gcloud_dir() -> Path:
    return Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")


def credentials_reason() -> str | None:
    creds = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if creds:
        return None if Path(creds).is_file() else f"GOOGLE_APPLICATION_CREDENTIALS={creds} is not a file"
    if os.environ.get("GOOGLE_OAUTH_ACCESS_TOKEN") or os.environ.get("GOOGLE_CREDENTIALS"):
        return None
    if (_gcloud_dir() / "application_default_credentials.json").is_file():
        return None
    return ("no GCP credentials: set GOOGLE_APPLICATION_CREDENTIALS or run "
            "`gcloud auth application-default login`")


def gcp_project() -> str | None:
    for var in ("STYX_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        if os.environ.get(var):
            return os.environ[var]
    cfgdir = _gcloud_dir()
    active = (cfgdir / "active_config").read_text().strip() if (cfgdir / "active_config").is_file() else "default"
    ini = configparser.ConfigParser()
    ini.read(cfgdir / "configurations" / f"config_{active}")
    return ini.get("core", "project", fallback=None)


def require_gcp() -> tuple[str, str]:
    reason = credentials_reason()
    if reason:
        pytest.skip(reason)
    project = gcp_project()
    if not project:
        pytest.skip("no GCP project: set STYX_GCP_PROJECT (or GOOGLE_CLOUD_PROJECT, or gcloud config core/project)")
    cidr = os.environ.get("STYX_GCP_SSH_CIDR")
    if not cidr:
        pytest.skip("STYX_GCP_SSH_CIDR unset: give this machine's address range (e.g. 198.51.100.7/32); "
                    "it is also the opt-in to create billable GCP resources")
    from styx.app import engine

    try:
        engine.check_toolchain()
    except engine.ToolchainMissing as e:
        pytest.skip(str(e))
    plugins = engine.pulumi_home() / "plugins"
    for p in (GCP_PLUGIN, TLS_PLUGIN):
        if not (plugins / p).exists():
            kind, name, version = p.split("-", 2)
            pytest.skip(f"{p} not in {plugins}: PULUMI_HOME={engine.pulumi_home()} pulumi plugin install "
                        f"{kind} {name} {version.lstrip('v')}")
    return project, cidr


def cluster(project: str, cidr: str) -> dict:
    zone = os.environ.get("STYX_GCP_ZONE", "us-central1-a")
    workers = [{"name": "cpu", "count": 1, "instance_type": "e2-standard-2", "spot": True, "disk_size_gb": 20}]
    gpu_type = os.environ.get("STYX_GCP_GPU_TYPE")
    if gpu_type:
        workers.append({"name": "gpu", "count": 1, "instance_type": gpu_type, "spot": True, "disk_size_gb": 100})
    return {
        "name": f"it-{uuid.uuid4().hex[:8]}",
        "cloud": "gcp",
        "region": zone.rsplit("-", 1)[0],
        "zone": zone,
        "head": {"instance_type": "e2-standard-4", "disk_size_gb": 30},
        "workers": workers,
        "gcp": {"project": project, "ssh_cidrs": [cidr], "image": "gpu"},
        "setup": {"packages": ["jq"], "gpu": {"mode": "auto"}, "ray": {"enabled": True}},
    }


def ssh(key: Path, pins: hostkeys.PinnedHosts, user: str, host: str, command: str) -> subprocess.CompletedProcess:
    """`command` on the node at `host`, its host key pinned (the stack's outputs: styx made it, cloud-init
    installed it)."""
    return subprocess.run(
        ["ssh", "-i", str(key), *pins.options(host), "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=15", f"{user}@{host}", command],
        capture_output=True, text=True, timeout=300, check=False,
    )


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def test_gcp_cluster_up_check_destroy(tmp_path):
    project, cidr = require_gcp()
    from styx.app import engine

    spec = cluster(project, cidr)
    stack = engine.open_stack(spec["name"], spec, base_dir=ROOT, work_dir=tmp_path / "ws",
                              backend_url=f"file://{tmp_path / 'state'}")
    try:
        stack.up(color="never", on_output=lambda s: None)
        out = {k: v.value for k, v in stack.outputs().items()}
        assert out["ssh_user"] == "styx" and out["project"] == project
        head = out["head_ip"]
        assert set(out["phase_results"]) == {n["name"] for n in out["nodes"]}
        with tempfile.NamedTemporaryFile("w", dir=tmp_path, delete=False) as f:
            f.write(out["ssh_private_key"])
        key = Path(f.name)
        key.chmod(0o600)
        pins = hostkeys.PinnedHosts.write(spec["name"], out, tmp_path / "known_hosts")

        r = ssh(key, pins, "styx", head, "sudo -n true && whoami && bash -lc 'ray status'")
        assert r.returncode == 0 and "styx" in r.stdout, r.stderr[-2000:]
        for port in (6379, 8265, 10001):  # Ray is never reachable from outside the cluster
            assert not port_open(head, port), f"Ray port {port} reachable from the internet"
        nodes = {n["name"]: n for n in out["nodes"]}
        if "gpu-0" in nodes:
            r = ssh(key, pins, "styx", nodes["gpu-0"]["host"], "nvidia-smi -L")
            assert r.returncode == 0 and "GPU 0" in r.stdout, r.stderr[-2000:]

        again = stack.up(color="never", on_output=lambda s: None)
        changed = {k: v for k, v in (again.summary.resource_changes or {}).items() if k != "same"}
        assert not changed, f"second up changed resources: {changed}"
    finally:
        stack.destroy(color="never", on_output=lambda s: None)
        stack.workspace.remove_stack(spec["name"])
