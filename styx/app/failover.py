"""Capacity failover for `styx launch`: recognise capacity errors, block the place, pick the next one.

`next_placement(cluster, blocked)` is the one interface the launch loop uses. Nothing here knows a
cloud by name; it asks the cluster's backend (`styx.components.backends.base.Backend`):
- a cloud with `Feature.CATALOG`: the optimizer's cheapest placement (`styx.model.optimizer.resolve`)
  outside the blocklist, with `instance_type: auto` nodes pinned to the chosen types;
- otherwise `Backend.next_zone_placement`: the next of the zones its config lists (`local.zones`),
  or no alternative (None).
Which error text means "no capacity here" is each backend's `capacity_patterns`.
Blocked places are optimizer block strings: `cloud/region/zone`, `cloud/region` or `cloud`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

from styx.components.backends import backend_class, backend_names
from styx.components.backends.base import Backend, Feature

_ZONE_RE = re.compile(r"\bzone[: ]+['\"]?([A-Za-z0-9][A-Za-z0-9_.\-]*)")


def _capacity_re(clouds: tuple[str, ...]) -> re.Pattern[str] | None:
    patterns = [p for c in clouds for p in backend_class(c).capacity_patterns]
    return re.compile("|".join(dict.fromkeys(patterns)), re.IGNORECASE) if patterns else None


def capacity_re(cloud: str | None = None) -> re.Pattern[str] | None:
    """The capacity-error regex of `cloud`'s backend (None: of every registered backend)."""
    return _capacity_re((cloud,) if cloud else backend_names())


def is_capacity_error(text: str | None, cloud: str | None = None) -> bool:
    rx = capacity_re(cloud)
    return bool(text and rx is not None and rx.search(text))


def capacity_reason(text: str, cloud: str | None = None) -> str:
    rx = capacity_re(cloud)
    m = rx.search(text or "") if rx is not None else None
    return m.group(0) if m else ""


def _backend(cluster: dict[str, Any]) -> Backend | None:
    try:
        return backend_class(cluster.get("cloud"))()
    except ValueError:  # not validated yet: an unknown cloud has no placement to offer
        return None


def failed_place(cluster: dict[str, Any], node: str | None, message: str) -> str:
    """The block string for a capacity failure of `node` (zone named in the message, else the node's)."""
    backend = _backend(cluster)
    if backend is None:
        return str(cluster.get("cloud", ""))
    m = _ZONE_RE.search(message or "")
    zone = m.group(1) if m else (backend.default_zone(cluster, node) if node else cluster.get("zone"))
    return backend.failed_place(cluster, zone)


def placement_of(cluster: dict[str, Any]) -> dict[str, Any]:
    """Where a cluster config points: cloud, region, zone (head's zone when set)."""
    backend = _backend(cluster)
    head = cluster.get("head") or {}
    zone = head.get("zone") or cluster.get("zone") or (backend.default_zone(cluster, "head") if backend else None)
    return {"cloud": cluster.get("cloud"), "region": cluster.get("region"), "zone": zone}


def _next_cloud(cluster: dict[str, Any], blocked: Sequence[str],
                catalog_loader: Callable[[], Any] | None) -> dict[str, Any] | None:
    from styx.model import optimizer

    # the user's config (not validated yet: `region` may be left to the optimizer); a region or
    # zone they pinned stays a filter
    req = optimizer.request_from_cluster(_duck(cluster))
    if catalog_loader is None:
        from styx.model.catalog import load_catalog

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
    backend = _backend(cluster)
    if backend is None:
        return None
    if Feature.CATALOG in backend.features:
        return _next_cloud(cluster, blocked, catalog_loader)
    return backend.next_zone_placement(cluster, blocked)


def needs_initial_placement(cluster: dict[str, Any]) -> bool:
    """True when some node asks the optimizer to choose (`instance_type: auto`) on a catalog cloud."""
    backend = _backend(cluster)
    if backend is None or Feature.CATALOG not in backend.features:
        return False
    specs = [cluster.get("head") or {}, *(cluster.get("workers") or [])]
    return any(s.get("instance_type") == "auto" for s in specs)


def keep_placement(cluster: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """Re-launching a running cluster stays where it is: the stored (launched) config's zone/region and
    optimizer-chosen types fill what the user's config leaves open (a failover is not undone)."""
    if not stored or stored.get("cloud") != cluster.get("cloud") or stored.get("name") != cluster.get("name"):
        return cluster
    out = copy.deepcopy(cluster)
    backend = _backend(cluster)
    if backend is None:
        return out
    zones = backend.config_zones(cluster)
    if zones is not None:
        if not cluster.get("zone") and stored.get("zone") in zones:
            out["zone"] = stored["zone"]
        return out
    if Feature.CATALOG not in backend.features:
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
