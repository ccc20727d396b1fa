"""The one interface every backend implements: shared infrastructure once, then one machine per node.

A backend is a small class in its own module, registered by name in `components.backends`.
Everything that depends on which cloud a cluster uses is decided here, never by testing the cloud's
name elsewhere (a test greps for that): callers ask the backend.

What the program asks:
- `config_problems(cfg)`: the cloud's rules for the config (pure; `styx validate` runs them too);
- `check(cfg)`: host or account preflight before any resource is registered;
- `prepare(ctx)`: shared resources (network, firewall, key pair), parented to the Cluster;
- `machine(ctx, node, parent)`: create or adopt one machine, parented to its Node, and say how to
  reach it (a `NodeHandle` with a `Transport`);
- `placement_request(request)`: adjust the optimizer request of `instance_type: auto`.
What the CLI asks (launch, failover, pricing, ssh), on the raw cluster dict or the parsed config:
- `features` (a `Feature` flag set), `config_section`, `capacity_patterns`;
- `config_zones`, `default_zone`, `failed_place`, `next_zone_placement`: where to try next;
- `fixed_price(cfg, spec, zone)`: the price of a node the catalog does not price;
- `ssh_port(cluster, node)`: where `styx ssh` connects.
Setup phases never see the backend: they only get the handle's transport and addresses.
"""

from __future__ import annotations

import copy
import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi

from components.transport import SSHTransport, Transport
from styx.config import CONFIG_KEY, ClusterConfig, NodeSpec


class Feature(enum.Flag):
    """What a backend supports; callers test these, never the cloud's name."""

    NONE = 0
    REGIONS = enum.auto()  # machines go to a `region`, which the config must name
    ZONES = enum.auto()  # a node may be pinned to a `zone` (and failover may move it)
    SPOT = enum.auto()  # spot / preemptible nodes
    # Its instance types are in styx's catalog: every node needs `instance_type` (a type or `auto`),
    # nodes are priced from the catalog at launch, `auto` and capacity failover go through the optimizer.
    CATALOG = enum.auto()
    ADOPTS_HOSTS = enum.auto()  # adopts existing machines listed as head.host / workers[].hosts


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


def _node_spec(cluster: Mapping[str, Any], node: str) -> Mapping[str, Any] | None:
    """The raw spec (head or worker group) a node name belongs to."""
    if node == "head":
        return cluster.get("head") or {}
    for g in cluster.get("workers") or []:
        if node.rsplit("-", 1)[0] == g.get("name", "worker"):
            return g
    return None


def cloud_net_problems(cfg: ClusterConfig, section: str) -> list[str]:
    """The rule of every cloud with an SSH firewall: `<section>.ssh_cidrs` must list who may reach SSH."""
    if getattr(cfg, section).ssh_cidrs:
        return []
    return [f"{CONFIG_KEY}.{section}.ssh_cidrs: empty; list the CIDRs allowed to reach SSH (e.g. [203.0.113.0/24]); "
            "styx never opens SSH to 0.0.0.0/0 by default"]


class Backend(ABC):
    """One cloud. Subclasses set the ClassVars and override what differs; the defaults fit a cloud with
    no regions, no zones, no catalog and no special SSH rules."""

    name: ClassVar[str]
    # How a key is generated when the config gives none: "ssh-keygen" (a local command, no extra
    # plugin) or "tls" (pulumi-tls PrivateKey).
    key_generator: ClassVar[str] = "ssh-keygen"  # or "none": the backend needs no SSH key
    features: ClassVar[Feature] = Feature.NONE
    # The key of this cloud's own section of `styx:cluster` (`aws:`, `local:`), None when it has none.
    config_section: ClassVar[str | None] = None
    # Regexes over error text that mean "no capacity (or quota) here: try another place".
    capacity_patterns: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ config

    def config_problems(self, cfg: ClusterConfig) -> list[str]:
        """The cloud's rules for a parsed config, each naming its key path. Pure: no host, no network.

        The default applies the rules that follow from `features`; override and extend with `super()`.
        """
        k = CONFIG_KEY
        p: list[str] = []
        if Feature.ADOPTS_HOSTS not in self.features:
            if cfg.head.host is not None:
                p.append(f"{k}.head.host: only allowed for a cloud that adopts existing machines "
                         f"(cloud {cfg.cloud} makes its own)")
            for i, g in enumerate(cfg.workers):
                if g.hosts is not None:
                    p.append(f"{k}.workers[{i}].hosts: only allowed for a cloud that adopts existing machines "
                             f"(cloud {cfg.cloud} makes its own)")
        if Feature.REGIONS in self.features and not cfg.region:
            p.append(f"{k}.region: required for cloud {cfg.cloud}")
        if Feature.CATALOG in self.features:
            for where, spec in [("head", cfg.head), *((f"workers[{i}]", g) for i, g in enumerate(cfg.workers))]:
                if not spec.instance_type:
                    p.append(f"{k}.{where}.instance_type: required for cloud {cfg.cloud} (a type, or auto with "
                             "resources)")
        return p

    def check(self, cfg: ClusterConfig) -> list[str]:
        """Problems (each naming its key path) found before anything is created (host/account preflight)."""
        return []

    # ------------------------------------------------------------------ placement and failover

    def placement_request(self, request: Any) -> Any:
        """The optimizer request for `instance_type: auto` on this cloud (default: unchanged)."""
        return request

    def config_zones(self, cluster: Mapping[str, Any]) -> list[str] | None:
        """Zones the config itself lists for this backend (first = default), or None when zones come
        from the cloud (or there are none). Failover walks these zones in order."""
        return None

    def default_zone(self, cluster: Mapping[str, Any], node: str) -> str | None:
        """The zone a node runs in: its own, the cluster's, else the first of `config_zones`."""
        z = (_node_spec(cluster, node) or {}).get("zone") or cluster.get("zone")
        if z is None:
            zones = self.config_zones(cluster)
            z = zones[0] if zones else None
        return z

    def failed_place(self, cluster: Mapping[str, Any], zone: str | None) -> str:
        """The optimizer block string for a capacity failure in `zone`: `cloud/region/zone`,
        `cloud/region` or `cloud` (config-listed zones: `cloud/zone`)."""
        region = cluster.get("region")
        if self.config_zones(cluster) is not None:
            return f"{self.name}/{zone}" if zone else self.name
        if region and zone:
            return f"{self.name}/{region}/{zone}"
        if region:
            return f"{self.name}/{region}"
        return self.name

    def next_zone_placement(self, cluster: Mapping[str, Any], blocked: Sequence[str]) -> dict[str, Any] | None:
        """The cluster moved to the first of `config_zones` (its own `zone` first) that is not blocked,
        with nodes pinned to a blocked zone moved too; None when none is left or there are no such zones.

        (Clouds with `Feature.CATALOG` fail over through the optimizer instead: `styx.failover`.)
        """
        zones = self.config_zones(cluster)
        if not zones:
            return None
        blocked_set = set(blocked)

        def is_blocked(z: str | None) -> bool:
            return z is not None and (f"{self.name}/{z}" in blocked_set or z in blocked_set
                                      or self.name in blocked_set)

        preferred = [cluster["zone"]] if cluster.get("zone") else []
        for z in dict.fromkeys(preferred + list(zones)):
            if is_blocked(z):
                continue
            out = copy.deepcopy(dict(cluster))
            out["zone"] = z
            specs = [out.setdefault("head", {}), *(out.get("workers") or [])]
            for spec in specs:
                if spec.get("zone") and is_blocked(spec["zone"]):
                    spec["zone"] = z
            if any(is_blocked(s.get("zone")) for s in specs):
                continue
            return out
        return None

    # ------------------------------------------------------------------ pricing and access

    def fixed_price(self, cfg: ClusterConfig, spec: NodeSpec, zone: str | None) -> dict[str, Any] | None:
        """A node's pricing entry fields (`instance_type`, `zone`, `price_per_hour`, `source`) when this
        backend knows the price without the catalog (a sandbox, an existing machine); None: unpriced
        here (the catalog prices `Feature.CATALOG` clouds)."""
        return None

    def ssh_port(self, cluster: Mapping[str, Any], node: str) -> int:
        """The port `styx ssh` dials for `node` (default: `ssh.port`, else 22)."""
        return int((cluster.get("ssh") or {}).get("port") or 22)

    # ------------------------------------------------------------------ resources

    def prepare(self, ctx: ProvisionContext) -> None:
        """Create shared resources; store what machine() needs in ctx.shared."""
        return None

    @abstractmethod
    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent: pulumi.ComponentResource) -> NodeHandle:
        """Create (or adopt) one machine, parented to its Node component."""

    def outputs(self, ctx: ProvisionContext, head: NodeHandle) -> dict[str, Any]:
        """Extra stack outputs (e.g. a port-forward command)."""
        return {}
