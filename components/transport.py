"""How a phase reaches a node. SSH for machines; a backend may bring its own (kubectl).

Every transport runs the same thing: the fixed wrapper command of `styx.components.runner` with the
phase's program on stdin (parameters and secrets never in a command text), and copies a local file
(the file mounts' archive) to a path on the node.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import local, remote

from styx.components.runner import command_text


@dataclass(frozen=True)
class PhaseRun:
    """One phase on one node, as the transport needs it."""

    phase: str  # phase name ("python_env", "custom-hello", "wait_ssh")
    node: str  # node name, for messages
    timeout_s: int  # bound on the node
    program: pulumi.Input[str]  # stdin: exports + library + script (+ undo)
    has_undo: bool = False
    secret_output: bool = False  # stdout/stderr may carry secrets
    gate: bool = False  # the first phase: dials until the machine answers


@dataclass(frozen=True)
class ProxyHop:
    """The jump host a private node is reached through (`connection.proxy`), its host key pinned too."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    user: str
    host_key: pulumi.Input[str]


def _output_opts(opts: pulumi.ResourceOptions, secret_output: bool) -> pulumi.ResourceOptions:
    if not secret_output:
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["stdout", "stderr"]))


class Transport(ABC):
    """Runs one phase on one node as a Pulumi resource; copies files to the node."""

    @abstractmethod
    def run(self, name: str, run: PhaseRun, *, triggers: Sequence[Any],
            opts: pulumi.ResourceOptions) -> pulumi.CustomResource: ...

    @abstractmethod
    def copy(self, name: str, *, local_path: str, remote_path: str, triggers: Sequence[Any],
             opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        """Copy a local file to `remote_path` on the node (relative: to the SSH user's home)."""


class SSHTransport(Transport):
    """`command.remote.Command` over SSH (copies: `command.remote.CopyToRemote`, SFTP). The gate dials
    without limit until its create timeout; later phases run on a node the gate has reached. Every
    connection pins the node's host key (`connection.hostKey`); a private node is reached through its
    jump host (`connection.proxy`, whose host key is pinned as well)."""

    def __init__(self, *, host: pulumi.Input[str], port: pulumi.Input[int], user: str,
                 private_key: pulumi.Input[str], host_key: pulumi.Input[str], connect_timeout_s: int,
                 per_dial_timeout_s: int, proxy: ProxyHop | None = None):
        self.host, self.port, self.user = host, port, user
        self.private_key = private_key
        self.host_key = host_key  # pinned: the provider refuses any other key (ssh.FixedHostKey)
        self.proxy = proxy
        self.connect_timeout_s = connect_timeout_s
        self.per_dial_timeout_s = per_dial_timeout_s

    def connection(self, gate: bool) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=self.host,
            port=self.port,
            user=self.user,
            private_key=self.private_key,
            host_key=self.host_key,
            dial_error_limit=-1 if gate else 10,
            per_dial_timeout=self.per_dial_timeout_s,
            proxy=None if self.proxy is None else remote.ProxyConnectionArgs(
                host=self.proxy.host, port=self.proxy.port, user=self.proxy.user, private_key=self.private_key,
                host_key=self.proxy.host_key, dial_error_limit=-1 if gate else 10,
                per_dial_timeout=self.per_dial_timeout_s),
        )

    def run(self, name, run, *, triggers, opts):
        timeouts = pulumi.CustomTimeouts(
            create=f"{self.connect_timeout_s}s" if run.gate else None,
            delete=f"{max(60, self.per_dial_timeout_s * 4)}s",
        )
        return remote.Command(
            name,
            connection=self.connection(run.gate),
            create="exec " + command_text(run.phase, run.node, run.timeout_s, "create"),
            delete=("exec " + command_text(run.phase, run.node, run.timeout_s, "delete")) if run.has_undo else None,
            stdin=run.program,
            triggers=list(triggers),
            logging=remote.Logging.NONE if run.secret_output else remote.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=_output_opts(pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(custom_timeouts=timeouts)),
                              run.secret_output),
        )

    def copy(self, name, *, local_path, remote_path, triggers, opts):
        return remote.CopyToRemote(
            name,
            connection=self.connection(False),
            source=pulumi.FileAsset(local_path),
            remote_path=remote_path,
            triggers=list(triggers),
            opts=opts,
        )


class LocalShellTransport(Transport):
    """Runs a phase through a local program that forwards its stdin to the node
    (e.g. `kubectl exec -i POD -- `): the program goes on stdin, so its parameters (secrets included)
    never show in a process list and no argument size limit applies.

    Subclasses say how to reach the node: `exec_prefix(gate)` (the local words before the node-side
    command, e.g. a readiness wait then `kubectl exec -i POD --`), `stdin_prefix(gate)` (shell run on
    the node first, e.g. a GPU check), `guard_delete(cmd)` and `gate_timeout_s`.
    """

    gate_timeout_s: int | None = None

    def __init__(self, prefix: str):
        self.prefix = prefix

    def exec_prefix(self, gate: bool) -> str:
        return self.prefix

    def stdin_prefix(self, gate: bool) -> str:
        return ""

    def guard_delete(self, cmd: str) -> str:
        return cmd

    def run(self, name, run, *, triggers, opts):
        head = self.stdin_prefix(run.gate)
        stdin = pulumi.Output.from_input(run.program).apply(lambda p: head + p)
        create = f"{self.exec_prefix(run.gate)} {command_text(run.phase, run.node, run.timeout_s, 'create')}"
        delete = None
        if run.has_undo:
            delete = self.guard_delete(f"{self.prefix} {command_text(run.phase, run.node, run.timeout_s, 'delete')}")
        timeouts = pulumi.CustomTimeouts(create=f"{self.gate_timeout_s}s") if run.gate and self.gate_timeout_s \
            else None
        return local.Command(
            name,
            create=create,
            stdin=stdin,
            delete=delete,
            triggers=list(triggers),
            logging=local.Logging.NONE if run.secret_output else local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=_output_opts(pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(custom_timeouts=timeouts)),
                              run.secret_output),
        )

    def copy(self, name, *, local_path, remote_path, triggers, opts):
        target = remote_path if remote_path.startswith("/") else f"$HOME/{remote_path}"
        d = target.rsplit("/", 1)[0]
        inner = f'mkdir -p "{d}" && cat > "{target}.part" && mv -f "{target}.part" "{target}"'
        return local.Command(
            name,
            create=f"{self.prefix} sh -c {shlex.quote(inner)} < {shlex.quote(local_path)}",
            triggers=list(triggers),
            logging=local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=opts,
        )
