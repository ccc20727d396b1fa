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
    """Runs the command through a local program that forwards it (e.g. `kubectl exec -i POD -- sh -c`).

    `prefix` is a shell word list; the phase command is appended as one quoted argument.
    """

    def __init__(self, prefix: pulumi.Input[str], environment: dict[str, pulumi.Input[str]] | None = None):
        self.prefix = prefix
        self.environment = environment or {}

    def _wrap(self, cmd: pulumi.Input[str] | None) -> pulumi.Output[str] | None:
        if cmd is None:
            return None
        import shlex

        return pulumi.Output.all(self.prefix, cmd).apply(lambda a: f"{a[0]} {shlex.quote(a[1])}")

    def run(self, name, *, create, delete, triggers, opts, secret_output=False, gate=False):
        return local.Command(
            name,
            create=self._wrap(create),
            delete=self._wrap(delete),
            triggers=list(triggers),
            environment=self.environment or None,
            logging=local.Logging.NONE if secret_output else local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=_output_opts(opts, secret_output),
        )
