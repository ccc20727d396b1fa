"""The one interface every backend implements: shared infrastructure once, then one machine per node.

A backend is a small class in its own module, registered by name in `components.backends`:
- `check(cfg)`: backend-specific problems, found before any resource is registered;
- `prepare(ctx)`: shared resources (network, firewall, key pair), parented to the Cluster;
- `machine(ctx, node, parent)`: create or adopt one machine, parented to its Node, and say how to
  reach it (a `NodeHandle` with a `Transport`).
Setup phases never see the backend: they only get the handle's transport and addresses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi

from components.transport import SSHTransport, Transport
from styx.config import ClusterConfig, NodeSpec


@dataclass(frozen=True)
class NodeRequest:
    name: str  # "head", "worker-0", "gpu-1"
    role: str  # "head" | "worker"
    spec: NodeSpec
    group: str  # "head" or the worker group name
    index: int  # index inside its group


@dataclass
class ClusterKey:
    """The cluster's SSH key pair; private_key is always a secret Output."""

    private_key: pulumi.Output[str]
    public_key: pulumi.Output[str]
    generated: bool


@dataclass
class ProvisionContext:
    cfg: ClusterConfig
    key: ClusterKey | None  # None when the backend's key_generator is "none"
    cluster: pulumi.ComponentResource
    shared: dict[str, Any] = field(default_factory=dict)  # what prepare() made, for machine()
    # `instance_type: auto` groups, resolved once and recorded (components.placement); by group name
    placements: dict[str, Any] = field(default_factory=dict)

    def ssh_transport(self, host: pulumi.Input[str], port: pulumi.Input[int], user: str) -> SSHTransport:
        """SSH to a machine with the cluster key and the config's dial timeouts (every SSH backend)."""
        assert self.key is not None, "this backend generates no SSH key"
        return SSHTransport(host=host, port=port, user=user, private_key=self.key.private_key,
                            connect_timeout_s=self.cfg.ssh.connect_timeout_s,
                            per_dial_timeout_s=self.cfg.ssh.per_dial_timeout_s)

    def instance_type(self, node: NodeRequest) -> pulumi.Input[str]:
        """The node's instance type: as configured, or the recorded optimizer choice for `auto`."""
        if node.spec.instance_type == "auto":
            return self.placements[node.group].instance_type
        return node.spec.instance_type or ""

    @property
    def opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.cluster)


@dataclass(frozen=True)
class PhaseOverride:
    """How one phase runs on one node of a backend: `skip` (a reason) or extra `env` for its script.

    Keys of an overrides mapping are phase names; "*" applies to every phase without its own entry.
    """

    env: Mapping[str, str] = field(default_factory=dict)
    skip: str | None = None


@dataclass
class NodeHandle:
    """A machine ready for phases: how to reach it and what it is."""

    name: str
    role: str
    host: pulumi.Input[str]  # where the machine running Pulumi connects
    private_ip: pulumi.Input[str]  # where other nodes reach it
    user: str
    port: pulumi.Input[int]
    transport: Transport
    # Changes when the machine is replaced, so its phases re-run on the new one.
    identity: pulumi.Input[str]
    resources: list[pulumi.Resource] = field(default_factory=list)  # phases depend on these
    info: dict[str, Any] = field(default_factory=dict)  # instance type, zone, price, ...
    # Per-phase adjustments for this node (e.g. pods skip the driver install); see PhaseOverride.
    phase_overrides: Mapping[str, PhaseOverride] = field(default_factory=dict)


class Backend(ABC):
    name: ClassVar[str]
    # How a key is generated when the config gives none: "ssh-keygen" (a local command, no extra
    # plugin) or "tls" (pulumi-tls PrivateKey).
    key_generator: ClassVar[str] = "ssh-keygen"  # or "none": the backend needs no SSH key

    def check(self, cfg: ClusterConfig) -> list[str]:
        """Problems (each naming its key path) found before anything is created."""
        return []

    def prepare(self, ctx: ProvisionContext) -> None:
        """Create shared resources; store what machine() needs in ctx.shared."""
        return None

    @abstractmethod
    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent: pulumi.ComponentResource) -> NodeHandle:
        """Create (or adopt) one machine, parented to its Node component."""

    def outputs(self, ctx: ProvisionContext, head: NodeHandle) -> dict[str, Any]:
        """Extra stack outputs (e.g. a port-forward command)."""
        return {}
