"""A real AWS cluster: `pulumi up`, check it, `pulumi up` again (no changes), `pulumi destroy`.

Costs money and needs (each missing one skips the test with its reason):
- AWS credentials: AWS_ACCESS_KEY_ID (+ AWS_SECRET_ACCESS_KEY), AWS_PROFILE, or ~/.aws/credentials;
- STYX_AWS_SSH_CIDR: the address range of this machine, e.g. "$(curl -s https://checkip.amazonaws.com)/32"
  (styx never opens SSH to the world by default; this is also the opt-in to spend money);
- the Pulumi toolchain (`bash toolchain/install-pulumi.sh`) with the aws and tls plugins registered:
  `pulumi plugin install resource aws 7.51.1 && pulumi plugin install resource tls 5.6.2`.
Optional: STYX_AWS_REGION (default us-east-1), STYX_AWS_ZONE, STYX_AWS_HEAD_TYPE (default t3.small),
STYX_AWS_GPU_TYPE (e.g. g4dn.xlarge) adds one spot GPU worker on the Deep Learning image and checks
nvidia-smi on it.

Run: pytest -m cloud tests/integration/test_aws_real.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from styx.app import hostkeys

pytestmark = [pytest.mark.cloud, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
AWS_PLUGIN, TLS_PLUGIN = "resource-aws-v7.51.1", "resource-tls-v5.6.2"


def credentials_reason() -> str | None:
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        if not os.environ.get("AWS_SECRET_ACCESS_KEY"):
            return "AWS_ACCESS_KEY_ID is set but not AWS_SECRET_ACCESS_KEY"
        return None
    if os.environ.get("AWS_PROFILE"):
        return None
    creds = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    if creds.is_file():
        return None
    return "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or write ~/.aws/credentials"


def require_aws() -> str:
    reason = credentials_reason()
    if reason:
        pytest.skip(reason)
    cidr = os.environ.get("STYX_AWS_SSH_CIDR")
    if not cidr:
        pytest.skip("STYX_AWS_SSH_CIDR unset: give this machine's address range (e.g. 198.51.100.7/32); "
                    "it is also the opt-in to create billable AWS resources")
    from styx.app import engine

    try:
        engine.check_toolchain()
    except engine.ToolchainMissing as e:
        pytest.skip(str(e))
    plugins = engine.pulumi_home() / "plugins"
    for p in (AWS_PLUGIN, TLS_PLUGIN):
        if not (plugins / p).exists():
            pytest.skip(f"Pulumi plugin {p} not installed in {plugins} "
                        f"(pulumi plugin install {p.replace('-v', ' ').replace('-', ' ', 1)})")
    return cidr


def cluster_config(cidr: str) -> dict:
    region = os.environ.get("STYX_AWS_REGION", "us-east-1")
    cluster: dict = {
        "name": f"it-{uuid.uuid4().hex[:6]}",
        "cloud": "aws",
        "region": region,
        "head": {"instance_type": os.environ.get("STYX_AWS_HEAD_TYPE", "t3.small"), "disk_size_gb": 30},
        "workers": [],
        "aws": {"ssh_cidrs": [cidr]},
        "setup": {"packages": ["jq"], "gpu": {"mode": "auto"}},
    }
    if os.environ.get("STYX_AWS_ZONE"):
        cluster["zone"] = os.environ["STYX_AWS_ZONE"]
    gpu = os.environ.get("STYX_AWS_GPU_TYPE")
    if gpu:
        cluster["workers"] = [{"name": "gpu", "count": 1, "instance_type": gpu, "spot": True, "image": "gpu",
                               "disk_size_gb": 120, "resources": {"accelerators": "T4:1"}}]
    return cluster


def _ssh(key: Path, pins: hostkeys.PinnedHosts, user: str, host: str, command: str) -> subprocess.CompletedProcess:
    """`command` on the node at `host`, its host key pinned (the stack's outputs: styx made it, cloud-init
    installed it)."""
    return subprocess.run(
        ["ssh", "-i", str(key), *pins.options(host), "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=15", f"{user}@{host}", command],
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_real_aws_cluster(tmp_path):
    cidr = require_aws()
    from styx.app import engine

    cluster = cluster_config(cidr)
    stack = engine.open_stack(cluster["name"], cluster, base_dir=ROOT, work_dir=tmp_path / "ws",
                              backend_url=f"file://{tmp_path / 'state'}")
    try:
        stack.up(color="never", on_output=print)
        out = {k: v.value for k, v in stack.outputs().items()}
        assert out["aws_region"] == cluster["region"]
        assert out["aws_security_group_id"].startswith("sg-")
        assert set(out["aws_instance_ids"]) == {n["name"] for n in out["nodes"]}
        for results in out["phase_results"].values():
            assert all(line.startswith("styx ") and (": ok:" in line or ": skipped:" in line)
                       for line in results.values()), results

        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.write(fd, out["ssh_private_key"].encode())
        os.close(fd)
        key = Path(name)
        key.chmod(0o600)
        pins = hostkeys.PinnedHosts.write(cluster["name"], out, tmp_path / "known_hosts")
        user, head = out["ssh_user"], out["head_ip"]
        # IMDSv2 only: a tokenless (v1) request is refused, a token request works
        v1 = _ssh(key, pins, user, head, "curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/")
        assert v1.stdout.strip() == "401", v1
        # the dashboard is not reachable from outside: only through the SSH tunnel
        r = subprocess.run(["curl", "-s", "-m", "5", f"http://{head}:8265"], capture_output=True, check=False)
        assert r.returncode != 0
        status = _ssh(key, pins, user, head, f"/opt/styx/venv/bin/ray status --address {out['ray_address']}")
        assert status.returncode == 0, status.stderr
        if cluster["workers"]:
            gpu = next(n for n in out["nodes"] if n["role"] == "worker")
            smi = _ssh(key, pins, user, gpu["host"], "nvidia-smi -L")
            assert "GPU 0" in smi.stdout, smi

        again = stack.preview(color="never")
        changes = {k: v for k, v in (again.change_summary or {}).items() if k != "same"}
        assert changes == {}, changes
    finally:
        stack.destroy(color="never", on_output=print)
        stack.workspace.remove_stack(cluster["name"])
