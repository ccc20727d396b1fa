"""`cloud: local`: each node is a sandbox host on this Linux machine (netns + overlay root + sshd).

The host-side work is `sandbox/sandboxctl.sh`; here each sandbox (and the cluster's bridge + NAT) is a
`command.local.Command` whose delete undoes its create, so `pulumi destroy` leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pulumi_command import local

from styx.components.backends.base import Backend, Feature, NodeHandle, NodeRequest, ProvisionContext
from styx.model.config import CONFIG_KEY, ClusterConfig, LocalConfig, NodeSpec

SANDBOXCTL = Path(__file__).resolve().parents[2] / "sandbox" / "sandboxctl.sh"


def bridge_name(cfg: ClusterConfig) -> str:
    return cfg.local.bridge or "sx" + hashlib.sha256(cfg.name.encode()).hexdigest()[:10]


def address_of(cfg: ClusterConfig, group_index: int | None, index: int) -> str:
    """Stable addresses: gateway .1, head .2, worker group k at 10 + k*group_block + i.

    Growing one group never moves a node of another group.
    """
    net = ipaddress.IPv4Network(cfg.local.subnet)
    offset = 2 if group_index is None else 10 + group_index * cfg.local.group_block + index
    return str(net.network_address + offset)


def _ctl(sub: str, env: dict[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    def render(values: dict[str, str]) -> str:
        exports = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(values.items()))
        return f"export {exports}; bash {shlex.quote(str(SANDBOXCTL))} {sub}"

    return pulumi.Output.all(**env).apply(render)


class LocalBackend(Backend):
    name = "local"
    features = Feature.ZONES  # zones are names in `local.zones`: failover walks them
    config_section = "local"
    capacity_patterns = (r"InsufficientCapacity",)  # sandboxctl's test-only refusal (STYX_SB_REFUSE_FILE)

    def config_problems(self, cfg: ClusterConfig, catalog: Any = None) -> list[str]:
        p = super().config_problems(cfg, catalog)
        k = CONFIG_KEY
        net = ipaddress.IPv4Network(cfg.local.subnet)
        need = 10 + cfg.local.group_block * max(1, len(cfg.workers))
        if net.num_addresses < need:
            p.append(
                f"{k}.local.subnet: {cfg.local.subnet} has {net.num_addresses} addresses but "
                f"{len(cfg.workers)} worker groups × group_block {cfg.local.group_block} need {need}"
            )
        for i, g in enumerate(cfg.workers):
            if (g.count or 0) > cfg.local.group_block:
                p.append(f"{k}.workers[{i}].count: {g.count} exceeds local.group_block ({cfg.local.group_block})")
        return p

    def config_zones(self, cluster: Mapping[str, Any]) -> list[str] | None:
        return list((cluster.get("local") or {}).get("zones") or LocalConfig.model_fields["zones"].get_default(
            call_default_factory=True))

    def fixed_price(self, cfg: ClusterConfig, spec: NodeSpec, zone: str | None) -> dict[str, Any] | None:
        return {"instance_type": "sandbox", "zone": zone or cfg.local.zones[0], "price_per_hour": 0.0,
                "source": "local"}

    def ssh_port(self, cluster: Mapping[str, Any], node: str) -> int:
        return 22  # every sandbox runs sshd on 22 at its own address

    def check(self, cfg: ClusterConfig) -> list[str]:
        if os.environ.get("STYX_LOCAL_PREFLIGHT", "1") == "0":
            return []
        env = {**os.environ, **self._net_env(cfg)}
        r = subprocess.run(["bash", str(SANDBOXCTL), "preflight"], env=env, capture_output=True, text=True,
                           check=False)
        if r.returncode != 0:
            lines = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if ln.strip()]
            return [f"styx:cluster.cloud: local backend cannot run here: {lines[-1] if lines else 'preflight failed'}"]
        return []

    def gone_machines(self, cluster: Mapping[str, Any], nodes: Sequence[str]) -> list[str] | None:
        """Nodes whose sandbox no longer runs (removed or stopped outside Pulumi: `sandboxctl node-alive`)."""
        cfg = ClusterConfig.model_validate(cluster)
        env = {**os.environ, **self._net_env(cfg)}
        gone = []
        for n in nodes:
            r = subprocess.run(["bash", str(SANDBOXCTL), "node-alive"], env={**env, "STYX_SB_NODE": n},
                               capture_output=True, text=True, check=False)
            if r.returncode == 1 and r.stdout.strip() == "gone":
                gone.append(n)
        return gone

    def _net_env(self, cfg: ClusterConfig) -> dict[str, str]:
        net = ipaddress.IPv4Network(cfg.local.subnet)
        return {
            "STYX_SB_CLUSTER": cfg.name,
            "STYX_SB_SUBNET": cfg.local.subnet,
            "STYX_SB_BRIDGE": bridge_name(cfg),
            "STYX_SB_MTU": str(cfg.local.mtu),
            "STYX_SB_GATEWAY": str(net.network_address + 1),
            "STYX_SB_PREFIX": str(net.prefixlen),
            "STYX_CACHE_DIR": cfg.local.cache_dir,
            "STYX_SB_STATE_DIR": cfg.local.state_dir,
        }

    def prepare(self, ctx: ProvisionContext) -> None:
        env = self._net_env(ctx.cfg)
        ctx.shared["net"] = local.Command(
            f"{ctx.cfg.name}-network",
            create=_ctl("net-up", env),
            delete=_ctl("net-down", env),
            triggers=[env["STYX_SB_SUBNET"], env["STYX_SB_BRIDGE"], env["STYX_SB_MTU"]],
            logging=local.Logging.STDERR,
            opts=ctx.opts,
        )
        # The base image is built once and cached; nodes wait for it.
        ctx.shared["base"] = local.Command(
            f"{ctx.cfg.name}-base-image",
            create=_ctl("base", env),
            logging=local.Logging.STDERR,
            opts=ctx.opts,
        )
        groups = {g.name: i for i, g in enumerate(ctx.cfg.workers)}
        ctx.shared["groups"] = groups

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        cfg = ctx.cfg
        gi = None if node.role == "head" else ctx.shared["groups"][node.group]
        ip = address_of(cfg, gi, node.index)
        zone = node.spec.zone or cfg.zone or cfg.local.zones[0]
        env: dict[str, pulumi.Input[str]] = {
            **self._net_env(cfg),
            "STYX_SB_NODE": node.name,
            "STYX_SB_IP": ip,
            "STYX_SB_ZONE": zone,
            "STYX_SB_PUBKEY": ctx.key.public_key,
            "STYX_SB_SHM_SIZE": cfg.local.shm_size,
            "STYX_SB_DOCKER": "1" if cfg.local.docker else "0",
            # only what never changes when the cluster grows: itself and the head (Ray uses addresses)
            "STYX_SB_HOSTS": f"{address_of(cfg, None, 0)} head\n{ip} {node.name}" if gi is not None
            else f"{ip} head",
        }
        # The node's SSH host key: made by styx, installed by node-up from its stdin (never in the
        # command text), pinned by every connection.
        hk = ctx.host_key(node, parent)
        env["STYX_SB_HOST_KEY"] = "stdin"
        # ssh.jump: this machine cannot open a connection to a private node (only the head, or a bastion, can)
        private = ctx.private(node)
        env["STYX_SB_PRIVATE"] = "1" if private else "0"
        refuse = os.environ.get("STYX_SB_REFUSE_FILE")
        if refuse:  # test-only: make a "zone" refuse capacity (see sandbox/README.md)
            env["STYX_SB_REFUSE_FILE"] = refuse
        sandbox = local.Command(
            f"{cfg.name}-{node.name}-sandbox",
            create=_ctl("node-up", env),
            stdin=hk.private_key,
            delete=_ctl("node-down", {k: env[k] for k in ("STYX_SB_CLUSTER", "STYX_SB_NODE", "STYX_SB_STATE_DIR")}),
            # A change to any of these makes a new sandbox (and so re-runs every phase on it). A new host
            # key (stdin) is an update: node-up installs it in the running sandbox.
            triggers=[ip, zone, ctx.key.public_key, cfg.local.shm_size, cfg.local.subnet,
                      *(["docker"] if cfg.local.docker else [])],
            logging=local.Logging.STDERR,
            # Same name and address: the old sandbox must go before its replacement comes.
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[ctx.shared["net"], ctx.shared["base"]],
                                        delete_before_replace=True),
        )
        transport = ctx.ssh_transport(ip, 22, "root", hk, private=private)
        return NodeHandle(
            name=node.name,
            role=node.role,
            host=ip,
            private_ip=ip,
            user="root",
            port=22,
            transport=transport,
            identity=sandbox.id,
            resources=[sandbox],
            info={"zone": zone, "instance_type": "sandbox", "price_per_hour": 0.0},
            host_key=hk,
            private=private,
        )
