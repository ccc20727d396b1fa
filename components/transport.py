"""How a phase's command reaches a node. SSH for machines; a backend may bring its own (kubectl)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi_command import local, remote


class Transport(ABC):
    """Runs one phase command on one node as a Pulumi resource."""

    @abstractmethod
    def run(
        self,
        name: str,
        *,
        create: pulumi.Input[str],
        delete: pulumi.Input[str] | None,
        triggers: Sequence[Any],
        opts: pulumi.ResourceOptions,
        secret_output: bool = False,
        gate: bool = False,
    ) -> pulumi.CustomResource: ...


def _output_opts(opts: pulumi.ResourceOptions, secret_output: bool) -> pulumi.ResourceOptions:
    if not secret_output:
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["stdout", "stderr"]))


class SSHTransport(Transport):
    """`command.remote.Command` over SSH. The gate dials without limit until its create timeout."""

    def __init__(self, *, host: pulumi.Input[str], port: pulumi.Input[int], user: str,
                 private_key: pulumi.Input[str], connect_timeout_s: int, per_dial_timeout_s: int):
        self.host, self.port, self.user = host, port, user
        self.private_key = private_key
        self.connect_timeout_s = connect_timeout_s
        self.per_dial_timeout_s = per_dial_timeout_s

    def connection(self, gate: bool) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=self.host,
            port=self.port,
            user=self.user,
            private_key=self.private_key,
            # The gate waits for a booting machine: unlimited dials, bounded by its timeout.
            # Later phases run on a node the gate has reached: a few retries are enough.
            dial_error_limit=-1 if gate else 10,
            per_dial_timeout=self.per_dial_timeout_s,
        )

    def run(self, name, *, create, delete, triggers, opts, secret_output=False, gate=False):
        timeouts = pulumi.CustomTimeouts(
            create=f"{self.connect_timeout_s}s" if gate else None,
            delete=f"{max(60, self.per_dial_timeout_s * 4)}s",
        )
        return remote.Command(
            name,
            connection=self.connection(gate),
            create=create,
            delete=delete,
            triggers=list(triggers),
            logging=remote.Logging.NONE if secret_output else remote.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=_output_opts(pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(custom_timeouts=timeouts)),
                              secret_output),
        )


class LocalShellTransport(Transport):
    """Runs a phase through a local program that forwards its stdin to the node
    (e.g. `kubectl exec -i POD -- bash -s`): the phase command goes on stdin, so its parameters
    (secrets included) never show in a process list and no argument size limit applies.

    Subclasses say how to reach the node: `create_command(gate)`, `stdin_prefix(gate)` (e.g. a
    readiness check run first), `delete_command(undo)` and `gate_timeout_s`.
    """

    gate_timeout_s: int | None = None

    def __init__(self, prefix: str):
        self.prefix = prefix

    def create_command(self, gate: bool) -> str:
        return self.prefix

    def stdin_prefix(self, gate: bool) -> str:
        return ""

    def delete_command(self, undo: str) -> str:
        import shlex

        return f"printf '%s\\n' {shlex.quote(undo)} | {self.prefix}"

    def run(self, name, *, create, delete, triggers, opts, secret_output=False, gate=False):
        head = self.stdin_prefix(gate)
        stdin = pulumi.Output.from_input(create).apply(lambda c: head + c + "\n")
        delete_cmd = None if delete is None else pulumi.Output.from_input(delete).apply(self.delete_command)
        timeouts = pulumi.CustomTimeouts(create=f"{self.gate_timeout_s}s") if gate and self.gate_timeout_s else None
        return local.Command(
            name,
            create=self.create_command(gate),
            stdin=stdin,
            delete=delete_cmd,
            triggers=list(triggers),
            logging=local.Logging.NONE if secret_output else local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=_output_opts(pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(custom_timeouts=timeouts)),
                              secret_output),
        )
