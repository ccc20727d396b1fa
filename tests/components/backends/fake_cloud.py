"""A test-only cloud: proof that adding a cloud is one module + one registry line + its tests.

Nothing outside this file and tests/components/backends/test_fake_cloud.py knows it exists: the test
registers it with `styx.components.backends.register_backend("fake", "fake_cloud:FakeBackend")`, and then
the config accepts `cloud: fake`, the program builds it, `styx launch --cloud fake` takes it, failover
walks its zones and pricing asks it for its price.

Each "machine" is one `command.local.Command` (under Pulumi mocks nothing runs) reached over SSH.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_command import local

from styx.components.backends.base import Backend, Feature, NodeHandle, NodeRequest, ProvisionContext
from styx.model.config import CONFIG_KEY, ClusterConfig, NodeSpec

ZONES = ("fake-a", "fake-b")
PORT = 2222
PRICE = 0.5


class FakeBackend(Backend):
    name = "fake"
    features = Feature.ZONES | Feature.SPOT
    capacity_patterns = (r"FAKE_OUT_OF_CAPACITY",)

    def config_problems(self, cfg: ClusterConfig, catalog: Any = None) -> list[str]:
        p = super().config_problems(cfg, catalog)
        for where, spec in [("head", cfg.head), *((f"workers[{i}]", g) for i, g in enumerate(cfg.workers))]:
            if spec.zone and spec.zone not in ZONES:
                p.append(f"{CONFIG_KEY}.{where}.zone: {spec.zone!r} is not a fake zone ({', '.join(ZONES)})")
        return p

    def config_zones(self, cluster: Mapping[str, Any]) -> list[str] | None:
        return list(ZONES)

    def fixed_price(self, cfg: ClusterConfig, spec: NodeSpec, zone: str | None) -> dict[str, Any] | None:
        return {"instance_type": spec.instance_type or "fake.small", "zone": zone or ZONES[0],
                "price_per_hour": PRICE, "source": "fake"}

    def ssh_port(self, cluster: Mapping[str, Any], node: str) -> int:
        return PORT

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        ip = f"192.0.2.{10 + len(ctx.shared.setdefault('nodes', []))}"
        ctx.shared["nodes"].append(node.name)
        zone = node.spec.zone or ctx.cfg.zone or ZONES[0]
        hk = ctx.host_key(node, parent)  # the machine's SSH host key: installed at creation (here: its stdin)
        vm = local.Command(f"{ctx.cfg.name}-{node.name}-vm", create=f"echo {ip}", stdin=hk.private_key,
                           triggers=[ip, zone], opts=pulumi.ResourceOptions(parent=parent))
        return NodeHandle(name=node.name, role=node.role, host=ip, private_ip=ip, user="fake", port=PORT,
                          transport=ctx.ssh_transport(ip, PORT, "fake", hk), identity=vm.id, resources=[vm],
                          info={"zone": zone, "instance_type": "fake.small", "price_per_hour": PRICE}, host_key=hk)
