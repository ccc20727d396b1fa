"""Helpers for end-to-end tests: real engine (Automation API), local backend, SSH into nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from styx.app import hostkeys
from styx.app.remote import write_key

ROOT = Path(__file__).resolve().parents[2]
SANDBOXCTL = ROOT / "sandbox" / "sandboxctl.sh"
# Ray clients on a node read the token auth settings the ray phase wrote (setup.ray.auth: token)
RAY_ENV = ". /etc/styx/ray-auth.env; RAY_USAGE_STATS_ENABLED=0 "


def require_engine_and_sandbox() -> None:
    from styx.app import engine

    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, mounts) for the local backend")
    try:
        engine.check_toolchain()
    except engine.ToolchainMissing as e:
        pytest.skip(str(e))
    if not (engine.toolchain_bin() / "pulumi-resource-command").exists():
        pytest.skip("pulumi-resource-command missing: run bash toolchain/install-pulumi.sh")
    for tool in ("debootstrap", "iptables", "ip", "unshare", "ssh"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} missing: run bash sandbox/host-deps.sh")
    if not SANDBOXCTL.exists():
        pytest.skip("sandbox/sandboxctl.sh missing")


@dataclass
class Ops:
    """Resource operations seen in one engine run, by resource name."""

    by_name: dict[str, set[str]] = field(default_factory=dict)

    def on_event(self, ev) -> None:
        pre = getattr(ev, "resource_pre_event", None)
        if pre is None:
            return
        md = pre.metadata
        name = md.urn.rsplit("::", 1)[-1]
        if md.type.startswith("pulumi:"):
            return
        self.by_name.setdefault(name, set()).add(md.op.value if hasattr(md.op, "value") else str(md.op))

    def changed(self) -> dict[str, set[str]]:
        """Resources with any operation other than same/read, with their operations."""
        return {n: ops for n, ops in self.by_name.items() if ops - {"same", "read"}}


class Stack:
    """One styx stack on a temp file backend."""

    def __init__(self, name: str, cluster: dict, tmp: Path):
        from styx.app import engine

        self.name = name
        self.tmp = tmp
        self.backend = f"file://{tmp / 'state'}"
        self.cluster = cluster
        self.stack = engine.open_stack(name, cluster, base_dir=ROOT, work_dir=tmp / "ws", backend_url=self.backend)
        self._key: Path | None = None
        self._pins: hostkeys.PinnedHosts | None = None

    def reconfigure(self, cluster: dict) -> None:
        from styx.app import engine

        self.cluster = cluster
        engine.set_cluster_config(self.stack, cluster)

    def up(self) -> tuple[object, Ops]:
        ops = Ops()
        from styx.app.engine import PARALLEL

        res = self.stack.up(on_event=ops.on_event, color="never", on_output=lambda s: None, parallel=PARALLEL)
        self._pins = None  # a replaced node has another host key
        return res, ops

    def preview(self) -> tuple[object, Ops]:
        ops = Ops()
        res = self.stack.preview(on_event=ops.on_event, diff=True, color="never", on_output=lambda s: None)
        return res, ops

    def destroy(self):
        ops = Ops()
        res = self.stack.destroy(on_event=ops.on_event, color="never", on_output=lambda s: None)
        self._pins = None
        return res, ops

    def outputs(self) -> dict:
        return {k: v.value for k, v in self.stack.outputs().items()}

    def key(self) -> Path:
        if self._key is None:
            self._key = write_key(self.tmp, self.outputs()["ssh_private_key"])
        return self._key

    def pins(self) -> hostkeys.PinnedHosts:
        """The nodes' host keys from the stack's outputs, pinned (a known_hosts file in the temp dir)."""
        if self._pins is None:
            path = self.tmp / f"known_hosts-{self.name}"
            self._pins = hostkeys.PinnedHosts.write(self.cluster["name"], self.outputs(), path)
        return self._pins

    def ssh(self, ip: str, command: str, timeout: int = 120, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(
            ["ssh", "-i", str(self.key()), *self.pins().options(ip), "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
             "-o", "ConnectTimeout=10", f"root@{ip}", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"ssh {ip} {command!r} failed ({r.returncode}): {r.stderr[-2000:]}")
        return r


def sandbox_status(cluster: str) -> dict:
    r = subprocess.run(["bash", str(SANDBOXCTL), "status"], env={**os.environ, "STYX_SB_CLUSTER": cluster},
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def leftovers(status: dict) -> dict:
    """What sandboxctl still finds of a cluster (empty when clean)."""
    return {k: v for k, v in status.items() if isinstance(v, list) and v}


def launched_cluster(name: str, cluster: dict, work_dir: Path, server_bind: str | None = None):
    """A module's one cluster, for real: `up`, then yields {"stack", "ips"} (node name -> private IP); after
    the tests it is destroyed and its stack removed, and nothing of it may be left (sandboxes, and with
    `server_bind` no cache server bound there). Use as the body of a module-scoped fixture."""
    import copy

    require_engine_and_sandbox()
    s = Stack(name, copy.deepcopy(cluster), work_dir)
    try:
        s.up()
        yield {"stack": s, "ips": {n["name"]: n["private_ip"] for n in s.outputs()["nodes"]}}
    finally:
        try:
            s.destroy()
        finally:
            s.stack.workspace.remove_stack(s.name)
    assert not leftovers(sandbox_status(name))
    if server_bind is not None:
        assert subprocess.run(["pgrep", "-f", f"http.server --bind {server_bind}"],
                              capture_output=True).returncode == 1


def ray_alive(ctx: dict) -> int:
    """Alive Ray nodes, asked on the head with a real driver (`ray.init()` + `ray.nodes()`)."""
    r = ctx["stack"].ssh(ctx["ips"]["head"], RAY_ENV + "python -c 'import ray; ray.init(); "
                         "print(sum(n[\"Alive\"] for n in ray.nodes()))'", timeout=180)
    return int(r.stdout.strip().splitlines()[-1])
