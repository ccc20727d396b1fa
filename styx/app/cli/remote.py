"""`styx ssh`, `styx exec`, `styx dashboard` (the targets, keys and Ray health: styx.app.remote).

The cluster's private key comes from the stack (the `ssh_private_key` secret output, or the config's
ssh.private_key / ssh.private_key_file). A key from the stack is written to a 0600 file in a 0700
temp folder only while ssh runs, then removed; it is never printed.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import click

from styx.app.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    StyxError,
    backend_option,
    emit_json,
    handle_errors,
    info,
    json_option,
    stack_option,
)
from styx.app.remote import (  # noqa: F401  (re-exported: status and tests read them here)
    SSH_OPTS,
    Target,
    container_command,
    dashboard_port,
    key_path,
    load,
    node_port,
    parse_ray_status,
    ray_health,
    remote_command,
    ssh_argv,
    target_for,
)

# --------------------------------------------------------------------------- ssh

_KEY_HINT = ("# <key file>: the stack's secret output ssh_private_key (styx never prints it), e.g.\n"
             "#   pulumi stack output -s {stack} ssh_private_key --show-secrets > key && chmod 600 key\n"
             "# (with the same PULUMI_BACKEND_URL / passphrase as styx), or use `styx ssh` / `styx dashboard`")


def _ssh_failed(t: Target, rc: int) -> None:
    """ssh's own 255 (it printed why on the terminal): if that was the pinned host key, say what to do."""
    if rc == 255 and t.accept_hint:
        info(f"(ssh exit 255) if ssh said 'Host key verification failed' above: {t.accept_hint}")


def _stdin_tty() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False



@click.command("ssh")
@click.argument("node", required=False)
@stack_option
@backend_option
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command (key file as a placeholder).")
@click.option("--container", "in_box", is_flag=True,
              help="A shell inside the node's Ray container (setup.ray.container).")
@handle_errors
def ssh(node, stack_name, backend, print_only, in_box):
    """Open a shell on NODE (default: head)."""
    session, outputs, cluster = load(stack_name, backend)
    t = target_for(outputs, cluster, node)
    command = None
    if in_box:
        _need_container(cluster)
        command = container_command("exec bash", tty=print_only or _stdin_tty())
    if print_only:
        click.echo(shlex.join(ssh_argv(t, t.key_file or "<key file>", tty=in_box, command=command)))
        if not t.key_file:
            info(_KEY_HINT.format(stack=session.name))
        return
    with key_path(t) as key:
        rc = subprocess.call(ssh_argv(t, key, tty=_stdin_tty(), command=command))
    _ssh_failed(t, rc)
    raise SystemExit(rc)


def _need_container(cluster) -> None:
    from styx.app.remote import ray_in_container

    if not ray_in_container(cluster):
        raise StyxError("--container: this cluster runs Ray on the hosts (no setup.ray.container)", EXIT_USAGE)


# --------------------------------------------------------------------------- exec


class _RawArgsCommand(click.Command):
    """Keeps the raw argument list so `--` can be located (click drops it)."""

    def parse_args(self, ctx, args):
        ctx.meta["styx_raw_args"] = list(args)
        return super().parse_args(ctx, args)


@click.command("exec", cls=_RawArgsCommand, context_settings={"ignore_unknown_options": True})
@stack_option
@backend_option
@click.option("--timeout", type=click.IntRange(1, 86400), default=None,
              help="Give up after this many seconds (with --all: on each node).")
@click.option("--all", "all_nodes", is_flag=True, help="Run on every node in parallel.")
@click.option("--nodes", metavar="A,B", help="Run on these nodes in parallel.")
@click.option("--role", type=click.Choice(["head", "worker"]), help="Run on the nodes of this role in parallel.")
@click.option("--parallel", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="With --all/--nodes/--role: at most this many nodes at a time.")
@click.option("--container", "in_box", is_flag=True,
              help="Run inside the node's Ray container (setup.ray.container): the image's Python and Ray.")
@json_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handle_errors
def exec_(ctx, stack_name, backend, timeout, all_nodes, nodes, role, parallel, in_box, as_json, args):
    """Run a command on NODE (default: head): styx exec [NODE] -- CMD...; on many: styx exec --all -- CMD...

    The exit code is the remote command's (255: ssh could not connect). With --json, the output is
    captured: {"ok", "node", "exit_code", "stdout", "stderr"}. With --all, --nodes or --role every line
    comes prefixed with its node, a summary per node ends the run, and the exit code is 1 when any
    node failed or timed out; --json gives {"ok", "nodes": [{node, exit_code, stdout, stderr,
    timed_out, duration_s}, ...]}.
    """
    raw = ctx.meta.get("styx_raw_args", [])
    args = list(args)
    if "--" in raw:  # click consumed the `--`; everything after it is the command
        n_after = len(raw) - raw.index("--") - 1
        before, cmd = args[: len(args) - n_after], args[len(args) - n_after:]
    else:
        before, cmd = [], args
    if len(before) > 1:
        raise StyxError(f"expected at most one NODE before --, got {' '.join(before)}", EXIT_USAGE)
    if not cmd:
        raise StyxError("no command: styx exec [NODE] -- CMD...", EXIT_USAGE)
    _session, outputs, cluster = load(stack_name, backend)

    def wrap(command: str) -> str:
        return container_command(command) if in_box else command

    if in_box:
        _need_container(cluster)
    if all_nodes or nodes or role:
        if before:
            raise StyxError("give either NODE or --all/--nodes/--role", EXIT_USAGE)
        names = [n.strip() for n in nodes.split(",") if n.strip()] if nodes else None
        _exec_many(stack_name, backend, wrap(remote_command(tuple(cmd))), names, role, timeout, parallel, as_json)
    node = before[0] if before else None
    if node is None and "--" not in raw and len(cmd) > 1:
        names = {n.get("name") for n in outputs.get("nodes") or []}
        if cmd[0] in names:
            node, cmd = cmd[0], cmd[1:]
    if as_json:
        from dataclasses import asdict

        from styx.app import api

        r = api.exec(stack_name, wrap(remote_command(tuple(cmd))), node=node, backend=backend, timeout=timeout)
        emit_json({"ok": r.ok, **asdict(r)})
        raise SystemExit(r.exit_code)
    t = target_for(outputs, cluster, node)
    command = wrap(remote_command(tuple(cmd)))
    with key_path(t) as key:
        argv = ssh_argv(t, key, extra=["-o", "BatchMode=yes"], command=command)
        try:
            rc = subprocess.run(argv, timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            raise StyxError(f"timed out after {timeout}s: {command}", EXIT_FAILED) from None
    _ssh_failed(t, rc)
    raise SystemExit(rc)


def _exec_many(stack_name, backend, command, names, role, timeout, parallel, as_json) -> None:
    import threading
    from dataclasses import asdict

    from styx.app import api

    lock = threading.Lock()

    def on_line(node: str, stream: str, line: str) -> None:
        with lock:
            click.echo(f"[{node}] {line}", err=stream == "stderr")

    results = api.exec_all(stack_name, command, nodes=names, role=role, backend=backend, timeout=timeout,
                           parallel=parallel, on_line=None if as_json else on_line)
    ok = all(r.ok for r in results)
    if as_json:
        emit_json({"ok": ok, "command": command, "nodes": [asdict(r) for r in results]})
    else:
        for r in results:
            what = (f"timed out after {timeout}s" if r.timed_out else "ok" if r.ok else f"exit {r.exit_code}")
            info(f"{r.node}: {what} ({r.duration_s:.1f}s)")
        bad = [r.node for r in results if not r.ok]
        info(f"{len(results) - len(bad)}/{len(results)} nodes ok" + (f"; failed: {', '.join(bad)}" if bad else ""))
    raise SystemExit(0 if ok else 1)


@click.command("cp")
@stack_option
@backend_option
@click.option("--timeout", type=click.IntRange(1, 86400), default=None, help="Give up after this many seconds.")
@json_option
@click.argument("src")
@click.argument("dst")
@handle_errors
def cp(stack_name, backend, timeout, as_json, src, dst):
    """Copy files to or from nodes: styx cp LOCAL NODE:PATH, styx cp NODE:PATH LOCAL (NODE: a node or all).

    Folders are copied whole (like scp -r): into PATH when it is a folder (or ends with /), else as
    PATH. From all nodes: into LOCAL/<node>/. The exit code is 1 when any node failed.
    """
    from dataclasses import asdict

    from styx.app import api

    results = api.cp(stack_name, src, dst, backend=backend, timeout=timeout)
    ok = all(r.ok for r in results)
    if as_json:
        emit_json({"ok": ok, "nodes": [asdict(r) for r in results]})
    else:
        for r in results:
            what = "timed out" if r.timed_out else "ok" if r.ok else f"failed: {r.stderr.strip()[-300:]}"
            info(f"{r.node}: {what} ({r.duration_s:.1f}s)")
    raise SystemExit(0 if ok else 1)


# --------------------------------------------------------------------------- dashboard





@click.command("dashboard")
@stack_option
@backend_option
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Local port (default: the dashboard's).")
@click.option("--print", "print_only", is_flag=True, help="Print the tunnel command and URL, do not run it.")
@json_option
@handle_errors
def dashboard(stack_name, backend, port, print_only, as_json):
    """Open an SSH tunnel to the Ray dashboard on the head and print its URL (Ctrl-C closes it)."""
    session, outputs, cluster = load(stack_name, backend)
    t = target_for(outputs, cluster, "head")
    remote = dashboard_port(cluster)
    local = port or remote
    url = f"http://127.0.0.1:{local}"
    fwd = ["-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:127.0.0.1:{remote}"]
    if print_only:
        cmd = shlex.join(ssh_argv(t, t.key_file or "<key file>", extra=fwd))
        if as_json:
            emit_json({"ok": True, "command": cmd, "url": url, "node": "head", "host": t.host})
        else:
            click.echo(cmd)
            click.echo(f"# then open {url}")
            if not t.key_file:
                info(_KEY_HINT.format(stack=session.name))
        return
    with key_path(t) as key:
        proc = subprocess.Popen(ssh_argv(t, key, extra=fwd))
        if as_json:
            emit_json({"ok": True, "url": url, "pid": proc.pid, "host": t.host})
        else:
            click.echo(url)
        info(f"Ray dashboard tunnel to {t.host}:{remote} open at {url} (Ctrl-C to close)")
        if (((cluster or {}).get("setup") or {}).get("ray") or {}).get("auth", "token") == "token":
            info("the dashboard asks for the cluster's Ray token (setup.ray.auth: token): "
                 f"pulumi stack output -s {session.name} ray_auth_token --show-secrets")
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            rc = 0
    if rc not in (0, 130, -2):
        raise StyxError(f"ssh tunnel exited with {rc}", EXIT_FAILED)


