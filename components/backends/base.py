"""The one interface every backend implements: shared infrastructure once, then one machine per node.

A backend is a small class in its own module, registered by name in `styx.components.backends`.
Everything that depends on which cloud a cluster uses is decided here, never by testing the cloud's
name elsewhere (a test greps for that): callers ask the backend.

What the program asks (through `styx.components.backends.validate`, the one validation every entry point
runs: `styx validate/preview/launch` and the program itself):
- `catalog_clouds(cfg)`: whose instance catalogs its rules read (styx.model.catalog);
- `config_problems(cfg, catalog)`: the cloud's rules for the config, catalog checks included (pure:
  no host, no network; `catalog` None when none is available: those checks are skipped);
- `config_warnings(cfg)`: what is allowed but risky (SSH open to the internet);
- `check(cfg)`: host or account preflight before any resource is registered;
- `prepare(ctx)`: shared resources (network, firewall, key pair), parented to the Cluster;
- `machine(ctx, node, parent)`: create or adopt one machine, parented to its Node, and say how to
  reach it (a `NodeHandle` with a `Transport`); `static_address(ctx, node)` says whether a stoppable node
  dialled on its public address gets a static one (`<section>.static_ip`: the address, and so every
  phase's connection, survives `styx stop`/`start`);
- `placement_request(request)`: adjust the optimizer request of `instance_type: auto`.
What the CLI asks (launch, failover, pricing, ssh), on the raw cluster dict or the parsed config:
- `features` (a `Feature` flag set), `config_section`, `capacity_patterns`;
- `config_zones`, `default_zone`, `failed_place`, `next_zone_placement`: where to try next;
- `fixed_price(cfg, spec, zone)`: the price of a node the catalog does not price;
- `ssh_port(cluster, node)`: where `styx ssh` connects;
- `styx stop`/`start` (`Feature.STOP`): `can_stop(cluster, node)` (spot refusals), then either
  `stop_machines`/`start_machines` (the backend acts itself) or, with `power_in_program`, `power_urns`
  (the resources an `up --target` changes; the program reads `ProvisionContext.stopped`).
- `styx image create` (`Feature.IMAGES`): `image_source(cluster, node, resources)` (what to make the image
  from, out of the cluster stack's state), then `image(name, source, opts)` in the image's own stack;
- setup.autostop (`Feature.AUTOSTOP`): `autostop_poweroff` (the nodes stop themselves with an OS shutdown,
  `machine_stopped` then tells styx from a refreshed machine), else `autostop_record`/`autostop_state`/
  `autostop_helpers` (the backend acts on the head's request itself).
- setup.python.wheel_cache: `wheel_cache_on_head` (the head serves the workers; else the backend brings its
  own cache through `NodeHandle.phase_overrides`, or none).
Setup phases never see the backend: they only get the handle's transport and addresses.
"""

from __future__ import annotations

import copy
import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pulumi

from styx.components.transport import ProxyHop, SSHTransport, Transport
from styx.model.catalog import gpus
from styx.model.config import CONFIG_KEY, ClusterConfig, NodeSpec

if TYPE_CHECKING:
    from styx.model.catalog import Catalog


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
    STOP = enum.auto()  # machines can be stopped and started again with their disks (`styx stop`/`start`)
    # setup.autostop: the head's watcher can have the cluster stopped when idle: the backend acts on its
    # request (`autostop_record` says what was done), or the nodes stop themselves (`autostop_poweroff`)
    AUTOSTOP = enum.auto()
    # setup.autostop.down: the request can destroy the cluster, not only stop it (something with the
    # engine's credentials acts on it: the local host's reaper runs `styx down`)
    AUTOSTOP_DOWN = enum.auto()
    # `styx image create`: a node's root as an image that later nodes boot from (their `image`), so their
    # phases find the installs done (`image_source` + `image`, registered in an image stack of its own)
    IMAGES = enum.auto()


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
class HostKey:
    """One node's SSH host key as styx pins it. `public_key` is `TYPE BASE64` (authorized_keys form, no
    comment); `private_key` (a secret Output) only when styx generated it (the backend installs it on the
    machine at creation); `source` says how it became trusted: "generated" or "first use" (scanned
    once from an adopted host). `resource` is what to replace to accept a legitimately new key."""

    public_key: pulumi.Output[str]
    source: str
    private_key: pulumi.Output[str] | None = None
    resource: pulumi.Resource | None = None


@dataclass
class Jump:
    """Where private nodes are reached through (`ssh.jump`): the head, or a bastion. Its host key is
    pinned too (the head's own; a bastion's scanned on first use)."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    user: str
    host_key: HostKey
    name: str  # "head" or "bastion": the known_hosts alias of styx's own ssh


@dataclass
class ProvisionContext:
    cfg: ClusterConfig
    key: ClusterKey | None  # None when the backend's key_generator is "none"
    cluster: pulumi.ComponentResource
    shared: dict[str, Any] = field(default_factory=dict)  # what prepare() made, for machine()
    # `instance_type: auto` groups, resolved once and recorded (styx.components.placement); by group name
    placements: dict[str, Any] = field(default_factory=dict)
    # the cluster's Ray auth token (a secret Output; None with setup.ray.auth: none): the ray phase puts it
    # on the nodes; a backend where something else starts Ray (KubeRay) hands it over itself
    ray_token: Any = None
    # `ssh.jump`: how private nodes are reached (set by the Cluster: a bastion before any node, the head
    # once it exists); None when every node is dialed directly
    jump: Jump | None = None
    # the nodes `styx stop` stopped (the stack's `styx:power` record): a backend with `power_in_program`
    # keeps their machines stopped (AWS: an InstanceState, GCP: desired_status); never a phase trigger
    stopped: frozenset[str] = frozenset()

    def private(self, node: NodeRequest) -> bool:
        """Whether this node gets no public address and is reached through `jump` (`ssh.jump`: head →
        the workers; a bastion → every node)."""
        j = self.cfg.ssh.jump
        return j is not None and (j != "head" or node.role == "worker")

    def ssh_transport(self, host: pulumi.Input[str], port: pulumi.Input[int], user: str,
                      host_key: HostKey, *, private: bool = False) -> SSHTransport:
        """SSH to a machine with the cluster key, its pinned host key and the config's dial timeouts
        (every SSH backend); `private`: through `jump` (the connection's proxy), `host` being the address
        the jump host reaches it at."""
        assert self.key is not None, "this backend generates no SSH key"
        proxy = None
        if private:
            assert self.jump is not None, "a private node needs ssh.jump (the head is made first)"
            proxy = self.jump
        return SSHTransport(host=host, port=port, user=user, private_key=self.key.private_key,
                            host_key=host_key.public_key,
                            connect_timeout_s=self.cfg.ssh.connect_timeout_s,
                            per_dial_timeout_s=self.cfg.ssh.per_dial_timeout_s,
                            proxy=None if proxy is None else ProxyHop(proxy.host, proxy.port, proxy.user,
                                                                      proxy.host_key.public_key))

    def host_key(self, node: NodeRequest, parent: pulumi.Resource) -> HostKey:
        """A new host key for a machine this backend creates (it installs `private_key` at creation)."""
        from styx.components.keys import host_key

        return host_key(self.cfg, node.name, parent)

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
    host_key: HostKey | None = None  # pinned by the SSH transport; None where no SSH is used (kubectl)
    private: bool = False  # reached only through `ssh.jump` (no public address)


def _node_spec(cluster: Mapping[str, Any], node: str) -> Mapping[str, Any] | None:
    """The raw spec (head or worker group) a node name belongs to."""
    if node == "head":
        return cluster.get("head") or {}
    for g in cluster.get("workers") or []:
        if node.rsplit("-", 1)[0] == g.get("name", "worker"):
            return g
    return None


def clouds_with(feature: Feature) -> list[str]:
    """The registered clouds whose backends have `feature` (for error lines: what is allowed where)."""
    from styx.components.backends import backend_class, backend_names

    out = []
    for name in backend_names():
        try:
            if feature in backend_class(name).features:
                out.append(name)
        except (ImportError, ValueError):  # a missing SDK breaks nothing else
            continue
    return out


def cloud_net_problems(cfg: ClusterConfig, section: str) -> list[str]:
    """The rule of every cloud with an SSH firewall: `<section>.ssh_cidrs` must list who may reach SSH."""
    if getattr(cfg, section).ssh_cidrs:
        return []
    return [f"{CONFIG_KEY}.{section}.ssh_cidrs: empty; list the CIDRs allowed to reach SSH (e.g. [203.0.113.0/24]); "
            "styx never opens SSH to 0.0.0.0/0 by default"]


_OPEN = ("0.0.0.0/0", "::/0")


def cloud_net_warnings(cfg: ClusterConfig, section: str) -> list[str]:
    """SSH open to the whole internet: allowed (a user may mean it), but said out loud."""
    cidrs = [c for c in getattr(cfg, section).ssh_cidrs if c.replace(" ", "") in _OPEN]
    return [f"warning: {CONFIG_KEY}.{section}.ssh_cidrs: {c} opens SSH (port 22) to the whole internet; "
            "list the networks you connect from instead (e.g. 203.0.113.0/24)" for c in cidrs]


def node_specs(cfg: ClusterConfig) -> list[tuple[str, NodeSpec]]:
    """(key path below `styx:cluster`, spec) of the head and each worker group."""
    return [("head", cfg.head), *((f"workers[{i}]", g) for i, g in enumerate(cfg.workers))]


def allowed(values: Sequence[str] | set[str], bad: str = "", n: int = 12) -> str:
    """`did you mean X? allowed: a, b, ... (N in all)`: the closest values first (difflib)."""
    import difflib

    vals = sorted(set(values))
    close = difflib.get_close_matches(bad, vals, n=3, cutoff=0.6) if bad else []
    if bad and not close:
        low = bad.lower()
        close = [v for v in vals if v.lower() == low or v.lower().startswith(low) or low.startswith(v.lower())][:3]
    head = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    shown = ", ".join(vals[:n]) + (f", ... ({len(vals)} in all)" if len(vals) > n else "")
    return f"{head}allowed: {shown}" if vals else head.strip()


def accelerator_names(spec: NodeSpec) -> list[tuple[str, str]]:
    """(key below the spec, accelerator name) of every accelerator a spec's resources name."""
    res = spec.resources
    if res is None:
        return []
    out = []
    if res.accelerators:
        out.append(("resources.accelerators", res.accelerators.split(":")[0]))
    for key in ("any_of", "ordered"):
        for j, a in enumerate(getattr(res, key) or []):
            out.append((f"resources.{key}[{j}]", a.split(":")[0]))
    return out


def accelerator_problems(cfg: ClusterConfig, catalog: Catalog | None, cloud: str | None) -> list[str]:
    """Every accelerator name must be a GPU styx knows: the GPU table (styx.model.catalog.gpus), and, with a
    catalog, the names it lists (for `cloud`'s catalog: names sold on that cloud only)."""
    k = CONFIG_KEY
    p: list[str] = []
    if catalog is not None and cloud is not None:
        names = [n for n in catalog.accelerator_names() if catalog.accelerator_listed(n, cloud)]
        where = f"the {cloud} catalog"
    else:
        names = list(gpus.KNOWN_ACCELERATORS.values()) + (catalog.accelerator_names() if catalog else [])
        where = "styx's GPU table" + (" and the catalogs" if catalog else "")
    known = {n.lower() for n in names}
    for path, spec in node_specs(cfg):
        for key, name in accelerator_names(spec):
            if name.lower() not in known:
                p.append(f"{k}.{path}.{key}: {name!r} is not a GPU in {where}; {allowed(names, name)}")
    return p


def catalog_problems(backend: Backend, cfg: ClusterConfig, catalog: Catalog) -> list[str]:
    """The rules of a cloud with its own catalog (`Feature.CATALOG`): the region, the zones, each instance
    type (unless its group says `allow_unlisted: true`) and each accelerator name must be in it."""
    k, cloud = CONFIG_KEY, backend.name
    p: list[str] = []
    regions = catalog.regions(cloud)
    if cfg.region and cfg.region not in regions:
        p.append(f"{k}.region: {cfg.region!r} is not a {cloud} region in the catalog; {allowed(regions, cfg.region)}")
    # zones are checkable where the catalog names them as configs do (GCP: us-central1-a; AWS lists ids)
    named = {z: r for z, r in catalog.zones(cloud).items() if z.startswith(r)}
    zone_keys = [("zone", cfg.zone)] + [(f"{w}.zone", s.zone) for w, s in node_specs(cfg)]
    if named:
        for key, z in zone_keys:
            if z is None:
                continue
            if z not in named:
                choices = [n for n, r in named.items() if r == cfg.region] or list(named)
                p.append(f"{k}.{key}: {z!r} is not a {cloud} zone in the catalog; {allowed(choices, z)}")
    types = catalog.instance_types(cloud)
    for where, spec in node_specs(cfg):
        t = spec.instance_type
        if not t or t == "auto" or spec.allow_unlisted:
            continue
        offers = catalog.offers_of_type(cloud, t)
        if not offers:
            fact = gpus.instance_gpus(cloud, t)
            if fact is None or fact.count is None:
                p.append(f"{k}.{where}.instance_type: {t!r} is not a {cloud} instance type in the catalog; "
                         f"{allowed(types, t)} (a type newer than the catalog: set allow_unlisted: true "
                         f"on {where})")
            continue
        in_region = {o.region for o in offers}
        if cfg.region and cfg.region in regions and cfg.region not in in_region:
            p.append(f"{k}.{where}.instance_type: {t!r} is not offered in region {cfg.region!r} (the catalog "
                     f"has it in {', '.join(sorted(in_region)[:8])}); set allow_unlisted: true on {where} to "
                     "try anyway")
    return p


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
    # `styx stop`/`start` through the program (Feature.STOP): each machine's run state follows
    # `ProvisionContext.stopped`, and styx applies a change with an `up --target` of `power_urns`;
    # False: `stop_machines`/`start_machines` act on the machines themselves (the local sandboxes).
    power_in_program: ClassVar[bool] = False
    # What to do instead of `spot: true` on a cloud without Feature.SPOT.
    spot_hint: ClassVar[str] = "spot needs a cloud that sells spot capacity"
    # setup.autostop (Feature.AUTOSTOP): True: no cloud credentials on the nodes, so they stop themselves (the
    # head's watcher shuts its machine down, a follower on each worker does the same on its request; the
    # cloud keeps a shut-down machine stopped, with its disks). False: the backend acts on the request.
    autostop_poweroff: ClassVar[bool] = False
    # Why a cloud without Feature.AUTOSTOP has none (its error line says it).
    autostop_hint: ClassVar[str] = "styx cannot stop its machines"
    # setup.python.wheel_cache auto: True: the head fetches the cluster's wheels once and serves them to the
    # workers on its private address (the `wheel_cache` phase, port phases.HEAD_WHEEL_CACHE_PORT, which the
    # cloud's firewall must let the cluster's nodes reach); False: the backend has its own cache (local) or none.
    wheel_cache_on_head: ClassVar[bool] = False

    # ------------------------------------------------------------------ config

    def catalog_clouds(self, cfg: ClusterConfig) -> tuple[str, ...] | None:
        """The clouds whose catalogs `config_problems` reads for this config: () none, None every one."""
        return (self.name,) if Feature.CATALOG in self.features else ()

    def config_problems(self, cfg: ClusterConfig, catalog: Catalog | None = None) -> list[str]:
        """The cloud's rules for a parsed config, each naming its key path and what is allowed. Pure: no
        host, no network. `catalog`: the clouds of `catalog_clouds` (None: none available; skip its checks).

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
        if cfg.ssh.jump is not None and self.key_generator == "none":
            p.append(f"{k}.ssh.jump: cloud {cfg.cloud} reaches its nodes without SSH; remove ssh.jump")
        if Feature.REGIONS in self.features and not cfg.region:
            p.append(f"{k}.region: required for cloud {cfg.cloud}")
        if Feature.CATALOG in self.features:
            for where, spec in [("head", cfg.head), *((f"workers[{i}]", g) for i, g in enumerate(cfg.workers))]:
                if not spec.instance_type:
                    p.append(f"{k}.{where}.instance_type: required for cloud {cfg.cloud} (a type, or auto with "
                             "resources)")
        if Feature.SPOT not in self.features:
            for where, spec in node_specs(cfg):
                if spec.spot:
                    p.append(f"{k}.{where}.spot: not supported for cloud {cfg.cloud} (allowed: false); "
                             f"{self.spot_hint}")
        p += self._autostop_problems(cfg)
        own = catalog is not None and Feature.CATALOG in self.features and self.name in catalog.clouds
        p += accelerator_problems(cfg, catalog if own else None, self.name if own else None)
        if own:
            assert catalog is not None
            p += catalog_problems(self, cfg, catalog)
        return p

    def _autostop_problems(self, cfg: ClusterConfig) -> list[str]:
        """setup.autostop: only where the cluster can be stopped; `down: true` only where something can destroy
        it (Feature.AUTOSTOP_DOWN); every node must be one that can stop (`can_stop`: the rule of `styx stop`)."""
        a, k = cfg.setup.autostop, CONFIG_KEY
        if a is None:
            return []
        if Feature.AUTOSTOP not in self.features:
            return [f"{k}.setup.autostop: not supported for cloud {cfg.cloud}: {self.autostop_hint} (allowed with "
                    f"cloud {', '.join(clouds_with(Feature.AUTOSTOP))}); remove setup.autostop"]
        p: list[str] = []
        if a.down and Feature.AUTOSTOP_DOWN not in self.features:
            p.append(f"{k}.setup.autostop.down: true is not supported for cloud {cfg.cloud}: its nodes hold no cloud "
                     "credentials, so an idle cluster can only stop itself, not destroy itself (allowed: false; "
                     f"down: true with cloud {', '.join(clouds_with(Feature.AUTOSTOP_DOWN))}); a stopped cluster "
                     "keeps its disks (billed) until `styx down`")
        raw = cfg.model_dump(mode="json")
        seen: set[str] = set()
        for name, _role, spec, _i in cfg.nodes():
            where = "head" if spec is cfg.head else f"workers[{cfg.workers.index(spec)}]"
            why = self.can_stop(raw, name) if spec.spot else None
            if why and where not in seen:
                seen.add(where)
                p.append(f"{k}.{where}.spot: {why}, and setup.autostop stops every node (allowed: spot: false "
                         "with setup.autostop; or remove setup.autostop)")
        return p

    def config_warnings(self, cfg: ClusterConfig) -> list[str]:
        """What the config allows but should not go unsaid (each a `warning: <key path>: ...` line)."""
        return []

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

        (Clouds with `Feature.CATALOG` fail over through the optimizer instead: `styx.app.failover`.)
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

    def head_set_up(self, ctx: ProvisionContext, phases: Mapping[str, pulumi.Resource]) -> None:
        """Resources of this backend that need the head's phases done (`phases`: the head's phase resources by
        phase name), e.g. the local backend's capture of the head's environment. Default: none."""
        return None

    def outputs(self, ctx: ProvisionContext, head: NodeHandle) -> dict[str, Any]:
        """Extra stack outputs (e.g. a port-forward command)."""
        return {}

    def gone_machines(self, cluster: Mapping[str, Any], nodes: Sequence[str]) -> list[str] | None:
        """Which of `nodes` have lost their machine outside Pulumi (a removed sandbox, a terminated
        VM). None: this backend cannot tell by itself, and the engine finds out by refreshing the
        machine resources (their provider reads them)."""
        return None

    def can_stop(self, cluster: Mapping[str, Any], node: str) -> str | None:
        """Why `node` cannot be stopped (None: it can). Default: a spot node cannot (only terminated)."""
        if (_node_spec(cluster, node) or {}).get("spot"):
            return "spot instances cannot be stopped (only terminated)"
        return None

    def static_address(self, ctx: ProvisionContext, node: NodeRequest) -> bool:
        """Whether `node` gets a static public address (`<config_section>.static_ip`, default true): only a node
        dialled on its public address (not private: `ssh.jump`) that can be stopped (`can_stop`), the one kind
        whose address would otherwise change with `styx stop`/`start` (and re-run its phases at the next
        launch). A spot node that cannot stop is never started again: it keeps its ephemeral address."""
        section = getattr(ctx.cfg, self.config_section, None) if self.config_section else None
        if not getattr(section, "static_ip", False) or Feature.STOP not in self.features or ctx.private(node):
            return False
        return self.can_stop(ctx.cfg.model_dump(mode="json", include={"head", "workers", self.config_section}),
                             node.name) is None

    def power_urns(self, cluster: Mapping[str, Any], node: str, machine_urn: str) -> list[str]:
        """With `power_in_program`: the URNs whose update stops or starts `node` (`machine_urn`: its
        machine's). Default: the machine itself (its run state is one of its inputs)."""
        return [machine_urn]

    def stop_machines(self, cluster: Mapping[str, Any], nodes: Sequence[str]) -> None:
        """Stop the machines of `nodes`, keeping their disks (only with Feature.STOP). Raises
        RuntimeError naming the node that could not be stopped."""
        raise NotImplementedError(f"cloud {self.name} cannot stop machines")

    def start_machines(self, cluster: Mapping[str, Any], nodes: Sequence[str]) -> None:
        """Start the stopped machines of `nodes` again (only with Feature.STOP)."""
        raise NotImplementedError(f"cloud {self.name} cannot start machines")

    def machine_stopped(self, outputs: Mapping[str, Any]) -> bool | None:
        """With `autostop_poweroff`: whether a machine resource's outputs, just refreshed, say that it is stopped
        (shut down from inside: setup.autostop). None: this backend cannot tell."""
        return None

    def autostop_record(self, cluster: Mapping[str, Any]) -> dict[str, Any] | None:
        """What autostop last did to this cluster, as the backend saw it (only with Feature.AUTOSTOP):
        {"at": ISO, "action": "stop" | "down", "nodes": [names stopped]}; None: nothing (yet)."""
        return None

    def autostop_helpers(self, cfg: ClusterConfig) -> list[tuple[str, str]]:
        """(type token, name) of the resources, children of the Cluster component, that this backend adds
        for setup.autostop (`styx autostop` updates them with the head's phase, nothing else)."""
        return []

    def autostop_state(self, cluster: Mapping[str, Any]) -> dict[str, Any] | None:
        """The head watcher's view, when the backend can read it without dialling the head:
        {"idle_since": ISO or None, "checked_at": ISO, "busy": reason or ""}; None: unknown."""
        return None

    # ------------------------------------------------------------------ images

    # whether `image` leaves the node's secrets (secret env, Ray token, the cluster's authorized key) out of
    # the image; when not, `styx image create` makes one of a cluster with secrets only with --include-secrets
    image_strips_secrets = False

    def image_source(self, cluster: Mapping[str, Any], node: str,
                     resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """What `styx image create` makes an image of (only with Feature.IMAGES): `node`'s machine as the
        cluster stack's state records it (`resources`: its export's list), as plain JSON values for the image
        stack's config. Raises LookupError naming the node when the state has no machine for it."""
        raise NotImplementedError(f"cloud {self.name} cannot make images of its nodes")

    def image(self, name: str, source: Mapping[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Input[str]:
        """Register image `name` made from `source` (`image_source`'s) in the image stack; returns what a
        node's `image` is set to for booting from it (an AMI id, an image's self link, a local image name)."""
        raise NotImplementedError(f"cloud {self.name} cannot make images of its nodes")


def machine_state(resources: Sequence[Mapping[str, Any]], type_token: str, name: str) -> Mapping[str, Any]:
    """The live resource `type_token` named `name` in a stack export's resources (a node's machine: what
    `Backend.image_source` reads); LookupError when there is none."""
    for r in resources:
        if r.get("type") == type_token and not r.get("delete") and str(r.get("urn", "")).endswith(f"::{name}"):
            return r
    raise LookupError(f"no {type_token} {name!r} in the stack's state")
