"""Reaching a cluster's nodes: SSH targets from a stack's outputs, a private key on disk only while ssh
runs, one command on one node, and Ray's health from `ray status` on the head (and the alive-node
count by `ray.nodes()` that tests and benchmarks wait with).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styx.app import hostkeys
from styx.app.project import EXIT_FAILED, EXIT_USAGE, StyxError, make_engine, open_stack

# A Ray client on a node with token auth (setup.ray.auth: token) reads RAY_AUTH_MODE and the token's path
# from the file the ray phase writes; the token itself never leaves its 0600 file.
RAY_CLIENT_ENV = "[ ! -r /etc/styx/ray-auth.env ] || . /etc/styx/ray-auth.env; "

# With these, ssh_argv adds the node's pinned host key (styx.app.hostkeys: StrictHostKeyChecking=yes).
SSH_OPTS = ["-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes"]


@dataclass
class Target:
    node: str
    host: str
    port: int
    user: str
    key_text: str | None = None
    key_file: str | None = None
    cluster: str = ""  # the cluster's name: its known_hosts file and the node's HostKeyAlias
    known_hosts: str | None = None  # the cluster's known_hosts file (styx.app.hostkeys)
    accept_hint: str = ""  # what to say when the node shows another host key
    # a private node (ssh.jump): reached through this hop, {name, host, port, user} (`ProxyCommand` ssh -W)
    jump: dict[str, Any] | None = None


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
    cname = str((cluster or {}).get("name") or "cluster")
    known = hostkeys.write_known_hosts(cname, outputs)
    jump = outputs.get("ssh_jump") if hit.get("private") else None
    return Target(name, str(hit.get("host") or hit.get("private_ip")), node_port(cluster, name), user,
                  key_text if not key_file else None, str(Path(key_file).expanduser()) if key_file else None,
                  cname, str(known), hostkeys.accept_hint(cname, name, outputs), jump)


@contextlib.contextmanager
def key_path(t: Target) -> Iterator[str]:
    """A path to the private key for the duration of the block (a 0600 temp file, removed after)."""
    if t.key_file:
        yield t.key_file
        return
    d = tempfile.mkdtemp(prefix="styx-ssh-")
    os.chmod(d, 0o700)
    try:
        yield str(write_key(d, t.key_text or ""))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def write_key(directory: str | os.PathLike, text: str) -> Path:
    """`text` (a private key) in a new file of `directory` that only its owner can read (mkstemp: 0600,
    created exclusively), ending in a newline as ssh wants it."""
    fd, p = tempfile.mkstemp(prefix="styx-key-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return Path(p)


def ssh_argv(t: Target, key: str, *, tty: bool = False, extra: list[str] | None = None,
             command: str | None = None, connect_timeout: int | None = 10) -> list[str]:
    known = t.known_hosts or "/dev/null"
    argv = ["ssh", "-i", key, *SSH_OPTS, *hostkeys.ssh_options(t.cluster, t.node, known), "-p", str(t.port)]
    if connect_timeout:
        argv += ["-o", f"ConnectTimeout={connect_timeout}"]
    if t.jump:  # a private node: through its jump host (pinned as well), which opens the TCP stream to it
        j = t.jump
        hop = ["ssh", "-i", key, *SSH_OPTS, *hostkeys.ssh_options(t.cluster, j["name"], known),
               "-o", "BatchMode=yes", "-p", str(j["port"]), "-W", f"{t.host}:{t.port}", f"{j['user']}@{j['host']}"]
        if connect_timeout:
            hop[1:1] = ["-o", f"ConnectTimeout={connect_timeout}"]
        argv += ["-o", "ProxyCommand=" + shlex.join(hop)]
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


def ray_in_container(cluster: dict[str, Any] | None) -> bool:
    """setup.ray.container is set (and Ray enabled): Ray and its Python live in the node's container."""
    ray = ((cluster or {}).get("setup") or {}).get("ray") or {}
    return ray.get("enabled", True) is not False and bool(ray.get("container"))


def container_command(command: str, *, tty: bool = False) -> str:
    """`command` (a shell line) run inside the node's Ray container (`styx exec/ssh --container`)."""
    from styx.components.phases import in_container

    return in_container(command, tty=tty)


def ray_client_command(cluster: dict[str, Any] | None, command: str) -> str:
    """A Ray client command line (`ray status`, `python -` with Ray) where the cluster's Ray is: the
    node's venv (the command as given, the auth settings first) or the Ray container."""
    if ray_in_container(cluster):
        return container_command(command)
    return RAY_CLIENT_ENV + command


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


# Alive Ray nodes counted by a Ray driver on the head (`ray.nodes()`: exact at once, about 1-2 CPU seconds),
# what the end-to-end tests and the benchmarks wait with (through ssh, `styx exec` or `kubectl exec`);
# `ray status` (ray_health) shows the autoscaler's last report instead. One line, for `bash -c`.
RAY_ALIVE_PY = (RAY_CLIENT_ENV + "RAY_USAGE_STATS_ENABLED=0 /opt/styx/venv/bin/python -c 'import ray; "
                "ray.init(address=\"auto\", logging_level=\"ERROR\", log_to_driver=False); "
                "print(\"alive=%d\" % sum(1 for n in ray.nodes() if n[\"Alive\"]))'")


def ray_alive_count(stdout: str) -> int | None:
    """The count RAY_ALIVE_PY printed (None: no count; Ray may print its own warnings on stdout too)."""
    found = [ln.split("=", 1)[1] for ln in stdout.splitlines() if ln.startswith("alive=")]
    return int(found[-1]) if found else None


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
    ray = "ray" if ray_in_container(cluster) else f"{shlex.quote(venv)}/bin/ray"
    cmd = ray_client_command(cluster, f"RAY_USAGE_STATS_ENABLED=0 timeout {max(5, timeout - 5)} {ray} status"
                             + (f" --address {shlex.quote(addr)}" if addr else ""))
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


# --------------------------------------------------------------------------- many nodes


@dataclass
class ExecResult:
    """One node's run of a command (or a copy): its exit code, output and time."""

    node: str
    host: str
    command: str
    exit_code: int | None  # the remote command's; 255: ssh could not connect; None: timed out
    stdout: str
    stderr: str
    timed_out: bool = False
    duration_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def select_nodes(outputs: dict[str, Any], *, nodes: list[str] | None = None, role: str | None = None) -> list[str]:
    """Node names of the stack, in its order: all, those named (each must exist), or those of a role."""
    names = [n.get("name") for n in outputs.get("nodes") or []]
    if not names:
        raise StyxError("the cluster has no nodes (not launched yet, or launch failed early); run `styx launch`",
                        EXIT_FAILED)
    if nodes:
        unknown = [n for n in nodes if n not in names]
        if unknown:
            raise StyxError(f"no node {', '.join(map(repr, unknown))}; nodes: {', '.join(names)}", EXIT_USAGE)
        picked = [n for n in names if n in nodes]
    else:
        picked = names
    if role:
        roles = {n.get("name"): n.get("role") for n in outputs.get("nodes") or []}
        if role not in ("head", "worker"):
            raise StyxError(f"--role {role!r}: one of head, worker", EXIT_USAGE)
        picked = [n for n in picked if roles.get(n) == role]
    if not picked:
        raise StyxError("no node matches", EXIT_USAGE)
    return picked


def _pump(stream, sink: list[str], on_line: Callable[[str], None] | None) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
        if on_line:
            on_line(line.rstrip("\n"))
    stream.close()


def run_on(t: Target, command: str, *, timeout: float | None = None, on_stdout: Callable[[str], None] | None = None,
           on_stderr: Callable[[str], None] | None = None, stdin_text: str | None = None) -> ExecResult:
    """`command` on one node over SSH, its lines streamed to the callbacks as they come; killed after
    `timeout` seconds (the remote side gets the hang-up: ssh's session ends). `stdin_text` (a program,
    a secret) goes to the command's stdin, never onto a command line."""
    import threading
    import time

    start = time.monotonic()
    out: list[str] = []
    err: list[str] = []
    with key_path(t) as key:
        argv = ssh_argv(t, key, extra=["-o", "BatchMode=yes"], command=command)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
                                start_new_session=True)
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, out, on_stdout), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, err, on_stderr), daemon=True)]
        for p in pumps:
            p.start()
        if stdin_text is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin_text)
                proc.stdin.close()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
        for p in pumps:
            p.join(timeout=5)
    rc = None if timed_out else proc.returncode
    if rc == 255 and hostkeys.refused("".join(err)):
        err.append(t.accept_hint + "\n")
        if on_stderr:
            on_stderr(t.accept_hint)
    return ExecResult(t.node, t.host, command, rc, "".join(out), "".join(err), timed_out,
                      round(time.monotonic() - start, 2))


def run_on_many(targets: list[Target], command: str, *, timeout: float | None = None, parallel: int = 16,
                on_line: Callable[[str, str, str], None] | None = None) -> list[ExecResult]:
    """`command` on every target at once (at most `parallel` at a time); `on_line(node, stream, line)`
    gets each line as it comes. Results in the targets' order; one node's failure never stops another."""
    from concurrent.futures import ThreadPoolExecutor

    def one(t: Target) -> ExecResult:
        try:
            return run_on(t, command, timeout=timeout,
                          on_stdout=(lambda ln, n=t.node: on_line(n, "stdout", ln)) if on_line else None,
                          on_stderr=(lambda ln, n=t.node: on_line(n, "stderr", ln)) if on_line else None)
        except OSError as e:  # ssh missing, too many open files, ...
            return ExecResult(t.node, t.host, command, 255, "", f"{type(e).__name__}: {e}\n", False, 0.0)

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets)))) as pool:
        return list(pool.map(one, targets))


# --------------------------------------------------------------------------- copies


def _ssh_pipe(t: Target, key: str, command: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(ssh_argv(t, key, extra=["-o", "BatchMode=yes"], command=command), **kw)


def copy_to(t: Target, local: Path, remote: str, *, timeout: float | None = None) -> ExecResult:
    """Copy a local file or folder to `remote` on the node, like `scp -r`: into `remote` when it is a
    folder there (or ends with /), else as `remote`. Streamed over the SSH connection (tar for folders);
    a file lands under a temp name first, so a broken copy never leaves half a file at `remote`."""
    import time

    start = time.monotonic()
    local = Path(local).expanduser()
    if not local.exists():
        raise StyxError(f"{local}: no such file or folder", EXIT_USAGE)
    q, name = shlex.quote(remote), shlex.quote(local.name)
    pick = (f'd={q}; if [ -d "$d" ] || [ "${{d%/}}" != "$d" ]; then mkdir -p -- "$d"; d="${{d%/}}/"{name}; '
            f'else mkdir -p -- "$(dirname -- "$d")"; fi; ')
    with key_path(t) as key:
        if local.is_dir():
            cmd = pick + 'mkdir -p -- "$d" && tar -x -C "$d" -f -'
            tar = subprocess.Popen(["tar", "-C", str(local), "-cf", "-", "."], stdout=subprocess.PIPE)
            proc = _ssh_pipe(t, key, cmd, stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            tar.stdout.close()
        else:
            mode = oct(local.stat().st_mode & 0o777)[2:]
            cmd = pick + f'cat > "$d.styx-part" && chmod {mode} "$d.styx-part" && mv -f -- "$d.styx-part" "$d"'
            with open(local, "rb") as f:
                proc = _ssh_pipe(t, key, cmd, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            tar = None
        return _finish(t, proc, tar, timeout, start)


def copy_from(t: Target, remote: str, local: Path, *, timeout: float | None = None) -> ExecResult:
    """Copy a file or folder from the node to `local`: into `local` when it is a folder, else as `local`."""
    import time

    start = time.monotonic()
    local = Path(local).expanduser()
    q = shlex.quote(remote)
    probe = run_on(t, f'if [ -d {q} ]; then echo dir; elif [ -e {q} ]; then echo file; else echo none; fi',
                   timeout=timeout)
    kind = probe.stdout.strip()
    if probe.exit_code != 0 or kind not in ("dir", "file"):
        err = probe.stderr or (f"{remote}: no such file or folder on {t.node}\n" if kind == "none" else "")
        return ExecResult(t.node, t.host, f"copy {t.node}:{remote}", probe.exit_code or 1, "", err, probe.timed_out,
                          probe.duration_s)
    dest = local / Path(remote.rstrip("/")).name if local.is_dir() else local
    with key_path(t) as key:
        if kind == "dir":
            dest.mkdir(parents=True, exist_ok=True)
            proc = _ssh_pipe(t, key, f"tar -C {q} -cf - .", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            tar = subprocess.Popen(["tar", "-C", str(dest), "-xf", "-"], stdin=proc.stdout)
            proc.stdout.close()
            return _finish(t, proc, tar, timeout, start)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".styx-part")
        with open(part, "wb") as f:
            proc = _ssh_pipe(t, key, f"cat {q}", stdout=f, stderr=subprocess.PIPE)
            r = _finish(t, proc, None, timeout, start)
        if r.exit_code == 0:
            part.replace(dest)
        else:
            part.unlink(missing_ok=True)
        return r


def _finish(t: Target, proc: subprocess.Popen, tar: subprocess.Popen | None, timeout: float | None,
            start: float) -> ExecResult:
    import time

    timed_out = False
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        _out, err = proc.communicate()
    code = None if timed_out else proc.returncode
    if tar is not None:
        tar_code = tar.wait()
        if code == 0 and tar_code != 0:
            code = tar_code
            err = (err or b"") + f"local tar exited {tar_code}\n".encode()
    text = (err or b"").decode(errors="replace") if isinstance(err, bytes) else (err or "")
    if code == 255 and hostkeys.refused(text):
        text += t.accept_hint + "\n"
    return ExecResult(t.node, t.host, "copy", code, "", text, timed_out, round(time.monotonic() - start, 2))
