"""Reaching a cluster's nodes: SSH targets from a stack's outputs, a private key on disk only while ssh
runs, one command on one node, and Ray's health from `ray status` on the head.

The cluster's private key comes from the stack (the `ssh_private_key` secret output, or the config's
ssh.private_key / ssh.private_key_file). A key from the stack is written to a 0600 file in a 0700
temp folder only while ssh runs, then removed; it is never printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styx.app.project import EXIT_FAILED, EXIT_USAGE, StyxError, make_engine, open_stack

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "IdentitiesOnly=yes"]


@dataclass
class Target:
    node: str
    host: str
    port: int
    user: str
    key_text: str | None = None
    key_file: str | None = None


def node_port(cluster: dict[str, Any] | None, node: str) -> int:
    """The port `styx ssh` dials: the backend's rule (`Backend.ssh_port`)."""
    from styx.components.backends import backend_class

    cluster = cluster or {}
    try:
        backend = backend_class(cluster.get("cloud"))
    except ValueError:  # no (or an unknown) cloud recorded: the config's ssh.port
        return int((cluster.get("ssh") or {}).get("port") or 22)
    return backend().ssh_port(cluster, node)


def target_for(outputs: dict[str, Any], cluster: dict[str, Any] | None, node: str | None) -> Target:
    nodes = outputs.get("nodes") or []
    if not nodes:
        raise StyxError("the cluster has no nodes (not launched yet, or launch failed early); run `styx launch`",
                        EXIT_FAILED)
    name = node or "head"
    hit = next((n for n in nodes if n.get("name") == name), None)
    if hit is None:
        raise StyxError(f"no node {name!r}; nodes: {', '.join(n.get('name', '?') for n in nodes)}", EXIT_USAGE)
    ssh_cfg = (cluster or {}).get("ssh") or {}
    user = outputs.get("ssh_user") or ssh_cfg.get("user") or "root"
    key_text = outputs.get("ssh_private_key") or ssh_cfg.get("private_key")
    key_file = ssh_cfg.get("private_key_file")
    if not key_text and not key_file:
        raise StyxError("no SSH key for this cluster in its stack (ssh_private_key output / ssh.private_key)",
                        EXIT_FAILED)
    return Target(name, str(hit.get("host") or hit.get("private_ip")), node_port(cluster, name), user,
                  key_text if not key_file else None, str(Path(key_file).expanduser()) if key_file else None)


@contextlib.contextmanager
def key_path(t: Target) -> Iterator[str]:
    """A path to the private key for the duration of the block (a 0600 temp file, removed after)."""
    if t.key_file:
        yield t.key_file
        return
    d = tempfile.mkdtemp(prefix="styx-ssh-")
    os.chmod(d, 0o700)
    p = os.path.join(d, "id")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            text = t.key_text or ""
            f.write(text if text.endswith("\n") else text + "\n")
        yield p
    finally:
        shutil.rmtree(d, ignore_errors=True)


def ssh_argv(t: Target, key: str, *, tty: bool = False, extra: list[str] | None = None,
             command: str | None = None, connect_timeout: int | None = 10) -> list[str]:
    argv = ["ssh", "-i", key, *SSH_OPTS, "-p", str(t.port)]
    if connect_timeout:
        argv += ["-o", f"ConnectTimeout={connect_timeout}"]
    if tty:
        argv.append("-t")
    argv += extra or []
    argv.append(f"{t.user}@{t.host}")
    if command is not None:
        argv.append(command)
    return argv


def load(stack_name: str | None, backend: str | None):
    engine = make_engine(backend)
    session = open_stack(engine, stack_name)
    outputs = session.outputs()
    return session, outputs, session.cluster()


def remote_command(cmd: tuple[str, ...]) -> str:
    """One argument is a shell command line as written; several are quoted word by word."""
    return cmd[0] if len(cmd) == 1 else shlex.join(cmd)


def dashboard_port(cluster: dict[str, Any] | None) -> int:
    return int((((cluster or {}).get("setup") or {}).get("ray") or {}).get("dashboard_port") or 8265)


# --------------------------------------------------------------------------- ray health


_ACTIVE_RE = re.compile(r"^\s*(\d+)\s+node_[0-9a-f]+", re.M)


def parse_ray_status(text: str) -> dict[str, Any]:
    """Active nodes and resource usage from `ray status` output."""
    active = 0
    pending = 0
    section = None
    usage: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if s in ("Active:", "Idle:"):
            section = "active"
            continue
        if s == "Pending:":
            section = "pending"
            continue
        if s.startswith("Recent failures:") or s.startswith("Resources") or s.startswith("Demands:"):
            section = "usage" if s.startswith("Resources") else None
            continue
        if s == "Usage:":
            section = "usage"
            continue
        m = re.match(r"^(\d+)\s+node_", s)
        if m and section == "active":
            active += int(m.group(1))
        elif m and section == "pending":
            pending += int(m.group(1))
        elif section == "usage" and re.match(r"^[0-9.]+[A-Za-z]*/[0-9.]+", s):
            usage.append(s)
    return {"active_nodes": active, "pending_nodes": pending, "usage": usage}


def ray_health(outputs: dict[str, Any], cluster: dict[str, Any] | None, timeout: int = 20) -> dict[str, Any]:
    """`ray status` on the head over SSH (RAY_USAGE_STATS_ENABLED=0, bounded by `timeout`)."""
    ray_cfg = ((cluster or {}).get("setup") or {}).get("ray") or {}
    if ray_cfg.get("enabled", True) is False:
        return {"enabled": False, "ok": None}
    expected = len(outputs.get("nodes") or [])
    try:
        t = target_for(outputs, cluster, "head")
    except StyxError as e:
        return {"enabled": True, "ok": False, "error": e.message, "expected_nodes": expected}
    venv = (((cluster or {}).get("setup") or {}).get("python") or {}).get("venv_dir") or "/opt/styx/venv"
    addr = outputs.get("ray_address") or ""
    cmd = (f"RAY_USAGE_STATS_ENABLED=0 timeout {max(5, timeout - 5)} "
           f"{shlex.quote(venv)}/bin/ray status" + (f" --address {shlex.quote(addr)}" if addr else ""))
    with key_path(t) as key:
        try:
            r = subprocess.run(ssh_argv(t, key, extra=["-o", "BatchMode=yes"], command=cmd,
                                        connect_timeout=min(10, timeout)),
                               capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return {"enabled": True, "ok": False, "error": f"ray status timed out after {timeout}s",
                    "expected_nodes": expected}
    if r.returncode != 0:
        err = (r.stderr or r.stdout).strip().splitlines()
        return {"enabled": True, "ok": False, "error": err[-1] if err else f"exit {r.returncode}",
                "expected_nodes": expected}
    parsed = parse_ray_status(r.stdout)
    return {"enabled": True, "ok": parsed["active_nodes"] >= expected, "expected_nodes": expected, **parsed}
