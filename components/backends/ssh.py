"""`cloud: ssh`: adopt existing machines listed in the config. Nothing is created or destroyed on them;
each one's SSH host key is scanned once (trust on first use), recorded in the state and then pinned."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from styx.components.backends.base import Backend, Feature, NodeHandle, NodeRequest, ProvisionContext
from styx.components.keys import scanned_host_key
from styx.model.config import CONFIG_KEY, ClusterConfig, NodeSpec


class SSHBackend(Backend):
    name = "ssh"
    features = Feature.ADOPTS_HOSTS
    # setup.python.wheel_cache auto: the head serves the wheels on its private address (`private_ip`, else
    # `host`), port 18951: styx opens no firewall on adopted machines; the network you run them in decides
    # who else reaches it
    wheel_cache_on_head = True
    autostop_hint = ("styx adopts these machines and does not own them: it never stops, starts or destroys "
                     "them (stop your own machines with your own tools)")

    def config_problems(self, cfg: ClusterConfig, catalog: Any = None) -> list[str]:
        p = super().config_problems(cfg, catalog)
        if cfg.head.host is None:
            p.append(f"{CONFIG_KEY}.head.host: required for cloud ssh (the existing machine's address)")
        if cfg.ssh.jump is not None:
            p.append(f"{CONFIG_KEY}.ssh.jump: not supported for cloud ssh yet (an adopted host's key is scanned "
                     "from this machine on first use); allowed: unset")
        for i, g in enumerate(cfg.workers):
            if g.hosts is None:
                p.append(f"{CONFIG_KEY}.workers[{i}].hosts: required for cloud ssh (a list of existing machines)")
        return p

    def fixed_price(self, cfg: ClusterConfig, spec: NodeSpec, zone: str | None) -> dict[str, Any] | None:
        return {"instance_type": spec.instance_type or "existing", "price_per_hour": 0.0,
                "source": "existing machine (not billed by styx)"}

    def ssh_port(self, cluster: Mapping[str, Any], node: str) -> int:
        """Each listed host's own port, else `ssh.port`."""
        default = super().ssh_port(cluster, node)
        if node == "head":
            h = (cluster.get("head") or {}).get("host")
            return int(h.get("port", default)) if isinstance(h, dict) else default
        for g in cluster.get("workers") or []:
            prefix = g.get("name", "worker") + "-"
            if node.startswith(prefix) and node[len(prefix):].isdigit():
                hosts = g.get("hosts") or []
                i = int(node[len(prefix):])
                if i < len(hosts) and isinstance(hosts[i], dict):
                    return int(hosts[i].get("port", default))
        return default

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        cfg = ctx.cfg
        spec = node.spec
        host = spec.host if node.role == "head" else spec.hosts[node.index]  # type: ignore[attr-defined]
        user = host.user or cfg.ssh.user
        # Trust on first use: the key is scanned once and recorded in the state, then pinned.
        hk = scanned_host_key(cfg, node.name, host.host, host.port, parent)
        transport = ctx.ssh_transport(host.host, host.port, user, hk)
        return NodeHandle(
            name=node.name,
            role=node.role,
            host=host.host,
            private_ip=host.private_ip or host.host,
            user=user,
            port=host.port,
            transport=transport,
            identity=f"ssh://{user}@{host.host}:{host.port}",
            host_key=hk,
        )
