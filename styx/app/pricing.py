"""What a cluster costs, priced once at launch and recorded in its stack (`styx:pricing`).

`price_cluster` looks each node's instance type up in the catalog *at launch*; `styx status` and
`styx cost-report` only read the record, so a later catalog refresh (or a type that disappears from
it) never changes what a running cluster is reported to cost.

Record (JSON in stack config `styx:pricing`):
    {"currency": "USD", "per_hour": 1.23, "priced_at": ISO, "complete": true,
     "nodes": [{"node", "role", "instance_type", "region", "zone", "spot", "price_per_hour", "source"}],
     "history": [{"since": ISO, "per_hour": 1.23}]}
`history` has one segment per price the cluster ran at (a failover to another type adds one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from styx.components.backends import backend_class
from styx.components.backends.base import Feature
from styx.model.config import ClusterConfig


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC to the second (`2026-12-01T23:30:00Z`): stack records, status and --json alike."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def parse_iso(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def price_cluster(cfg: ClusterConfig, *, catalog_loader: Callable[[], Any] | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """Price every node of `cfg`: the backend's own price (`Backend.fixed_price`: a sandbox, an existing
    machine), else the catalog's on-demand or spot price (`Feature.CATALOG` clouds)."""
    now = now or datetime.now(UTC)
    backend = backend_class(cfg.cloud)()
    catalog = None
    catalog_error = None
    if Feature.CATALOG in backend.features:
        try:
            if catalog_loader is None:
                from styx.model.catalog import load_catalog

                catalog_loader = load_catalog
            catalog = catalog_loader()
        except Exception as e:  # no catalog: the record says so; the cluster still launches
            catalog_error = str(e).splitlines()[0]
    nodes = []
    for name, role, spec, _i in cfg.nodes():
        zone = spec.zone or cfg.zone
        entry: dict[str, Any] = {"node": name, "role": role, "instance_type": spec.instance_type,
                                 "region": cfg.region, "zone": zone, "spot": spec.spot}
        fixed = backend.fixed_price(cfg, spec, zone)
        if fixed is not None:
            entry.update(fixed)
        elif catalog is not None and spec.instance_type and spec.instance_type != "auto":
            price = _catalog_price(catalog, cfg.cloud, spec.instance_type, cfg.region, zone, spec.spot)
            entry.update(price_per_hour=price, source="catalog" if price is not None else "not in catalog")
        else:
            entry.update(price_per_hour=None, source=catalog_error or f"unpriced ({cfg.cloud})")
        nodes.append(entry)
    known = [n["price_per_hour"] for n in nodes if n["price_per_hour"] is not None]
    per_hour = round(sum(known), 6)
    return {"currency": "USD", "per_hour": per_hour, "priced_at": iso(now),
            "complete": len(known) == len(nodes), "nodes": nodes, "history": []}


def _catalog_price(catalog: Any, cloud: str, itype: str, region: str | None, zone: str | None,
                   spot: bool) -> float | None:
    offers = catalog.offers_of_type(cloud, itype)
    if region:
        offers = [o for o in offers if o.region == region]
    if zone:
        in_zone = [o for o in offers if o.zone == zone]
        offers = in_zone or offers
    prices = [p for p in (o.price_for(spot) for o in offers) if p is not None]
    return round(min(prices), 6) if prices else None


def record(previous: dict[str, Any] | None, new: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The record to store: `new`, with the price history carried over (a segment per price change)."""
    now = now or datetime.now(UTC)
    history = list((previous or {}).get("history") or [])
    if not history or abs(history[-1]["per_hour"] - new["per_hour"]) > 1e-9:
        history.append({"since": iso(now), "per_hour": new["per_hour"]})
    if previous and previous.get("per_hour") == new["per_hour"] and previous.get("nodes") == new["nodes"]:
        new = {**new, "priced_at": previous.get("priced_at", new["priced_at"])}
    return {**new, "history": history}


def cost_so_far(pricing: dict[str, Any] | None, launched_at: datetime | None,
                now: datetime | None = None) -> float:
    """$ spent since launch: each history segment's price × its duration."""
    if not pricing or launched_at is None:
        return 0.0
    now = now or datetime.now(UTC)
    segs = list(pricing.get("history") or [{"since": iso(launched_at), "per_hour": pricing.get("per_hour", 0)}])
    total = 0.0
    for i, seg in enumerate(segs):
        start = max(parse_iso(seg["since"]) or launched_at, launched_at)
        end = parse_iso(segs[i + 1]["since"]) if i + 1 < len(segs) else now
        if end is not None and end > start:
            total += (seg.get("per_hour") or 0.0) * (end - start).total_seconds() / 3600.0
    return round(total, 6)
