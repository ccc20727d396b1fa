"""Explanations: why a cloud, region or zone could not host the cluster (the ``reasons`` of a plan).

Only worked out for the clouds the search left without a place, so a feasible query pays nothing here.
For each such cloud and accelerator option, :func:`stages` finds the furthest filter any offer passed
(location, shape, price, blocklist); :func:`reason_for` words it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from styx.model.catalog import Catalog
from styx.model.grammar import format_count

from .plan import Exclusion
from .request import AcceleratorSpec, Block, Blocklist, NodeGroupRequest, Request, shape_filter

if TYPE_CHECKING:
    from .search import GroupSearch

__all__ = ["exclusions", "reason_for", "stages"]

# stages an offer passes, for the "why was this cloud excluded" message
S_LOCATION, S_SHAPE, S_PRICE, S_UNBLOCKED = 1, 2, 3, 4


def stages(g: NodeGroupRequest, spot: bool, catalog: Catalog, cloud: str, regions, zones, blocklist) -> dict:
    """(cloud, option index) -> the furthest filter stage any offer of the cloud passed (for messages)."""
    stage: dict[tuple[str, int], int] = {}
    ok = shape_filter(g)
    options: Sequence[AcceleratorSpec | None] = g.accelerators or (None,)
    for idx, opt in enumerate(options):
        if opt is None:
            pool = catalog.offers(None) if g.instance_type is None else catalog.offers_of_type(cloud, g.instance_type)
        else:
            pool = catalog.offers(opt.name, opt.count)
        sk = (cloud, idx)
        for o in pool:
            if o.cloud != cloud:
                continue
            st = stage.setdefault(sk, 0)
            if (regions is not None and o.region not in regions) or (zones is not None and o.zone not in zones):
                continue
            st = max(st, S_LOCATION)
            if ok(o):
                st = max(st, S_SHAPE)
                if (o.spot_price if spot else o.price) is not None:
                    st = max(st, S_PRICE)
                    if not (blocklist and blocklist.blocks(cloud, o.region, o.zone)):
                        st = S_UNBLOCKED
            stage[sk] = st
            if st == S_UNBLOCKED:
                break
    return stage



def reason_for(g: NodeGroupRequest, gs: GroupSearch, cloud: str, catalog: Catalog, req: Request) -> str:
    options: Sequence[AcceleratorSpec | None] = g.accelerators or (None,)
    msgs = []
    for idx, opt in enumerate(options):
        st = gs.stage.get((cloud, idx), -1)
        what = str(opt) if opt is not None else (g.instance_type or "CPU-only machine")
        if opt is not None and g.instance_type:
            what = f"{g.instance_type} with {opt}"
        if st < 0:
            if opt is not None:
                counts = catalog.accelerator_counts(opt.name, cloud)
                if not counts and catalog.accelerator_listed(opt.name, cloud):
                    msgs.append(f"lists {opt.name} but no machine type in its catalog can host it")
                elif not counts:
                    msgs.append(f"does not offer {opt.name}")
                else:
                    msgs.append(f"no {what} offer (offered: {opt.name}:{', '.join(format_count(c) for c in counts)})")
            else:
                msgs.append(f"no {what} offer")
        elif st < S_LOCATION:
            where = ", ".join([*req.regions, *req.zones])
            msgs.append(f"no {what} offer in {where}")
        elif st < S_SHAPE:
            cons = [q.describe(n) for n, q in (("cpus", g.cpus), ("memory", g.memory)) if q is not None]
            tail = " and ".join(cons) if cons else "a default-sized host"
            msgs.append(f"no offer with {what} and {tail}")
        elif st < S_PRICE:
            msgs.append(f"no {'spot' if gs.spot else 'on-demand'} offer with {what}")
        elif st < S_UNBLOCKED:
            msgs.append(f"every offer with {what} is blocked")
        else:
            msgs.append(f"{what} is offered")
    return "; ".join(msgs)



def exclusions(
    req: Request,
    catalog: Catalog,
    searches: list[GroupSearch],
    feasible_regions: set[tuple[str, str]],
    bl: Blocklist,
    clouds: frozenset[str] | None,
    regions: frozenset[str] | None,
    zones: frozenset[str] | None,
) -> list[Exclusion]:
    out: list[Exclusion] = []
    feasible_clouds = {c for c, _ in feasible_regions}
    no_common: set[str] = set()
    multi = len(searches) > 1
    universe = sorted(set(catalog.clouds) | set(req.clouds))
    for cloud in universe:
        if cloud in feasible_clouds:
            continue
        if clouds is not None and cloud not in clouds:
            continue  # not asked for: not worth a line
        if cloud not in catalog.clouds:
            out.append(Exclusion(cloud, f"no catalog loaded (run `styx catalog refresh --cloud {cloud}`)"))
            continue
        if Block(cloud) in bl.entries:
            out.append(Exclusion(cloud, "blocked"))
            continue
        msgs = []
        for s in searches:
            if any(p.cloud == cloud for p in s.best):
                continue
            s.stage.update(stages(s.group, s.spot, catalog, cloud, regions, zones, bl))
            m = reason_for(s.group, s, cloud, catalog, req)
            msgs.append(f"{s.group.name}: {m}" if multi else m)
        if not msgs:
            no_common.add(cloud)
            zoned = any(p.zone for s in searches for p in s.best if p.cloud == cloud)
            msgs.append(f"no single region{'/zone' if zoned else ''} offers every node group "
                        f"({', '.join(s.group.name + ' ' + s.group.describe() for s in searches)})")
        out.append(Exclusion(cloud, "; ".join(msgs)))
    # places that were blocked although something feasible was there
    hits: dict[Block, int] = {}
    for s in searches:
        for b, n in s.blocked_hits.items():
            hits[b] = hits.get(b, 0) + n
    for b in sorted(hits, key=str):
        if b.region is None and b.zone is None:
            if not any(e.cloud == b.cloud and e.region is None for e in out):
                out.append(Exclusion(b.cloud, "blocked"))
            continue
        out.append(Exclusion(b.cloud, "blocked", b.region, b.zone))
    if multi:  # regions where some groups fit but not all
        places: dict[tuple[str, str], set[str]] = {}
        for s in searches:
            for p in s.best:
                places.setdefault((p.cloud, p.region), set()).add(s.group.name)
        names = [s.group.name for s in searches]
        for (cloud, region), have in sorted(places.items()):
            if (cloud, region) in feasible_regions:
                continue
            if cloud not in feasible_clouds and cloud not in no_common:
                continue  # the cloud-level line already says which group it cannot host
            missing = [n for n in names if n not in have]
            if missing:
                out.append(Exclusion(cloud, f"no offer for group(s) {', '.join(missing)}", region))
            else:
                out.append(Exclusion(cloud, "no single zone offers every node group", region))
    return out
