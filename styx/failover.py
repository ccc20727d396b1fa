"""Capacity failover for `styx launch`: recognise capacity errors, block the place, pick the next one.

`next_placement(cluster, blocked)` is the one interface the launch loop uses:
- `cloud: local`: the next zone of `local.zones` (the cluster's `zone` first) that is not blocked;
- `aws` / `gcp`: the optimizer's cheapest placement (`styx.optimizer.resolve`) outside the blocklist,
  with `instance_type: auto` nodes pinned to the chosen types;
- other clouds: no alternative (None).
Blocked places are optimizer block strings: `cloud/region/zone`, `cloud/region` or `cloud`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

CAPACITY_PATTERNS = (
    r"InsufficientCapacity",
    r"InsufficientInstanceCapacity",
    r"InsufficientHostCapacity",
    r"InsufficientReservedInstanceCapacity",
    r"ZONE_RESOURCE_POOL_EXHAUSTED(?:_WITH_DETAILS)?",
    r"QUOTA_EXCEEDED",
    r"Quota '[^']+' exceeded",
    r"InstanceLimitExceeded",
    r"VcpuLimitExceeded",
    r"MaxSpotInstanceCountExceeded",
    r"SpotMaxPriceTooLow",
    r"Unsupported: .*availability zone",
    r"does not have enough resources available",
    r"STOCKOUT",
)
CAPACITY_RE = re.compile("|".join(CAPACITY_PATTERNS), re.IGNORECASE)
_ZONE_RE = re.compile(r"\bzone[: ]+['\"]?([A-Za-z0-9][A-Za-z0-9_.\-]*)")


def is_capacity_error(text: str | None) -> bool:
    return bool(text and CAPACITY_RE.search(text))


def capacity_reason(text: str) -> str:
    m = CAPACITY_RE.search(text or "")
    return m.group(0) if m else ""


def _node_zone(cluster: dict[str, Any], node: str) -> str | None:
    spec: dict[str, Any] | None = None
    if node == "head":
        spec = cluster.get("head") or {}
    else:
        for g in cluster.get("workers") or []:
            if node.rsplit("-", 1)[0] == g.get("name", "worker"):
                spec = g
    z = (spec or {}).get("zone") or cluster.get("zone")
    if z is None and cluster.get("cloud") == "local":
        z = ((cluster.get("local") or {}).get("zones") or ["local-a"])[0]
    return z


def failed_place(cluster: dict[str, Any], node: str | None, message: str) -> str:
    """The block string for a capacity failure of `node` (zone named in the message, else the node's)."""
    cloud = cluster.get("cloud", "")
    m = _ZONE_RE.search(message or "")
    zone = m.group(1) if m else (_node_zone(cluster, node) if node else cluster.get("zone"))
    if cloud == "local":
        return f"local/{zone}" if zone else "local"
    region = cluster.get("region")
    if region and zone:
        return f"{cloud}/{region}/{zone}"
    if region:
        return f"{cloud}/{region}"
    return cloud


def placement_of(cluster: dict[str, Any]) -> dict[str, Any]:
    """Where a cluster config points: cloud, region, zone (head's zone when set)."""
    head = cluster.get("head") or {}
    return {"cloud": cluster.get("cloud"), "region": cluster.get("region"),
            "zone": head.get("zone") or cluster.get("zone") or
            (_node_zone(cluster, "head") if cluster.get("cloud") == "local" else None)}


def _zone_blocked(cloud: str, zone: str | None, blocked: set[str]) -> bool:
    return zone is not None and (f"{cloud}/{zone}" in blocked or zone in blocked or cloud in blocked)


def _next_local(cluster: dict[str, Any], blocked: set[str]) -> dict[str, Any] | None:
    zones = list(((cluster.get("local") or {}).get("zones")) or ["local-a"])
    preferred = [cluster["zone"]] if cluster.get("zone") else []
    for z in dict.fromkeys(preferred + zones):
        if _zone_blocked("local", z, blocked):
            continue
        out = copy.deepcopy(cluster)
        out["zone"] = z
        specs = [out.setdefault("head", {}), *(out.get("workers") or [])]
        for spec in specs:
            if spec.get("zone") and _zone_blocked("local", spec["zone"], blocked):
                spec["zone"] = z
        if any(_zone_blocked("local", s.get("zone"), blocked) for s in specs):
            continue
        return out
    return None


def _next_cloud(cluster: dict[str, Any], blocked: Sequence[str],
                catalog_loader: Callable[[], Any] | None) -> dict[str, Any] | None:
    from styx import optimizer

    # the user's config (not validated yet: `region` may be left to the optimizer); a region or
    # zone they pinned stays a filter
    req = optimizer.request_from_cluster(_duck(cluster))
    if catalog_loader is None:
        from styx.catalog import load_catalog

        catalog_loader = load_catalog
    plan = optimizer.resolve(req, catalog_loader(), optimizer.Blocklist(blocked))
    if plan.choice is None:
        return None
    ch = plan.choice
    out = copy.deepcopy(cluster)
    out["region"] = ch.region
    if ch.zone:
        out["zone"] = ch.zone
    for key, group in [("head", out.setdefault("head", {}))] + [(g.get("name", "worker"), g)
                                                                 for g in out.get("workers") or []]:
        try:
            node = ch.node(key)
        except KeyError:
            continue
        if group.get("instance_type") in (None, "auto"):
            group["instance_type"] = node.offer.instance_type
        if group.get("zone") and ch.zone:
            group["zone"] = ch.zone
    return out


def _duck(cluster: dict[str, Any]) -> Any:
    """Attribute access over the raw cluster dict, for optimizer.request_from_cluster."""
    from types import SimpleNamespace

    def spec(d: dict[str, Any], **extra: Any) -> SimpleNamespace:
        res = d.get("resources")
        return SimpleNamespace(instance_type=d.get("instance_type"), spot=bool(d.get("spot", False)),
                               zone=d.get("zone"), resources=SimpleNamespace(**{
                                   k: (res or {}).get(k) for k in ("accelerators", "any_of", "ordered", "cpus",
                                                                   "memory")}) if res else None, **extra)

    workers = [spec(g, name=g.get("name", "worker"), count=g.get("count", 1)) for g in cluster.get("workers") or []]
    return SimpleNamespace(cloud=cluster.get("cloud"), region=cluster.get("region"), zone=cluster.get("zone"),
                           head=spec(cluster.get("head") or {}), workers=workers)


def next_placement(cluster: dict[str, Any], blocked: Sequence[str],
                   catalog_loader: Callable[[], Any] | None = None) -> dict[str, Any] | None:
    """The cluster config for the best place not in `blocked`, or None when nothing is left."""
    cloud = cluster.get("cloud")
    if cloud == "local":
        return _next_local(cluster, set(blocked))
    if cloud in ("aws", "gcp"):
        return _next_cloud(cluster, blocked, catalog_loader)
    return None


def needs_initial_placement(cluster: dict[str, Any]) -> bool:
    """True when some node asks the optimizer to choose (`instance_type: auto`) on a priced cloud."""
    if cluster.get("cloud") not in ("aws", "gcp"):
        return False
    specs = [cluster.get("head") or {}, *(cluster.get("workers") or [])]
    return any(s.get("instance_type") == "auto" for s in specs)


def keep_placement(cluster: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """Re-launching a running cluster stays where it is: the stored (launched) config's zone/region and
    optimizer-chosen types fill what the user's config leaves open (a failover is not undone)."""
    if not stored or stored.get("cloud") != cluster.get("cloud") or stored.get("name") != cluster.get("name"):
        return cluster
    out = copy.deepcopy(cluster)
    cloud = cluster.get("cloud")
    if cloud == "local":
        zones = ((cluster.get("local") or {}).get("zones")) or ["local-a"]
        if not cluster.get("zone") and stored.get("zone") in zones:
            out["zone"] = stored["zone"]
        return out
    if cloud not in ("aws", "gcp"):
        return out
    if not cluster.get("region") and stored.get("region"):
        out["region"] = stored["region"]
    if not cluster.get("zone") and stored.get("zone") and out.get("region") == stored.get("region"):
        out["zone"] = stored["zone"]
    groups = {"head": (out.setdefault("head", {}), stored.get("head") or {})}
    for g in out.get("workers") or []:
        old = next((w for w in stored.get("workers") or [] if w.get("name") == g.get("name")), None)
        if old is not None:
            groups[g.get("name", "worker")] = (g, old)
    for new, old in groups.values():
        if new.get("instance_type") == "auto" and old.get("instance_type") not in (None, "auto") \
                and new.get("resources") == old.get("resources") and bool(new.get("spot")) == bool(old.get("spot")):
            new["instance_type"] = old["instance_type"]
    return out
