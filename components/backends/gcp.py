"""`cloud: gcp`: a VPC (or an existing one), firewall rules, a service account, one VM per node.

Setup phases run unchanged over SSH (styx.components.transport.SSHTransport) to each instance's external IP
(a reserved `gcp.compute.Address` for a VM that can stop, unless `gcp.static_ip: false`; else ephemeral);
other nodes reach it at its internal IP (network_interfaces[0].network_ip).

Decisions (each also in the README's GCP part):
- SSH user: GCP images refuse root logins, so the GCP default user is `styx` (created by the guest agent
  from the `ssh-keys` metadata, with passwordless sudo). `ssh.user` left unset means `styx`; an explicit
  `ssh.user: root` is a config error rather than a silent rename.
- Firewall: nodes carry one network tag, `styx-<cluster>`. Allow rules (priority 900): SSH from
  gcp.ssh_cidrs (one rule per IP family) and everything between tagged nodes (Ray ports and the head's
  wheel cache, 18951, included).
  One deny-all ingress rule (priority 1000) for the tag, so a permissive
  rule already in an existing network (the `default` network allows tcp:22 from 0.0.0.0/0 at 65534)
  cannot open the nodes. Ray ports are never reachable from outside the tag.
- Shielded VM: vTPM + integrity monitoring on every known image (Ubuntu, Deep Learning VM). Secure boot
  only on CPU machines: the NVIDIA kernel modules on GPU machines (DKMS-built by the Deep Learning VM or
  by the gpu phase) are not signed for the shim, so secure boot would keep the driver from loading.
  Explicit images get no shielded block (GCP applies its defaults where the image supports it).
- Images: `ubuntu-22.04` (default) / `ubuntu-24.04` are Canonical's LTS families; `gpu` is the Deep
  Learning VM family `common-cu129-ubuntu-2204-nvidia-580` (NVIDIA 580 driver preinstalled, matching
  setup.gpu.driver_version's default) on GPU machines and plain Ubuntu 22.04 on CPU machines;
  anything else is passed to GCP as is (a family or image self-link, `project/family`).
- GPUs: accelerator-optimized types (A2/A3/A4/G2/G4) have their GPUs built in (no guest_accelerators);
  N1 types take attachable GPUs from resources.accelerators (T4:1 -> nvidia-tesla-t4 × 1). Every GPU
  machine is TERMINATE on host maintenance (GPU VMs cannot live-migrate).
- Instances have fixed names (`<cluster>-<node>`) and are deleted before their replacement is created,
  so a replaced GPU node never needs twice its GPU quota. A machine type, GPU or scheduling change
  replaces the instance; its numeric instance_id changes, so its phases re-run.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from styx.components import first_boot
from styx.components.backends.base import (
    Backend,
    Feature,
    NodeHandle,
    NodeRequest,
    ProvisionContext,
    cloud_net_problems,
    cloud_net_warnings,
    machine_state,
)
from styx.model.catalog import gpus
from styx.model.config import CONFIG_KEY, ClusterConfig, GcpConfig, NodeSpec
from styx.model.grammar import parse_accelerator

K = CONFIG_KEY

DEFAULT_USER = "styx"
# The service account's default scopes (styx.model.config): logging + monitoring writes, never cloud-platform.
DEFAULT_SCOPES: tuple[str, ...] = tuple(GcpConfig.model_fields["scopes"].default_factory())  # type: ignore[misc]

# Image aliases (gcp.image or a node's image). Families resolve to their newest image at create time.
UBUNTU_2204 = "ubuntu-os-cloud/ubuntu-2204-lts"
UBUNTU_2404 = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
UBUNTU_2204_ARM = "ubuntu-os-cloud/ubuntu-2204-lts-arm64"
UBUNTU_2404_ARM = "ubuntu-os-cloud/ubuntu-2404-lts-arm64"
# Deep Learning VM: Ubuntu + CUDA 12.9 + NVIDIA 580 driver preinstalled. List current families with
# `gcloud compute images list --project deeplearning-platform-release --no-standard-images`.
DLVM_2204 = "projects/deeplearning-platform-release/global/images/family/common-cu129-ubuntu-2204-nvidia-580"
DLVM_2404 = "projects/deeplearning-platform-release/global/images/family/common-cu129-ubuntu-2404-nvidia-580"

# Ports Ray listens on; documentation for the firewall tests (no rule names them: they are only open
# between tagged nodes, through the all-traffic internal rule).
RAY_PORTS = (6379, 8265, 10001)

# Machine families that only take Hyperdisk boot disks (pd-balanced is refused).
_HYPERDISK_ONLY = ("a3-ultragpu-", "a4-", "a4x-", "c4-", "c4a-", "c4d-", "n4-", "n4d-", "x4-")
# Arm machine families (Ubuntu aliases pick the arm64 family).
_ARM = ("t2a-", "c4a-", "a4x-")


class AutoNotWired(Exception):
    """`instance_type: auto` needs the optimizer (styx.model.optimizer), not wired into this backend yet."""


# --------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class GpuPlan:
    """What GPUs a node gets and how they are declared."""

    accelerator: str | None = None  # catalog name: A100, L4, T4, ...
    count: int = 0
    builtin: bool = False  # part of the machine type (A2/A3/A4/G2/G4): no guest_accelerators block
    guest_type: str | None = None  # guest_accelerators type (N1 only)

    @property
    def has_gpu(self) -> bool:
        return self.count > 0 or self.builtin

    @property
    def label(self) -> str:
        return f"{self.accelerator}:{self.count}" if self.accelerator else ""


def builtin_gpus(machine_type: str) -> tuple[str, int | None] | None:
    """(accelerator, count or None when unknown) for a machine type with built-in GPUs, else None.

    The facts are styx.model.catalog.gpus's (shared with the catalog and the optimizer); unlike the catalog,
    this also knows the types styx does not offer from it (a3-edgegpu-8g, a4x-highgpu-4g, *-nolssd).
    """
    g = gpus.gcp_builtin(machine_type)
    return None if g is None else (g.accelerator, g.count)


def is_gpu_machine(machine_type: str) -> bool:
    return builtin_gpus(machine_type) is not None


def parse_accel(request: str) -> tuple[str, int]:
    """`A100:8` -> ("A100", 8); `A100` -> ("A100", 1) (styx.model.grammar)."""
    a = parse_accelerator(request, whole=True)
    return a.name, int(a.count)


def _attachable_names() -> str:
    return ", ".join(a.name for a in gpus.GCP_ATTACHABLE.values() if not a.retired)


def gpu_plan(machine_type: str, spec: NodeSpec) -> tuple[GpuPlan, str | None]:
    """The GPU plan for a node, and a problem (None when fine). Problems never raise."""
    req = spec.resources.accelerators if spec.resources else None
    built = gpus.gcp_builtin(machine_type)
    if built:
        name, count = built.accelerator, built.count
        if req:
            rname, rcount = parse_accel(req)
            if not built.matches(rname, rcount):
                return GpuPlan(name, count or 0, builtin=True), (
                    f"{req!r} does not match {machine_type}, which has {built.label} built in (allowed: {built.label})"
                )
            count = rcount if count is None else count
        return GpuPlan(name, count or 0, builtin=True), None
    if not req:
        return GpuPlan(), None
    rname, rcount = parse_accel(req)
    if not machine_type.startswith("n1-"):
        return GpuPlan(), (
            f"resources.accelerators {req!r}: on GCP, attachable GPUs need an N1 machine type (n1-standard-8 "
            f"for {_attachable_names().replace(', ', '/')}); {machine_type} takes none. "
            "L4/A100/H100/H200/B200 come with G2/A2/A3/A4 types"
        )
    att = gpus.attachable(rname)
    if att is None or att.retired:
        return GpuPlan(), (
            f"resources.accelerators {req!r}: {rname} does not attach to N1 machines; "
            f"use one of {_attachable_names()} or a machine type with built-in GPUs (a2-/a3-/a4-/g2-)"
        )
    if rcount not in att.counts:
        return GpuPlan(), f"resources.accelerators {req!r}: {att.name} attaches in counts {list(att.counts)}"
    return GpuPlan(att.name, rcount, builtin=False, guest_type=att.guest_type), None


def resolve_image(setting: str, machine_type: str, has_gpu: bool) -> tuple[str, str]:
    """(image for the boot disk, kind): kind is "ubuntu", "dlvm" or "custom"."""
    arm = machine_type.startswith(_ARM)
    if setting == "ubuntu-22.04" or (setting == "gpu" and not has_gpu):
        return (UBUNTU_2204_ARM if arm else UBUNTU_2204), "ubuntu"
    if setting == "ubuntu-24.04" or (setting == "gpu-ubuntu-24.04" and not has_gpu):
        return (UBUNTU_2404_ARM if arm else UBUNTU_2404), "ubuntu"
    if setting == "gpu":
        return DLVM_2204, "dlvm"
    if setting == "gpu-ubuntu-24.04":
        return DLVM_2404, "dlvm"
    return setting, "custom"


def shielded(kind: str, has_gpu: bool) -> dict[str, bool] | None:
    """Shielded VM settings, or None (GCP defaults) for an image we know nothing about."""
    if kind == "custom":
        return None
    return {"enable_secure_boot": not has_gpu, "enable_vtpm": True, "enable_integrity_monitoring": True}


def scheduling(spot: bool, has_gpu: bool, termination_action: str) -> dict[str, Any]:
    if spot:
        return {
            "provisioning_model": "SPOT",
            "preemptible": True,
            "automatic_restart": False,
            "on_host_maintenance": "TERMINATE",
            "instance_termination_action": termination_action,
        }
    return {
        "provisioning_model": "STANDARD",
        "preemptible": False,
        "automatic_restart": True,
        # GPU VMs cannot live-migrate: GCP refuses MIGRATE for them.
        "on_host_maintenance": "TERMINATE" if has_gpu else "MIGRATE",
    }


def boot_disk_type(machine_type: str, override: str | None) -> str:
    if override:
        return override
    return "hyperdisk-balanced" if machine_type.startswith(_HYPERDISK_ONLY) else "pd-balanced"


def gce_name(*parts: str, limit: int = 63) -> str:
    """A GCE resource name ([a-z]([-a-z0-9]*[a-z0-9])?, <= limit): too long -> cut + short hash."""
    raw = "-".join(parts).lower()
    name = re.sub(r"[^a-z0-9-]", "-", raw).strip("-")
    if not name or not name[0].isalpha():
        name = "s-" + name
    if len(name) <= limit:
        return name
    h = hashlib.sha256(raw.encode()).hexdigest()[:6]
    return name[: limit - 7].rstrip("-") + "-" + h


def label_value(v: str) -> str:
    """GCP label values: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", v.lower())[:63]


def service_account_id(cluster: str) -> str:
    """6-30 characters, [a-z][-a-z0-9]*[a-z0-9]."""
    return gce_name("styx", cluster, limit=30)


def ssh_user(cfg: ClusterConfig) -> str:
    """`styx` unless ssh.user was given (root is refused by check())."""
    return cfg.ssh.user if "user" in cfg.ssh.model_fields_set else DEFAULT_USER


def split_families(cidrs: list[str]) -> tuple[list[str], list[str]]:
    v4 = [c for c in cidrs if ipaddress.ip_network(c, strict=False).version == 4]
    return v4, [c for c in cidrs if c not in v4]


def _get(obj: Any, key: str) -> Any:
    """Attribute or mapping access (real outputs are objects; mocked ones may be dicts)."""
    if obj is None:
        return None
    if type(obj) is dict:  # output types subclass dict but are read through their properties
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
        return obj.get(key, obj.get(camel))
    return getattr(obj, key, None)


def _first(seq: Any) -> Any:
    return seq[0] if seq else None


def private_ip_of(nics: Any) -> str | None:
    return _get(_first(nics), "network_ip")


def external_ip_of(nics: Any) -> str | None:
    return _get(_first(_get(_first(nics), "access_configs")), "nat_ip")


# --------------------------------------------------------------------------- backend


class GcpBackend(Backend):
    name = "gcp"
    key_generator = "tls"
    features = (Feature.REGIONS | Feature.ZONES | Feature.SPOT | Feature.CATALOG | Feature.STOP | Feature.AUTOSTOP
                | Feature.IMAGES)
    power_in_program = True  # each Instance's desired_status: RUNNING, or TERMINATED (stopped) by `styx stop`
    # setup.autostop: a VM shut down from inside is TERMINATED (GCE's word for stopped), its disks kept
    autostop_poweroff = True
    # setup.python.wheel_cache auto: the head serves the wheels on its internal address (port 18951), which only
    # the internal rule (tagged nodes) lets in, as the Ray ports
    wheel_cache_on_head = True
    config_section = "gcp"
    capacity_patterns = (
        r"ZONE_RESOURCE_POOL_EXHAUSTED(?:_WITH_DETAILS)?",
        r"QUOTA_EXCEEDED",
        r"Quota '[^']+' exceeded",
        r"does not have enough resources available",
        r"STOCKOUT",
    )

    def config_problems(self, cfg: ClusterConfig, catalog: Any = None) -> list[str]:
        return (super().config_problems(cfg, catalog) + cloud_net_problems(cfg, "gcp") + self._rules(cfg)
                + first_boot.size_problems(cfg, gzipped=False, limit=first_boot.GCP_METADATA_VALUE_LIMIT))

    def config_warnings(self, cfg: ClusterConfig) -> list[str]:
        return cloud_net_warnings(cfg, "gcp")

    def can_stop(self, cluster: Any, node: str) -> str | None:
        """A spot VM can be stopped (and started) when its preemption stops it too
        (`gcp.spot_termination_action: STOP`); with DELETE it is refused like any spot node."""
        action = (cluster.get("gcp") or {}).get("spot_termination_action") or "DELETE"
        if super().can_stop(cluster, node) and action != "STOP":
            return ("spot VMs with gcp.spot_termination_action: DELETE cannot be stopped "
                    "(allowed: STOP keeps a stopped spot VM's disk)")
        return None

    def machine_stopped(self, outputs: Any) -> bool | None:
        """A refreshed gcp.compute.Instance: its `currentStatus` (TERMINATED: stopped, disks kept)."""
        status = outputs.get("currentStatus")
        return None if status is None else status in ("STOPPING", "TERMINATED")

    # ---- instance_type: auto
    def resolve_auto(self, cfg: ClusterConfig, spec: NodeSpec) -> str:
        """This run's optimizer plan for an `auto` group (plain: decides the GPU layout).

        The instance itself uses the choice recorded on first `up` (styx.components.placement), which
        must have the same GPU layout; see machine().
        """
        from styx.components import placement
        from styx.model.config import ConfigError

        group = "head" if spec is cfg.head else getattr(spec, "name", "head")
        try:
            choice = placement.plan(cfg)
        except ConfigError as e:
            raise AutoNotWired(str(e).split(": ", 1)[-1]) from None
        return next(n["instance_type"] for n in (choice or {"nodes": []})["nodes"] if n["group"] == group)

    def machine_type(self, cfg: ClusterConfig, spec: NodeSpec) -> str:
        it = spec.instance_type or ""
        return self.resolve_auto(cfg, spec) if it == "auto" else it

    # ---- config rules (pure: `config_problems`)
    def _rules(self, cfg: ClusterConfig) -> list[str]:
        p: list[str] = []
        if "user" in cfg.ssh.model_fields_set and cfg.ssh.user == "root":
            p.append(
                f"{K}.ssh.user: 'root' is not allowed: root cannot log in over SSH on GCP images; leave ssh.user "
                f"unset (styx uses {DEFAULT_USER!r}, with passwordless sudo) or name another user"
            )
        if cfg.ssh.port != 22:
            p.append(f"{K}.ssh.port: {cfg.ssh.port} is not allowed: GCP images run sshd on 22 and the firewall "
                     "opens only tcp:22 (allowed: 22; or leave it unset)")
        if cfg.gcp.os_login and not (cfg.ssh.private_key or cfg.ssh.private_key_file):
            p.append(
                f"{K}.gcp.os_login: with OS Login, instance ssh-keys metadata is ignored; set ssh.private_key "
                "(or private_key_file) to a key registered with `gcloud compute os-login ssh-keys add` and "
                "ssh.user to your OS Login POSIX user name"
            )
        specs = self._specs(cfg)
        missing_zone = [where for where, spec in specs if not (spec.zone or cfg.zone)]
        if missing_zone:
            p.append(
                f"{K}.zone: required for cloud gcp (instances are zonal), e.g. "
                f"{(cfg.region or 'us-central1')}-a; or set zone on {', '.join(missing_zone)}"
            )
        for where, spec in specs:
            zone = spec.zone or cfg.zone
            if zone and cfg.region and not zone.startswith(cfg.region + "-"):
                key = f"{K}.{where}.zone" if spec.zone else f"{K}.zone"
                p.append(f"{key}: {zone!r} is not in region {cfg.region!r} (allowed: {cfg.region}-a, "
                         f"{cfg.region}-b, ...)")
            if not spec.instance_type or spec.instance_type == "auto":
                continue  # a missing type: Feature.CATALOG's rule; auto: check() (the optimizer's plan)
            _plan, problem = gpu_plan(spec.instance_type, spec)
            if problem:
                p.append(f"{K}.{where}.resources.accelerators: {problem}")
        return p

    @staticmethod
    def _specs(cfg: ClusterConfig) -> list[tuple[str, NodeSpec]]:
        specs: list[tuple[str, NodeSpec]] = [("head", cfg.head)]
        return specs + [(f"workers[{i}]", g) for i, g in enumerate(cfg.workers) if (g.count or 0) > 0]

    # ---- check (the optimizer's plan for `instance_type: auto`, before anything is created)
    def check(self, cfg: ClusterConfig) -> list[str]:
        p: list[str] = []
        for where, spec in self._specs(cfg):
            if spec.instance_type != "auto":
                continue
            try:
                mt = self.machine_type(cfg, spec)
            except AutoNotWired as e:
                p.append(f"{K}.{where}.instance_type: {e}")
                continue
            _plan, problem = gpu_plan(mt, spec)
            if problem:
                p.append(f"{K}.{where}.resources.accelerators: {problem}")
        return p

    # ---- shared resources
    def prepare(self, ctx: ProvisionContext) -> None:
        import pulumi_gcp as gcp

        cfg, g = ctx.cfg, ctx.cfg.gcp
        name = cfg.name
        project = g.project
        tag = gce_name("styx", name)
        named = pulumi.ResourceOptions(parent=ctx.cluster, delete_before_replace=True)

        if g.network:
            network: pulumi.Input[str] = g.network
            subnetwork: pulumi.Input[str] | None = g.subnetwork
            network_name: pulumi.Input[str] = g.network.rsplit("/", 1)[-1]
            subnet_name: pulumi.Input[str] | None = g.subnetwork.rsplit("/", 1)[-1] if g.subnetwork else None
        else:
            net = gcp.compute.Network(
                f"{name}-net",
                name=gce_name(name, "net"),
                auto_create_subnetworks=False,
                description=f"styx cluster {name}",
                project=project,
                opts=named,
            )
            sub = gcp.compute.Subnetwork(
                f"{name}-subnet",
                name=gce_name(name, "subnet"),
                network=net.id,
                region=cfg.region,
                ip_cidr_range=g.subnet_cidr,
                private_ip_google_access=True,
                project=project,
                opts=named,
            )
            network, subnetwork = net.self_link, sub.self_link
            network_name, subnet_name = net.name, sub.name

        fw = gcp.compute.Firewall
        allow = gcp.compute.FirewallAllowArgs
        rules: dict[str, Any] = {}
        v4, v6 = split_families(g.ssh_cidrs)  # a GCP rule holds one IP family
        for suffix, cidrs in (("ssh", v4), ("ssh-v6", v6)):
            if cidrs:
                rules[suffix] = fw(
                    f"{name}-allow-{suffix}",
                    name=gce_name(name, "allow", suffix),
                    network=network,
                    direction="INGRESS",
                    priority=900,
                    allows=[allow(protocol="tcp", ports=["22"])],
                    source_ranges=list(cidrs),
                    target_tags=[tag],
                    description=f"styx {name}: SSH from ssh_cidrs only",
                    project=project,
                    opts=named,
                )
        # Every port between cluster nodes (Ray GCS 6379, dashboard 8265, client 10001, workers' ranges,
        # NCCL...), and only between nodes carrying the cluster tag.
        rules["internal"] = fw(
            f"{name}-allow-internal",
            name=gce_name(name, "allow", "internal"),
            network=network,
            direction="INGRESS",
            priority=900,
            allows=[allow(protocol="all")],
            source_tags=[tag],
            target_tags=[tag],
            description=f"styx {name}: all traffic between cluster nodes",
            project=project,
            opts=named,
        )
        # Below the allows, above any broad allow an existing network may have (default-allow-ssh is
        # 0.0.0.0/0 at 65534): whatever is not allowed above never reaches a node from outside.
        rules["deny"] = fw(
            f"{name}-deny-ingress",
            name=gce_name(name, "deny", "ingress"),
            network=network,
            direction="INGRESS",
            priority=1000,
            denies=[gcp.compute.FirewallDenyArgs(protocol="all")],
            source_ranges=["0.0.0.0/0"],
            target_tags=[tag],
            description=f"styx {name}: nothing else from outside the cluster",
            project=project,
            opts=named,
        )

        sa = gcp.serviceaccount.Account(
            f"{name}-sa",
            account_id=service_account_id(name),
            display_name=f"styx cluster {name}",
            description="Runs the cluster's VMs; no project roles are granted by styx.",
            project=project,
            opts=named,
        )
        ctx.shared.update(
            network=network,
            subnetwork=subnetwork,
            network_name=network_name,
            subnet_name=subnet_name,
            tag=tag,
            firewall=rules,
            service_account=sa,
            project=project or pulumi.Config("gcp").get("project") or sa.project,
        )

    # ---- one VM
    @staticmethod
    def _recorded_type(ctx: ProvisionContext, node: NodeRequest, planned: str) -> pulumi.Input[str]:
        """For `auto`, the machine type recorded on first `up`; it must keep this plan's GPU layout."""
        if node.spec.instance_type != "auto":
            return planned

        def same_layout(recorded: str) -> str:
            if builtin_gpus(recorded) != builtin_gpus(planned):
                raise ValueError(
                    f"{K}: {node.name}: the recorded choice {recorded} and today's plan {planned} differ in GPU "
                    f"layout; re-optimise explicitly: pulumi up --replace <urn of {ctx.cfg.name}-placement>")
            return recorded

        return pulumi.Output.from_input(ctx.instance_type(node)).apply(same_layout)

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        import pulumi_gcp as gcp

        cfg, g, spec = ctx.cfg, ctx.cfg.gcp, node.spec
        c = gcp.compute
        mt = self.machine_type(cfg, spec)
        plan, problem = gpu_plan(mt, spec)
        if problem:  # check() reports these before anything is registered
            raise ValueError(f"{K}: {node.name}: {problem}")
        zone = spec.zone or cfg.zone
        if not zone:
            raise ValueError(f"{K}.zone: required for cloud gcp")
        image, kind = resolve_image(spec.image or g.image, mt, plan.has_gpu)
        user = ssh_user(cfg)
        sa = ctx.shared["service_account"]
        sched = scheduling(spec.spot, plan.has_gpu, g.spot_termination_action)
        shield = shielded(kind, plan.has_gpu)

        private = ctx.private(node)  # ssh.jump: no external IP, dialed through the jump host
        address = None
        if self.static_address(ctx, node):
            # gcp.static_ip: a reserved EXTERNAL address in the cluster's region, the VM's NAT IP: a started VM
            # keeps it, so no phase's connection changes. The instance depends on it: deletes (dependents first)
            # run the phases' undos, then the VM goes, then the address is released.
            address = c.Address(
                f"{cfg.name}-{node.name}-ip",
                name=gce_name(cfg.name, node.name, "ip"),
                address_type="EXTERNAL",
                region=cfg.region,
                project=g.project,
                description=f"styx cluster {cfg.name}: the external address of {node.name}",
                labels={"styx-cluster": label_value(cfg.name), "styx-node": label_value(node.name),
                        "managed-by": "styx"},
                opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
            )
            ctx.shared.setdefault("static_addresses", {})[node.name] = address
        nic = c.InstanceNetworkInterfaceArgs(
            network=ctx.shared["network"],
            subnetwork=ctx.shared["subnetwork"],
            # One external IP (static, or ephemeral): where the machine running Pulumi connects (SSH only, see
            # firewall).
            access_configs=[] if private else [c.InstanceNetworkInterfaceAccessConfigArgs(
                nat_ip=address.address if address is not None else None)],
        )
        hk = ctx.host_key(node, parent)  # installed by cloud-init at first boot, pinned on every connection
        # the host key, then the first-boot work (setup.first_boot); a later change is a metadata update in place
        user_data, _ = first_boot.user_data(cfg, node, hk, gzipped=False, limit=first_boot.GCP_METADATA_VALUE_LIMIT)
        metadata = {
            "user-data": user_data,
            "ssh-keys": pulumi.Output.from_input(ctx.key.public_key).apply(lambda k: f"{user}:{k.strip()}"),
            "enable-oslogin": "TRUE" if g.os_login else "FALSE",
            "block-project-ssh-keys": "TRUE",  # only the cluster key, not every project-wide key
        }
        instance = c.Instance(
            f"{cfg.name}-{node.name}",
            name=gce_name(cfg.name, node.name),
            machine_type=self._recorded_type(ctx, node, mt),
            zone=zone,
            project=g.project,
            boot_disk=c.InstanceBootDiskArgs(
                auto_delete=True,
                initialize_params=c.InstanceBootDiskInitializeParamsArgs(
                    image=image, size=spec.disk_size_gb, type=boot_disk_type(mt, g.disk_type),
                ),
            ),
            network_interfaces=[nic],
            guest_accelerators=(
                [c.InstanceGuestAcceleratorArgs(type=plan.guest_type, count=plan.count)] if plan.guest_type else None
            ),
            scheduling=c.InstanceSchedulingArgs(**sched),
            shielded_instance_config=c.InstanceShieldedInstanceConfigArgs(**shield) if shield else None,
            service_account=c.InstanceServiceAccountArgs(email=sa.email, scopes=list(g.scopes)),
            metadata=metadata,
            tags=[ctx.shared["tag"]],
            labels={
                "styx-cluster": label_value(cfg.name),
                "styx-node": label_value(node.name),
                "styx-role": label_value(node.role),
                "managed-by": "styx",
            },
            allow_stopping_for_update=True,
            # `styx stop`/`start` (ProvisionContext.stopped, from the stack's styx:power record): an update in
            # place (not in replace_on_changes, not in the identity, no phase trigger): nothing re-runs
            desired_status="TERMINATED" if node.name in ctx.stopped else "RUNNING",
            deletion_protection=False,
            opts=pulumi.ResourceOptions(
                parent=parent,
                # Fixed name: the old VM goes first, so a replacement never needs twice the GPU quota.
                delete_before_replace=True,
                replace_on_changes=["machineType", "guestAccelerators", "scheduling", "bootDisk"],
                depends_on=list(ctx.shared["firewall"].values()),
            ),
        )
        private_ip = instance.network_interfaces.apply(private_ip_of)
        host: pulumi.Input[str] = private_ip if private else (
            address.address if address is not None else instance.network_interfaces.apply(external_ip_of))
        transport = ctx.ssh_transport(host, 22, user, hk, private=private)
        # instance_id is GCP's numeric id: new for every created VM (the self link is not, the name is fixed).
        identity = pulumi.Output.all(instance.self_link, instance.instance_id).apply(
            lambda v: f"{v[0]}#{v[1]}"
        )
        return NodeHandle(
            name=node.name,
            role=node.role,
            host=host,
            private_ip=private_ip,
            user=user,
            port=22,
            transport=transport,
            identity=identity,
            # Every phase on this node depends on the instance (the gate depends on it, each later
            # phase on the one before): destroy deletes the phases while the VM still exists, and a
            # replaced VM replaces them.
            resources=[instance, *([address] if address is not None else [])],
            info={
                "zone": zone,
                "instance_type": mt,
                "accelerators": plan.label,
                "spot": spec.spot,
                "image": image,
            },
            host_key=hk,
            private=private,
        )

    def outputs(self, ctx: ProvisionContext, head: NodeHandle) -> dict[str, Any]:
        out: dict[str, Any] = {
            "project": ctx.shared["project"],
            "region": ctx.cfg.region,
            "network": ctx.shared["network_name"],
            "service_account": ctx.shared["service_account"].email,
        }
        if ctx.shared["subnet_name"] is not None:
            out["subnetwork"] = ctx.shared["subnet_name"]
        if ctx.shared.get("static_addresses"):
            out["static_addresses"] = pulumi.Output.all(
                **{n: a.address for n, a in ctx.shared["static_addresses"].items()})
        return out

    # ------------------------------------------------------------------ images

    def image_source(self, cluster: Mapping[str, Any], node: str,
                     resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The node's boot disk (its self link, zone and project, from the cluster's state)."""
        name = str(cluster.get("name"))
        out = machine_state(resources, "gcp:compute/instance:Instance", f"{name}-{node}").get("outputs") or {}
        disk = (out.get("bootDisk") or {}).get("source")
        if not disk:
            raise LookupError(f"instance {name}-{node} has no boot disk in the stack's state")
        return {"disk": disk, "zone": out.get("zone"), "project": out.get("project"), "cluster": name, "node": node}

    def image(self, name: str, source: Mapping[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Input[str]:
        """A snapshot of the node's boot disk (taken while the VM runs, as GCE allows), then a
        `gcp.compute.Image` of it; the image's self link is what a node's `image` takes."""
        import pulumi_gcp as gcp

        labels = {"styx-image": label_value(name), "styx-cluster": label_value(str(source["cluster"])),
                  "styx-node": label_value(str(source["node"])), "managed-by": "styx"}
        snap = gcp.compute.Snapshot(
            f"image-{name}-snapshot",
            name=gce_name("styx", name, "snap"),
            source_disk=source["disk"],
            zone=source.get("zone"),
            project=source.get("project"),
            labels=labels,
            opts=opts,
        )
        img = gcp.compute.Image(
            f"image-{name}",
            name=gce_name("styx", name),
            description=f"styx image {name}: node {source['node']} of cluster {source['cluster']}",
            source_snapshot=snap.self_link,
            project=source.get("project"),
            labels=labels,
            opts=opts,
        )
        return img.self_link
