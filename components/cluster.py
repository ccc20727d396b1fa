"""`styx:index:Cluster`: the key, the backend's shared resources, one Node per machine, outputs."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

import pulumi

from styx.components import placement
from styx.components.backends import get_backend
from styx.components.backends.base import Backend, Jump, NodeRequest, ProvisionContext
from styx.components.filesync import SyncBundle, pack
from styx.components.keys import cluster_key, ray_token, scanned_host_key
from styx.components.node import Node
from styx.components.phases import ImageTarball, NodeInfo, PhaseContext
from styx.model.config import ClusterConfig


def _env_file(env: dict[str, str], secret_env: dict[str, str]) -> pulumi.Input[str]:
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted({**env, **secret_env}.items())]
    text = "# written by styx (env_vars phase)\n" + "\n".join(lines) + "\n"
    return pulumi.Output.secret(text) if secret_env else text


def image_tarball(cfg: ClusterConfig, base_dir: Path) -> ImageTarball | None:
    """setup.ray.container.tarball with its sha256 (read in 1 MiB blocks: images are large)."""
    c = cfg.setup.ray.container
    if c is None or not c.tarball or not cfg.setup.ray.enabled:
        return None
    path = (base_dir / c.tarball).resolve()
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return ImageTarball(str(path), h.hexdigest())


class Cluster(pulumi.ComponentResource):
    nodes: dict[str, Node]

    def __init__(self, cfg: ClusterConfig, base_dir: Path, *, backend: Backend | None = None,
                 sync: SyncBundle | None = None, choice: dict[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None, stopped: frozenset[str] = frozenset(),
                 ray_workers_after_head: bool = False):
        """`sync` is the packed file mounts (styx.components.filesync.pack), checked before anything exists.
        `ray_workers_after_head`: the workers' Ray starts after the head's whatever setup.ray.worker_start says
        (a repair that replaces the head's Ray with the same generation: beside it, a worker could join the
        GCS that is about to stop)."""
        super().__init__("styx:index:Cluster", cfg.name, None, opts)
        backend = backend or get_backend(cfg.cloud)
        key = cluster_key(cfg, backend.key_generator, self)  # None when the backend needs no SSH
        token = ray_token(cfg, self)  # None unless Ray runs with setup.ray.auth: token
        ctx = ProvisionContext(cfg=cfg, key=key, cluster=self, ray_token=token, stopped=frozenset(stopped))
        if choice is not None:  # instance_type: auto, resolved before anything was registered
            ctx.placements = placement.record(cfg, choice, self)
        backend.prepare(ctx)
        bastion = cfg.ssh.bastion()
        if bastion is not None:  # ssh.jump: a bastion: every node is reached through it, its key pinned on first use
            user, host, port = bastion
            ctx.jump = Jump(host, port, user, scanned_host_key(cfg, "bastion", host, port, self), "bastion")

        setup = cfg.setup
        env_content = _env_file(setup.env, setup.secret_env)
        if sync is None and setup.file_mounts:
            sync = pack(setup.file_mounts, base_dir)
        image = image_tarball(cfg, base_dir)
        reg = setup.ray.container.registry if setup.ray.container else None
        registry_password = pulumi.Output.secret(reg.password) if reg else None

        self.nodes = {}
        head_ip: pulumi.Input[str] = ""
        head_gen: pulumi.Input[str] | None = None  # setup.ray.worker_start with_head: the head's ray generation
        after: dict[str, Any] = {}
        with_head = setup.ray.worker_start == "with_head"
        for name, role, spec, index in cfg.nodes():
            group = "head" if role == "head" else name.rsplit("-", 1)[0]
            req = NodeRequest(name=name, role=role, spec=spec, group=group, index=index)

            def make_ctx(handle, role=role, spec=spec, name=name, head_ip=head_ip, head_gen=head_gen):
                return PhaseContext(
                    cluster=cfg,
                    node=NodeInfo(name=name, role=role, spec=spec, private_ip=handle.private_ip,
                                  head_ip=handle.private_ip if role == "head" else head_ip, user=handle.user),
                    env_content=env_content,
                    sync=sync,
                    ray_token=token,
                    image=image,
                    registry_password=registry_password,
                    autostop_poweroff=backend.autostop_poweroff,
                    wheel_cache_on_head=backend.wheel_cache_on_head,
                    head_ray_generation=head_gen,
                )

            node = Node(
                f"{cfg.name}-{name}",
                lambda parent, req=req: backend.machine(ctx, req, parent),
                make_ctx,
                base_dir,
                after=after if role == "worker" else None,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.nodes[name] = node
            if role == "head" and cfg.ssh.jump == "head":  # the workers are reached through the head
                h = node.handle
                assert h.host_key is not None, f"cloud {cfg.cloud}: ssh.jump needs SSH to the head"
                ctx.jump = Jump(h.host, h.port, h.user, h.host_key, "head")
            if role == "head":
                head_ip = node.handle.private_ip
                backend.head_set_up(ctx, node.phases)
                if "ray" in node.phases:
                    # with_head: after what the head's waits for, and the head's GCS says when (the workers'
                    # programs are the same when a repair orders them after the head's Ray)
                    if with_head:
                        head_gen = node.chains["ray"]
                    order = node.waits["ray"] if with_head and not ray_workers_after_head else [node.phases["ray"]]
                    after["ray"] = (order, node.chains["ray"])
                if "wheel_cache" in node.phases:  # every worker installs from the head's cache once it is ready
                    after["python_env"] = ([node.phases["wheel_cache"]], None)

        head = self.nodes["head"].handle
        ray = setup.ray
        self.head_ip = pulumi.Output.from_input(head.host)
        self.ssh_user = head.user if key is not None else None
        self.ssh_private_key = key.private_key if key is not None and key.generated else None
        self.ray_auth_token = token
        self.ray_address = pulumi.Output.concat(head.private_ip, f":{ray.port}")
        # a private head (ssh.jump: a bastion) is reached through its jump host, as `styx dashboard` does
        hop: list[pulumi.Input[str]] = [] if not (head.private and ctx.jump is not None) else [
            f"-J {ctx.jump.user}@", ctx.jump.host, ":", pulumi.Output.from_input(ctx.jump.port).apply(str), " "]
        self.dashboard = pulumi.Output.concat(
            "ssh -i <key file> -o UserKnownHostsFile=<known_hosts (styx dashboard)> -o StrictHostKeyChecking=yes "
            "-N -L ",
            f"{ray.dashboard_port}:127.0.0.1:{ray.dashboard_port} ", *hop, "-p ",
            pulumi.Output.from_input(head.port).apply(str), f" {head.user}@", head.host,
            f"  # then open http://127.0.0.1:{ray.dashboard_port}",
        )
        self.node_list = pulumi.Output.all(*[
            pulumi.Output.all(n.handle.name, n.handle.role, n.handle.host, n.handle.private_ip,
                              n.handle.host_key.public_key if n.handle.host_key else None).apply(
                lambda v, info=n.handle.info, hk=n.handle.host_key, private=n.handle.private: {
                    "name": v[0], "role": v[1], "host": v[2], "private_ip": v[3],
                    **{k: info[k] for k in ("zone", "instance_type") if k in info},
                    **({"host_key": v[4], "host_key_source": hk.source} if hk else {}),
                    **({"private": True} if private else {})})
            for n in self.nodes.values()
        ])
        j = ctx.jump
        self.ssh_jump = None if j is None else pulumi.Output.all(j.host, j.port, j.host_key.public_key).apply(
            lambda v, j=j: {"name": j.name, "host": v[0], "port": v[1], "user": j.user, "host_key": v[2]})
        # What to replace to accept a legitimately new host key: the scan of an adopted host, else the machine.
        accept = {k: (n.handle.host_key.resource if n.handle.host_key.source == "first use"
                      else (n.handle.resources[0] if n.handle.resources else n.handle.host_key.resource))
                  for k, n in self.nodes.items() if n.handle.host_key is not None}
        if j is not None and j.name == "bastion":
            accept["bastion"] = j.host_key.resource
        self.host_key_urns = pulumi.Output.all(**{k: r.urn for k, r in accept.items() if r is not None}) \
            if accept else None
        self.phase_results = pulumi.Output.all(**{k: n.results for k, n in self.nodes.items()})
        self.extra_outputs = backend.outputs(ctx, head)
        self.register_outputs({"head_ip": self.head_ip, "ray_address": self.ray_address})

    def export(self) -> None:
        pulumi.export("head_ip", self.head_ip)
        pulumi.export("nodes", self.node_list)
        if self.ssh_user is not None:
            pulumi.export("ssh_user", self.ssh_user)
        if self.ssh_private_key is not None:
            pulumi.export("ssh_private_key", pulumi.Output.secret(self.ssh_private_key))
        pulumi.export("ray_address", self.ray_address)
        if self.ray_auth_token is not None:
            pulumi.export("ray_auth_token", self.ray_auth_token)
        pulumi.export("dashboard", self.dashboard)
        pulumi.export("phase_results", self.phase_results)
        if self.ssh_jump is not None:
            pulumi.export("ssh_jump", self.ssh_jump)
        if self.host_key_urns is not None:
            pulumi.export("host_key_urns", self.host_key_urns)
        for k, v in self.extra_outputs.items():
            pulumi.export(k, v)
