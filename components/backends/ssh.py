"""`cloud: ssh`: adopt existing machines listed in the config. Nothing is created or destroyed."""

from __future__ import annotations

from components.backends.base import Backend, NodeHandle, NodeRequest, ProvisionContext


class SSHBackend(Backend):
    name = "ssh"

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        cfg = ctx.cfg
        spec = node.spec
        host = spec.host if node.role == "head" else spec.hosts[node.index]  # type: ignore[attr-defined]
        user = host.user or cfg.ssh.user
        transport = ctx.ssh_transport(host.host, host.port, user)
        return NodeHandle(
            name=node.name,
            role=node.role,
            host=host.host,
            private_ip=host.private_ip or host.host,
            user=user,
            port=host.port,
            transport=transport,
            identity=f"ssh://{user}@{host.host}:{host.port}",
        )
