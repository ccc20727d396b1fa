"""GCP: firewall ingress, and GPU machines that must stop (not live-migrate) on host maintenance."""

from __future__ import annotations

import re
from collections.abc import Mapping

from styx_policy.net import (
    ALL_PORTS,
    INGRESS_EXTRACTORS,
    Ingress,
    as_list,
    has_ports,
    normalize_protocol,
    parse_port_specs,
)

FIREWALL = "gcp:compute/firewall:Firewall"
INSTANCE = "gcp:compute/instance:Instance"
INSTANCE_TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"

# Accelerator-optimized families have GPUs built in (no guest_accelerators block).
_GPU_MACHINE = re.compile(r"^(a2|a3|a4|a4x|g2|g4)-")


def firewall_ingress(props: Mapping) -> list[Ingress]:
    """Allow rules of an INGRESS firewall. No source at all means 0.0.0.0/0 (GCP's default)."""
    if str(props.get("direction") or "INGRESS").upper() != "INGRESS" or props.get("disabled") is True:
        return []
    sources = tuple(str(s) for s in as_list(props.get("sourceRanges")))
    if not sources and not as_list(props.get("sourceTags")) and not as_list(props.get("sourceServiceAccounts")):
        sources = ("0.0.0.0/0",)
    out = []
    for i, allow in enumerate(as_list(props.get("allows"))):
        proto = normalize_protocol(allow.get("protocol"))
        specs = as_list(allow.get("ports"))
        if proto == "all" or (has_ports(proto) and not specs):
            ports = ALL_PORTS
        elif has_ports(proto):
            ports = parse_port_specs(specs)
        else:
            ports = ()
        out.append(Ingress(where=f"allows[{i}]", sources=sources, protocol=proto, ports=ports))
    return out


INGRESS_EXTRACTORS[FIREWALL] = firewall_ingress


def is_gpu_machine(props: Mapping) -> bool:
    for acc in as_list(props.get("guestAccelerators")):
        if isinstance(acc, Mapping) and int(acc.get("count") or 0) > 0:
            return True
    machine = str(props.get("machineType") or "").rsplit("/", 1)[-1]
    return bool(_GPU_MACHINE.match(machine))


def gpu_maintenance_problems(resource_type: str, props: Mapping) -> list[str]:
    if resource_type not in (INSTANCE, INSTANCE_TEMPLATE) or not is_gpu_machine(props):
        return []
    sched = props.get("scheduling")
    policy = sched.get("onHostMaintenance") if isinstance(sched, Mapping) else None
    if str(policy).upper() != "TERMINATE":
        return [f"a GPU machine must set scheduling.onHostMaintenance=TERMINATE (GPU VMs cannot live-migrate); "
                f"it is {policy!r}"]
    return []
