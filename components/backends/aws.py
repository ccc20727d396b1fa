"""`cloud: aws`: EC2 instances in a VPC, reached over SSH at their public IP (an Elastic IP where it can stop).

Shared resources (`prepare`): an explicit AWS provider for `region`, the network (an existing
VPC/subnet, or a VPC with a public subnet per zone, an internet gateway and a route table), one
security group, an EC2 key pair from the cluster key and, for multi-node GPU clusters, a cluster
placement group. Per node (`machine`): one `aws.ec2.Instance` and, for an on-demand node, its
`InstanceState` (`running`, or `stopped` while `styx stop` has it stopped) and, when styx dials it on its
public address (not private) and `aws.static_ip` is on, its Elastic IP (`aws.ec2.Eip`): the address styx dials,
the same after a start.

Security invariants (tested in tests/components/backends/test_aws*.py and enforced again by the
policy pack in policy/):
- ingress from a CIDR is only ever TCP 22, only from `aws.ssh_cidrs` (no default: an empty list is
  a config error). A user who lists 0.0.0.0/0 opens port 22 to it and nothing else;
- nodes reach each other on every port through a self-referencing rule; the Ray ports (GCS 6379,
  dashboard 8265, client 10001, worker ports) and the head's wheel cache (18951,
  `setup.python.wheel_cache: auto`) are therefore open inside the cluster only. The
  dashboard is reached through the SSH tunnel in the `dashboard` output;
- every instance requires IMDSv2 and has an encrypted root volume deleted with it;
- the private key is only ever a secret (the key pair only receives the public half).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi_command import local

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
    node_specs,
)
from styx.components.first_boot import gzip_user_data
from styx.model.catalog import gpus
from styx.model.config import CONFIG_KEY, ClusterConfig, NodeSpec

STATE_TYPE = "aws:ec2transitgateway/instanceState:InstanceState"
INSTANCE_TYPE = "aws:ec2/instance:Instance"  # a node's machine in a stack's state (image_source)
SSH_PORT = 22  # sshd on the AWS images listens here; ssh_cidrs only ever reach this port
CANONICAL_OWNER = "099720109477"
IMAGE_ALIASES = ("ubuntu-22.04", "ubuntu-24.04", "gpu")
_AMI_RE = re.compile(r"^ami-[0-9a-f]+$")
_DEFAULT_ZONE = "default"  # subnet key for nodes with no zone: the region's first available zone

# (alias, arch) -> (owner, name pattern). Canonical's SSD images; the Deep Learning Base GPU AMI
# ships an NVIDIA driver + CUDA that the gpu phase detects and keeps.
_IMAGES: dict[tuple[str, str], tuple[str, str]] = {
    ("ubuntu-22.04", "x86_64"): (CANONICAL_OWNER, "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"),
    ("ubuntu-22.04", "arm64"): (CANONICAL_OWNER, "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-*"),
    ("ubuntu-24.04", "x86_64"): (CANONICAL_OWNER, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"),
    ("ubuntu-24.04", "arm64"): (CANONICAL_OWNER, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"),
    ("gpu", "x86_64"): ("amazon", "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"),
    ("gpu", "arm64"): ("amazon", "Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"),
}


def arch_of(instance_type: str) -> str:
    """CPU architecture of an EC2 instance type: Graviton families (m7g, c6gn, g5g, t4g, a1) are arm64."""
    family = instance_type.split(".", 1)[0].lower()
    return "arm64" if family == "a1" or re.match(r"^[a-z]+[0-9]+g", family) else "x86_64"


def ami_lookup(alias: str, arch: str) -> tuple[str, str]:
    """(owner, name pattern) for a looked-up image."""
    return _IMAGES[(alias, arch)]


def zone_block(zone: str) -> int:
    """Index of a zone's subnet inside the VPC range: 0 for the default zone, 1 + letter for a named one.

    Stable: adding a node in another zone never moves an existing subnet.
    """
    if zone == _DEFAULT_ZONE:
        return 0
    return 1 + ord(zone[-1].lower()) - ord("a")


def subnet_cidr(vpc_cidr: str, zone: str) -> str:
    net = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(net.subnets(prefixlen_diff=4))
    return str(blocks[zone_block(zone)])


def cidr_slug(cidr: str) -> str:
    """A resource-name-safe form of a CIDR: 203.0.113.0/24 -> 203-0-113-0-24."""
    return re.sub(r"[^0-9a-zA-Z]+", "-", cidr).strip("-").lower() or "all"


def normalized_cidrs(cidrs: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out: list[Any] = []
    for c in cidrs:
        net = ipaddress.ip_network(c, strict=False)
        if net not in out:
            out.append(net)
    return out


def ssh_user(cfg: ClusterConfig) -> str:
    """`ubuntu` on the Ubuntu and Deep Learning images, unless ssh.user is set explicitly (custom AMI)."""
    return cfg.ssh.user if "user" in cfg.ssh.model_fields_set else "ubuntu"


def image_of(cfg: ClusterConfig, spec: NodeSpec) -> str:
    """The node's image: spec.image (AMI id or alias) > aws.ami > aws.image."""
    return spec.image or cfg.aws.ami or cfg.aws.image


def zone_of(cfg: ClusterConfig, spec: NodeSpec) -> str | None:
    return spec.zone or cfg.zone


def _where(cfg: ClusterConfig, group: str) -> str:
    if group == "head":
        return "head"
    return f"workers[{[g.name for g in cfg.workers].index(group)}]"


def _specs(cfg: ClusterConfig) -> list[tuple[str, str, NodeSpec]]:
    """(group, key path, spec) for the head and each worker group."""
    return [("head", "head", cfg.head)] + [(g.name, f"workers[{i}]", g) for i, g in enumerate(cfg.workers)]


@dataclass
class _Shared:
    provider: aws.Provider
    vpc_id: pulumi.Input[str]
    security_group: aws.ec2.SecurityGroup
    key_pair: aws.ec2.KeyPair
    subnets: dict[str, pulumi.Input[str]]  # zone key -> subnet id
    ready: list[pulumi.Resource]  # what must exist before an instance (and outlive its phases)
    placement_group: aws.ec2.PlacementGroup | None
    amis: dict[tuple[str, str], pulumi.Output[str]]
    instances: dict[str, aws.ec2.Instance]
    static_ips: dict[str, aws.ec2.Eip] = field(default_factory=dict)  # aws.static_ip: node -> its Elastic IP


class AwsBackend(Backend):
    name = "aws"
    key_generator = "tls"  # pulumi_tls.PrivateKey: no local ssh-keygen needed; the key is a secret
    features = (Feature.REGIONS | Feature.ZONES | Feature.SPOT | Feature.CATALOG | Feature.STOP | Feature.AUTOSTOP
                | Feature.IMAGES)
    power_in_program = True  # an InstanceState per on-demand node: running, or stopped by `styx stop`
    # setup.autostop: an on-demand instance shut down from inside stops (instance_initiated_shutdown_behavior)
    autostop_poweroff = True
    # setup.python.wheel_cache auto: the head serves the wheels on its private address (port 18951), which the
    # security group's self rule opens to the cluster's nodes only, as the Ray ports
    wheel_cache_on_head = True
    config_section = "aws"
    capacity_patterns = (
        r"InsufficientCapacity",
        r"InsufficientInstanceCapacity",
        r"InsufficientHostCapacity",
        r"InsufficientReservedInstanceCapacity",
        r"InstanceLimitExceeded",
        r"VcpuLimitExceeded",
        r"MaxSpotInstanceCountExceeded",
        r"SpotMaxPriceTooLow",
        r"Unsupported: .*availability zone",
    )

    def config_problems(self, cfg: ClusterConfig, catalog: Any = None) -> list[str]:
        p = super().config_problems(cfg, catalog) + cloud_net_problems(cfg, "aws") + self._rules(cfg)
        p += first_boot.size_problems(cfg, gzipped=True, limit=first_boot.AWS_USER_DATA_LIMIT)
        if catalog is not None and self.name in catalog.clouds:
            for where, spec in node_specs(cfg):  # GPUs asked of a type the catalog sells without any
                acc = spec.resources.accelerator() if spec.resources else None
                offers = catalog.offers_of_type(self.name, spec.instance_type or "")
                if acc is not None and offers and all(o.accelerator is None for o in offers):
                    p.append(f"{CONFIG_KEY}.{where}.resources.accelerators: {spec.resources.accelerators!r} "
                             f"does not match {spec.instance_type}, which has no GPUs (allowed: no accelerators, "
                             "or a GPU type: p4d/p5/g5/g6/...)")
        return p

    def config_warnings(self, cfg: ClusterConfig) -> list[str]:
        return cloud_net_warnings(cfg, "aws")

    def placement_request(self, request: Any) -> Any:
        """Catalogs name AWS zones by id (use1-az4), configs by name (us-east-1a): place by region and
        keep the configured zone for the subnet."""
        import dataclasses

        return dataclasses.replace(request, zones=()) if request.zones else request

    def machine_stopped(self, outputs: Any) -> bool | None:
        """A refreshed aws.ec2.Instance: its `instanceState`."""
        state = outputs.get("instanceState")
        return None if state is None else state in ("stopping", "stopped")

    def power_urns(self, cluster: Any, node: str, machine_urn: str) -> list[str]:
        """The node's InstanceState (a sibling of its instance, see `machine`)."""
        head, name = machine_urn.rsplit("::", 1)
        base, chain = head.rsplit("::", 1)  # chain: the parents' types, then the instance's, joined by $
        types = [*chain.split("$")[:-1], STATE_TYPE]
        return [f"{base}::{'$'.join(types)}::{name}-power"]

    # ------------------------------------------------------------------ instance type

    def resolved_type(self, node: NodeRequest, cfg: ClusterConfig) -> str:
        """The EC2 instance type for a node.

        Hook for `instance_type: auto`: the optimizer (styx.model.optimizer.resolve) turns the node's
        `resources` into a concrete type; until it is wired in here, auto is a clear error.
        """
        t = node.spec.instance_type
        if t == "auto":  # resolved by the optimizer and recorded (styx.components.placement); see machine()
            return "auto"
        if not t:
            raise ValueError(f"{CONFIG_KEY}.{_where(cfg, node.group)}.instance_type: required for cloud aws")
        return t

    # ------------------------------------------------------------------ config rules

    def _rules(self, cfg: ClusterConfig) -> list[str]:
        """AWS's own rules (pure; `config_problems`): type spelling, GPUs vs type, images, zones, ssh port."""
        k = CONFIG_KEY
        p: list[str] = []
        for group, where, spec in _specs(cfg):
            try:
                t = self.resolved_type(NodeRequest(group, "head" if group == "head" else "worker", spec, group, 0), cfg)
            except ValueError as e:
                p.append(str(e))
                t = None
            if t is not None and t != "auto" and not re.match(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", t):
                p.append(f"{k}.{where}.instance_type: {t!r} is not an EC2 instance type (allowed: family.size, "
                         "like m6i.large or p4d.24xlarge)")
            res = spec.resources
            acc = res.accelerator() if res else None
            have = gpus.aws_gpus(t) if t and t != "auto" and acc is not None else None
            if res and acc is not None and have is not None and not have.matches(acc.name, acc.count):
                p.append(f"{k}.{where}.resources.accelerators: {res.accelerators!r} does not match {t}, "
                         f"which has {have.label} (allowed: {have.label})")
            if spec.image and spec.image not in IMAGE_ALIASES and not _AMI_RE.match(spec.image):
                p.append(f"{k}.{where}.image: {spec.image!r} is not an AMI id (ami-...) or one of "
                         f"{', '.join(IMAGE_ALIASES)}")
            z = spec.zone
            if z and cfg.region and not z.startswith(cfg.region):
                p.append(f"{k}.{where}.zone: {z!r} is not in region {cfg.region!r} (allowed: {cfg.region}a, "
                         f"{cfg.region}b, ...)")
        if cfg.zone and cfg.region and not cfg.zone.startswith(cfg.region):
            p.append(f"{k}.zone: {cfg.zone!r} is not in region {cfg.region!r} (allowed: {cfg.region}a, "
                     f"{cfg.region}b, ...)")
        if "port" in cfg.ssh.model_fields_set and cfg.ssh.port != SSH_PORT:
            p.append(f"{k}.ssh.port: {cfg.ssh.port} is not allowed: AWS images run sshd on {SSH_PORT} "
                     f"(allowed: {SSH_PORT}; or remove ssh.port)")

        zones = {zone_of(cfg, spec) for _, _, spec in _specs(cfg)}
        if cfg.aws.subnet_id and len({z for z in zones if z}) > 1:
            p.append(f"{k}.aws.subnet_id: a subnet lives in one zone but nodes ask for {sorted(z for z in zones if z)}")
        if not cfg.aws.vpc_id:
            seen: dict[int, str] = {}
            for z in sorted(z for z in zones if z):
                if not z[-1].isalpha() or zone_block(z) > 15:
                    p.append(f"{k}.zone: {z!r}: styx gives a created VPC one subnet per zone letter a-o")
                elif zone_block(z) in seen:
                    p.append(f"{k}.zone: {z!r} and {seen[zone_block(z)]!r} share a zone letter; "
                             "use aws.vpc_id/subnet_id for this layout")
                else:
                    seen[zone_block(z)] = z
        if cfg.aws.placement_group and cfg.workers:
            worker_zones = {zone_of(cfg, g) or _DEFAULT_ZONE for g in cfg.workers}
            if len(worker_zones) > 1:
                p.append(f"{k}.aws.placement_group: a cluster placement group lives in one zone but the worker "
                         f"groups use {sorted(worker_zones)}")
        return p

    # ------------------------------------------------------------------ shared resources

    def prepare(self, ctx: ProvisionContext) -> None:
        cfg = ctx.cfg
        name = cfg.name
        provider = aws.Provider(f"{name}-aws", region=cfg.region, opts=ctx.opts)
        opts = pulumi.ResourceOptions(parent=ctx.cluster, provider=provider)
        ready: list[pulumi.Resource] = []

        zones: list[str] = []
        for _, _, spec in _specs(cfg):
            z = zone_of(cfg, spec) or _DEFAULT_ZONE
            if z not in zones:
                zones.append(z)

        subnets: dict[str, pulumi.Input[str]] = {}
        if cfg.aws.vpc_id:
            vpc_id: pulumi.Input[str] = cfg.aws.vpc_id
            for z in zones:
                if cfg.aws.subnet_id:
                    subnets[z] = cfg.aws.subnet_id
                    continue
                # An existing VPC without a named subnet: its first subnet in the node's zone.
                filters = [aws.ec2.GetSubnetsFilterArgs(name="vpc-id", values=[cfg.aws.vpc_id])]
                if z != _DEFAULT_ZONE:
                    filters.append(aws.ec2.GetSubnetsFilterArgs(name="availability-zone", values=[z]))
                found = aws.ec2.get_subnets_output(
                    filters=filters, opts=pulumi.InvokeOutputOptions(parent=ctx.cluster, provider=provider)
                )
                subnets[z] = found.ids.apply(lambda ids, z=z: _first_subnet(ids, cfg.aws.vpc_id, z))
        else:
            vpc = aws.ec2.Vpc(
                f"{name}-vpc", cidr_block=cfg.aws.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                tags=_tags(cfg, f"{name}-vpc"), opts=opts,
            )
            vpc_id = vpc.id
            igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=_tags(cfg, f"{name}-igw"), opts=opts)
            rt = aws.ec2.RouteTable(
                f"{name}-rt", vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
                tags=_tags(cfg, f"{name}-rt"), opts=opts,
            )
            default_az = None
            if _DEFAULT_ZONE in zones:
                azs = aws.get_availability_zones_output(
                    state="available",
                    filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
                    opts=pulumi.InvokeOutputOptions(parent=ctx.cluster, provider=provider),
                )
                default_az = azs.names.apply(lambda names: sorted(names)[0])
            for z in zones:
                subnet = aws.ec2.Subnet(
                    f"{name}-subnet-{z}",
                    vpc_id=vpc.id,
                    cidr_block=subnet_cidr(cfg.aws.vpc_cidr, z),
                    availability_zone=default_az if z == _DEFAULT_ZONE else z,
                    map_public_ip_on_launch=True,
                    tags=_tags(cfg, f"{name}-subnet-{z}"),
                    # the default zone is looked up once; a later lookup never moves the subnet
                    opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                        ignore_changes=["availabilityZone"] if z == _DEFAULT_ZONE else None)),
                )
                assoc = aws.ec2.RouteTableAssociation(
                    f"{name}-rta-{z}", subnet_id=subnet.id, route_table_id=rt.id, opts=opts
                )
                subnets[z] = subnet.id
                ready.append(assoc)  # the route to the internet gateway outlives every phase's SSH delete

        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=vpc_id,
            description=f"styx cluster {name}: SSH from ssh_cidrs; all traffic between the cluster's nodes",
            revoke_rules_on_delete=True,
            tags=_tags(cfg, f"{name}-sg"),
            opts=opts,
        )
        # SSH only, from the listed CIDRs only. Nothing else is ever opened to a CIDR: the Ray ports
        # are reachable from the cluster's own nodes (the self rule below) and through SSH tunnels.
        for net in normalized_cidrs(cfg.aws.ssh_cidrs):
            v6 = net.version == 6
            ready.append(aws.vpc.SecurityGroupIngressRule(
                f"{name}-ssh-{cidr_slug(str(net))}",
                security_group_id=sg.id,
                ip_protocol="tcp",
                from_port=SSH_PORT,
                to_port=SSH_PORT,
                cidr_ipv4=None if v6 else str(net),
                cidr_ipv6=str(net) if v6 else None,
                description=f"SSH from {net} ({CONFIG_KEY}.aws.ssh_cidrs)",
                tags=_tags(cfg, f"{name}-ssh"),
                opts=opts,
            ))
        ready.append(aws.vpc.SecurityGroupIngressRule(
            f"{name}-intra",
            security_group_id=sg.id,
            ip_protocol="-1",
            referenced_security_group_id=sg.id,
            description="all traffic between the cluster's nodes (Ray, NCCL, ...)",
            tags=_tags(cfg, f"{name}-intra"),
            opts=opts,
        ))
        ready.append(aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress",
            security_group_id=sg.id,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="outbound (packages, images, datasets)",
            tags=_tags(cfg, f"{name}-egress"),
            opts=opts,
        ))

        key_pair = aws.ec2.KeyPair(f"{name}-key", public_key=ctx.key.public_key, tags=_tags(cfg, f"{name}-key"),
                                   opts=opts)

        pg = None
        if cfg.aws.placement_group and any((g.count or 0) > 0 for g in cfg.workers):
            pg = aws.ec2.PlacementGroup(f"{name}-pg", strategy="cluster", tags=_tags(cfg, f"{name}-pg"), opts=opts)

        ctx.shared["aws"] = _Shared(
            provider=provider, vpc_id=vpc_id, security_group=sg, key_pair=key_pair, subnets=subnets, ready=ready,
            placement_group=pg, amis={}, instances={},
        )

    def _ami(self, ctx: ProvisionContext, shared: _Shared, image: str, arch: str) -> pulumi.Input[str]:
        """The AMI id for an image (alias or explicit id) on an architecture.

        A looked-up image is pinned on first use: a `command.local.Command` (no command, just state)
        named after the alias and architecture records the id, ignoring later lookups. A new upstream
        release therefore never replaces running nodes, while switching `image` (a new pin) does.
        `pulumi up --target-replace <pin urn>` moves a cluster to the newest image on purpose.
        (`ignore_changes=["ami"]` on the instance would keep the old AMI even across a replacement.)
        """
        if _AMI_RE.match(image):
            return image
        key = (image, arch)
        if key not in shared.amis:
            owner, pattern = ami_lookup(image, arch)
            found = aws.ec2.get_ami_output(
                owners=[owner],
                most_recent=True,
                filters=[
                    aws.ec2.GetAmiFilterArgs(name="name", values=[pattern]),
                    aws.ec2.GetAmiFilterArgs(name="architecture", values=[arch]),
                    aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
                    aws.ec2.GetAmiFilterArgs(name="root-device-type", values=["ebs"]),
                ],
                opts=pulumi.InvokeOutputOptions(parent=ctx.cluster, provider=shared.provider),
            )
            pin = local.Command(
                f"{ctx.cfg.name}-ami-{image}-{arch}",
                environment={"STYX_AMI": found.id, "STYX_AMI_NAME": found.name.apply(lambda n: n or "")},
                opts=pulumi.ResourceOptions(parent=ctx.cluster, ignore_changes=["environment"]),
            )
            shared.amis[key] = pin.environment.apply(lambda env: (env or {})["STYX_AMI"])
        return shared.amis[key]

    # ------------------------------------------------------------------ one machine

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        cfg = ctx.cfg
        shared: _Shared = ctx.shared["aws"]
        spec = node.spec
        instance_type: pulumi.Input[str] = self.resolved_type(node, cfg)
        planned = instance_type
        if instance_type == "auto":  # the optimizer's choice, recorded once (styx.components.placement)
            instance_type = ctx.instance_type(node)
            planned = ctx.placements[node.group].planned_type
        zone = zone_of(cfg, spec)
        image = image_of(cfg, spec)
        ami = self._ami(ctx, shared, image, arch_of(str(planned)))

        market = None
        if spec.spot:
            market = aws.ec2.InstanceInstanceMarketOptionsArgs(
                market_type="spot",
                spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
                    spot_instance_type="one-time",
                    instance_interruption_behavior="terminate",
                    max_price=f"{cfg.aws.spot_max_price:g}" if cfg.aws.spot_max_price else None,
                ),
            )
        volume_type = cfg.aws.root_volume_type
        full_name = f"{cfg.name}-{node.name}"
        pg = shared.placement_group if node.role == "worker" else None
        hk = ctx.host_key(node, parent)  # installed by cloud-init at first boot, pinned on every connection
        private = ctx.private(node)
        user_data, boot = first_boot.user_data(cfg, node, hk, gzipped=True, limit=first_boot.AWS_USER_DATA_LIMIT)
        instance = aws.ec2.Instance(
            full_name,
            ami=ami,
            instance_type=instance_type,
            subnet_id=shared.subnets[zone or _DEFAULT_ZONE],
            availability_zone=zone,
            vpc_security_group_ids=[shared.security_group.id],
            key_name=shared.key_pair.key_name,
            # the host key, then the first-boot work (setup.first_boot): gzipped, as EC2 allows 16 KB
            user_data=None if boot else user_data,
            user_data_base64=user_data.apply(gzip_user_data) if boot else None,
            # a shutdown from inside (setup.autostop) stops an on-demand instance, keeping its disk; a spot
            # one is terminated (AWS's only choice for one-time spot: autostop refuses spot nodes)
            instance_initiated_shutdown_behavior=None if spec.spot else "stop",
            associate_public_ip_address=not private,  # ssh.jump: a private node gets no public address
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=spec.disk_size_gb,
                volume_type=volume_type,
                iops=3000 if volume_type == "io2" else None,
                encrypted=True,
                delete_on_termination=True,
                tags={"Name": full_name, "styx:cluster": cfg.name, "styx:node": node.name},
            ),
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",  # IMDSv2 only
                http_put_response_hop_limit=cfg.aws.imds_hop_limit,
            ),
            instance_market_options=market,
            placement_group=pg.name if pg is not None else None,
            tags={**_tags(cfg, full_name), "styx:node": node.name, "styx:role": node.role},
            opts=pulumi.ResourceOptions(
                parent=parent,
                provider=shared.provider,
                # The SSH rule, the route to the internet and the key exist before the instance, and
                # (deletes run in reverse dependency order) outlive it. Every phase depends on this
                # instance (NodeHandle.resources -> the gate's depends_on -> each phase's chain), so
                # on destroy or replacement the engine deletes a node's phases -- whose deletes SSH
                # in to undo their work -- while the instance and its network path still exist:
                # `pulumi destroy` never dials a terminated instance.
                depends_on=shared.ready,
                # The user data (host key, first-boot work) is read at first boot only: a later change (a config
                # edit, an instance made by an earlier styx) must not stop and start the instance (a spot one
                # cannot be stopped).
                ignore_changes=["userData", "userDataBase64"],
            ),
        )
        shared.instances[node.name] = instance
        if not spec.spot:  # an AWS spot instance cannot be stopped (`styx stop` refuses it): no state resource
            # `styx stop`/`start` (ProvisionContext.stopped, from the stack's styx:power record). No phase depends
            # on it and the instance's inputs never change with it: stopping re-runs and replaces nothing.
            aws.ec2transitgateway.InstanceState(
                f"{full_name}-power",
                instance_id=instance.id,
                state="stopped" if node.name in ctx.stopped else "running",
                opts=pulumi.ResourceOptions(parent=parent, provider=shared.provider, depends_on=[instance]),
            )

        resources: list[pulumi.Resource] = [instance]
        host: pulumi.Input[str] = instance.private_ip if private else instance.public_ip  # private: via ssh.jump
        if self.static_address(ctx, node):
            # aws.static_ip: an Elastic IP, so a started instance keeps its address and no phase's connection
            # changes. The EIP names the instance (no separate association): a replaced instance moves it by an
            # update, and deletes (dependents first) run the phases' undos before it is released, then the
            # instance goes. The instance keeps associate_public_ip_address (a change would replace it).
            eip = aws.ec2.Eip(
                f"{full_name}-ip",
                domain="vpc",
                instance=instance.id,
                tags={**_tags(cfg, f"{full_name}-ip"), "styx:node": node.name},
                opts=pulumi.ResourceOptions(parent=parent, provider=shared.provider),
            )
            shared.static_ips[node.name] = eip
            resources.append(eip)  # the gate waits for the association too
            host = eip.public_ip
        user = ssh_user(cfg)
        transport = ctx.ssh_transport(host, SSH_PORT, user, hk, private=private)
        info: dict[str, Any] = {"instance_type": instance_type, "spot": spec.spot, "image": image}
        if zone:
            info["zone"] = zone
        return NodeHandle(
            name=node.name,
            role=node.role,
            host=host,
            private_ip=instance.private_ip,
            user=user,
            port=SSH_PORT,
            transport=transport,
            identity=instance.id,  # a replaced instance has a new id: its phases re-run
            resources=resources,  # the machine first (its phases are deleted with it)
            info=info,
            host_key=hk,
            private=private,
        )

    # ------------------------------------------------------------------ outputs

    def outputs(self, ctx: ProvisionContext, head: NodeHandle) -> dict[str, Any]:
        shared: _Shared = ctx.shared["aws"]
        out: dict[str, Any] = {
            "aws_region": ctx.cfg.region,
            "aws_vpc_id": shared.vpc_id,
            "aws_security_group_id": shared.security_group.id,
            "aws_key_pair": shared.key_pair.key_name,
            "aws_instance_ids": pulumi.Output.all(**{n: i.id for n, i in shared.instances.items()}),
        }
        if shared.static_ips:
            out["static_addresses"] = pulumi.Output.all(**{n: e.public_ip for n, e in shared.static_ips.items()})
        if shared.placement_group is not None:
            out["aws_placement_group"] = shared.placement_group.name
        if shared.amis:
            out["aws_images"] = pulumi.Output.all(**{f"{a}/{arch}": ami for (a, arch), ami in shared.amis.items()})
        return out

    # ------------------------------------------------------------------ images

    def image_source(self, cluster: Mapping[str, Any], node: str,
                     resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The node's instance (its id, from the cluster's state) and region."""
        name, region = str(cluster.get("name")), cluster.get("region")
        r = machine_state(resources, INSTANCE_TYPE, f"{name}-{node}")
        return {"instance_id": (r.get("outputs") or {}).get("id"), "region": region, "cluster": name, "node": node}

    def image(self, name: str, source: Mapping[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Input[str]:
        """An `aws.ec2.AmiFromInstance` of the node (AWS stops a running instance for the snapshots and starts it
        again: a consistent disk); the AMI id is what a node's `image` (or `aws.ami`) takes."""
        ami = aws.ec2.AmiFromInstance(
            f"image-{name}",
            name=f"styx-{name}",
            description=f"styx image {name}: node {source['node']} of cluster {source['cluster']}",
            source_instance_id=source["instance_id"],
            region=source.get("region"),
            snapshot_without_reboot=False,
            tags={"Name": f"styx-{name}", "styx:image": name, "styx:cluster": str(source["cluster"]),
                  "styx:node": str(source["node"])},
            opts=opts,
        )
        return ami.id


def _tags(cfg: ClusterConfig, name: str) -> dict[str, str]:
    return {"Name": name, "styx:cluster": cfg.name}


def _first_subnet(ids: list[str] | None, vpc_id: str | None, zone: str) -> str:
    if not ids:
        where = "" if zone == _DEFAULT_ZONE else f" in zone {zone}"
        raise ValueError(f"{CONFIG_KEY}.aws.vpc_id: no subnet found in {vpc_id}{where}; set aws.subnet_id")
    return sorted(ids)[0]
