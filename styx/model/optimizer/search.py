"""Search: the cheapest placement of a whole cluster (:func:`resolve`), and the next-cheapest ones.

Per node group, :func:`search_group` finds the best :class:`~styx.model.catalog.loader.PricedOffer` in every
:class:`~styx.model.catalog.loader.Place` from the catalog's placement indexes; :func:`resolve` then keeps the
places every group can use, ranks them (:class:`CandidateKey`) and turns the winner and the alternatives
into a :class:`~styx.model.optimizer.plan.Plan`. Why a cloud has nothing is :mod:`styx.model.optimizer.explain`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from styx.model.catalog import Catalog, Offer
from styx.model.catalog.loader import Place, PlacementIndex, PricedOffer, placement_index

from . import explain
from .plan import Choice, NodeChoice, Plan
from .request import (
    AcceleratorSpec,
    Blocklist,
    NodeGroupRequest,
    Request,
    needs_shape_check,
    parse_request,
    shape_filter,
    validate,
)

__all__ = ["Candidate", "CandidateKey", "GroupSearch", "resolve", "search_group"]


class GroupSearch:
    """Best offer per place (and, with several accelerator options, per option) for one node group.

    ``best[place]`` is the group's pick there; ``best_option[place]`` the index of the accelerator option
    it is for (absent: option 0). ``per_option[(place, option)]`` holds every option's pick (only for
    groups with several options: they show up as alternatives). ``stage`` and ``blocked_hits`` feed
    the explanations.
    """

    __slots__ = ("best", "best_option", "blocked_hits", "group", "per_option", "spot", "stage")

    def __init__(self, group: NodeGroupRequest, spot: bool):
        self.group = group
        self.spot = spot
        self.best: dict[Place, PricedOffer] = {}
        self.best_option: dict[Place, int] = {}
        self.per_option: dict[tuple[Place, int], PricedOffer] = {}
        self.stage: dict[tuple[str, int], int] = {}  # (cloud, option index) -> furthest stage reached
        self.blocked_hits: dict[Any, int] = {}

    def rank(self, option: int) -> int:
        """Preference of an option: its position in an ``ordered`` list, else 0 (price decides)."""
        return option if self.group.ordered else 0


class CandidateKey(NamedTuple):
    """A feasible placement of the whole cluster, as its sort key: candidates are ordered by (ranks of the
    ordered groups, total $/h rounded to 1e-9, cloud, region, zone, instance types, options), so ties are
    broken deterministically. ``options`` are, per active group, the accelerator option its pick is for.

    One is made per feasible place and query, so it is a NamedTuple (cheap, and sortable as it is); the
    winner and the alternatives become :class:`Candidate` s.
    """

    ranks: tuple[int, ...]
    price: float
    cloud: str
    region: str
    zone: str
    instance_types: tuple[str, ...]
    options: tuple[int, ...]

    @property
    def place(self) -> Place:
        return Place(self.cloud, self.region, self.zone)

    def alt_key(self) -> tuple:
        """Alternatives differ in cloud, instance types, options or price: the zones of a region, and the
        regions of a cloud that sell the same machines at the same price, collapse into the first of them."""
        return (self.cloud, self.ranks, self.price, self.instance_types, self.options)


@dataclass(frozen=True, slots=True)
class Candidate:
    """The winner or an alternative: its key and, per active group, the priced offer picked."""

    key: CandidateKey
    picks: tuple[PricedOffer, ...]

    @classmethod
    def of(cls, key: CandidateKey, searches: Sequence[GroupSearch]) -> Candidate:
        place = key.place
        return cls(key, tuple(s.per_option[(place, o)] if s.per_option else s.best[place]
                              for s, o in zip(searches, key.options, strict=True)))


def _typed(catalog: Catalog, instance_type: str, clouds: frozenset[str] | None) -> list[Offer]:
    out: list[Offer] = []
    for c in (clouds if clouds is not None else catalog.clouds):
        out.extend(catalog.offers_of_type(c, instance_type))
    return out


def search_group(
    g: NodeGroupRequest,
    spot: bool,
    catalog: Catalog,
    clouds: frozenset[str] | None,
    regions: frozenset[str] | None,
    zones: frozenset[str] | None,
    blocklist: Blocklist,
) -> GroupSearch:
    """Best offer per place for one group.

    Fast path: the catalog's per-(accelerator, count, spot) index maps each place to its priced offers
    sorted by price, so the first offer that fits the shape is the place's best; a place costs O(1) when
    nothing but price matters. Why a cloud has nothing is only worked out (slow path, every offer of that
    cloud) for the clouds that end up with no place.
    """
    s = GroupSearch(g, spot)
    options: Sequence[AcceleratorSpec | None] = g.accelerators or (None,)
    multi = len(options) > 1
    ok = shape_filter(g)
    shaped = needs_shape_check(g)
    best, best_option, per_option, hits = s.best, s.best_option, s.per_option, s.blocked_hits
    blocking = bool(blocklist)
    for idx, opt in enumerate(options):
        rank = s.rank(idx)
        index: PlacementIndex
        if opt is None and g.instance_type is not None:
            index = placement_index(_typed(catalog, g.instance_type, clouds), spot)
        elif opt is None:
            index = catalog.placements(None, None, spot)
        else:
            index = catalog.placements(opt.name, opt.count, spot)
        for place, lst in index.items():
            if clouds is not None and place.cloud not in clouds:
                continue
            if regions is not None and place.region not in regions:
                continue
            if zones is not None and (place.zone or None) not in zones:
                continue
            if shaped:
                for pick in lst:
                    if ok(pick.offer):
                        break
                else:
                    continue
            else:
                pick = lst[0]
            if blocking:
                b = blocklist.blocks(place.cloud, place.region, place.zone or None)
                if b is not None:
                    hits[b] = hits.get(b, 0) + 1
                    continue
            if not multi:
                best[place] = pick  # one option: each place is seen once
                continue
            per_option[(place, idx)] = pick
            cur = best.get(place)
            if cur is None or (rank, pick.price, pick.instance_type) < (
                    s.rank(best_option[place]), cur.price, cur.instance_type):
                best[place] = pick
                best_option[place] = idx
    return s


_NO_RANK: tuple[int, ...] = ()
_OPTION0 = (0,)
# CandidateKey(...) goes through a Python-level __new__; tuple.__new__ builds the same NamedTuple in one
# C call (a third of the cost), which matters here: one key per feasible place and query.
_key = tuple.__new__


def _candidates(searches: list[GroupSearch]) -> list[CandidateKey]:
    """Every place all groups can use (and, for one group with several options, each other option there)."""
    out: list[CandidateKey] = []
    s0 = searches[0]
    if len(searches) == 1 and len(s0.group.accelerators) <= 1:  # the common case, kept tight
        cnt = s0.group.count
        for place, p in s0.best.items():
            cloud, region, zone = place
            out.append(_key(CandidateKey, (_NO_RANK, p.price if cnt == 1 else round(p.price * cnt, 9), cloud,
                                           region, zone, (p.instance_type,), _OPTION0)))
        return out
    common = set(s0.best)
    for s in searches[1:]:
        common &= s.best.keys()
    ordered = [s for s in searches if s.group.ordered]
    single = len(searches) == 1
    for place in common:
        if single:  # one group with several accelerator options
            picks = (s0.best[place],)
            options = (s0.best_option[place],)
            ranks = (s0.rank(options[0]),) if ordered else _NO_RANK
            total = picks[0].price * s0.group.count
        else:
            picks = tuple(s.best[place] for s in searches)
            options = tuple(s.best_option.get(place, 0) for s in searches)
            ranks = tuple(s.rank(s.best_option.get(place, 0)) for s in ordered) if ordered else _NO_RANK
            total = math.fsum(p.price * s.group.count for p, s in zip(picks, searches, strict=True))
        out.append(_key(CandidateKey, (ranks, round(total, 9), place.cloud, place.region, place.zone,
                                       tuple(p.instance_type for p in picks), options)))
        if single:  # the other options of this place are alternatives
            for idx in range(len(s0.group.accelerators)):
                p = s0.per_option.get((place, idx))
                if p is None or idx == options[0]:
                    continue
                r = (s0.rank(idx),) if s0.group.ordered else _NO_RANK
                out.append(_key(CandidateKey, (r, round(p.price * s0.group.count, 9), place.cloud, place.region,
                                               place.zone, (p.instance_type,), (idx,))))
    return out


def _opt_name(g: NodeGroupRequest, idx: int) -> str:
    if not g.accelerators:
        return g.instance_type or "cpu"
    return str(g.accelerators[idx])


def _choice(c: Candidate, searches: list[GroupSearch]) -> Choice:
    nodes = tuple(
        NodeChoice(s.group.name, s.group.count, p.offer, s.spot, p.price, _opt_name(s.group, o))
        for p, o, s in zip(c.picks, c.key.options, searches, strict=True)
    )
    return Choice(c.key.cloud, c.key.region, c.key.zone or None, nodes,
                  math.fsum(n.price_per_node * n.count for n in nodes), c.key.ranks)


def resolve(
    request: Request | Mapping[str, Any] | str,
    catalog: Catalog,
    blocklist: Blocklist | Iterable[Any] = (),
    *,
    top_k: int = 5,
) -> Plan:
    """The cheapest feasible placement of the whole cluster, with up to ``top_k`` alternatives.

    Raises :class:`~styx.model.grammar.RequestError` for a request that cannot be understood (including an
    accelerator no loaded catalog knows). An infeasible request is not an error: ``plan.choice`` is None
    and ``plan.reasons`` says why each cloud was excluded.
    """
    req = validate(parse_request(request), catalog)
    bl = blocklist if isinstance(blocklist, Blocklist) else Blocklist(blocklist)
    clouds = frozenset(req.clouds) if req.clouds else None
    regions = frozenset(req.regions) if req.regions else None
    zones = frozenset(req.zones) if req.zones else None
    active = [g for g in req.groups if g.count > 0]
    searches = [
        search_group(g, req.spot if g.spot is None else g.spot, catalog, clouds, regions, zones, bl) for g in active
    ]
    # one CandidateKey per feasible place; Candidate and Choice objects only for the winner and the alternatives
    keys = _candidates(searches)
    keys.sort()
    choice = _choice(Candidate.of(keys[0], searches), searches) if keys else None
    alternatives: list[Choice] = []
    if keys and top_k > 0:
        seen = {keys[0].alt_key()}
        for k in keys[1:]:
            a = k.alt_key()
            if a in seen:
                continue
            seen.add(a)
            alternatives.append(_choice(Candidate.of(k, searches), searches))
            if len(alternatives) >= top_k:
                break
    feasible = {(k.cloud, k.region) for k in keys}
    excluded = explain.exclusions(req, catalog, searches, feasible, bl, clouds, regions, zones)
    return Plan(req, choice, tuple(alternatives), tuple(excluded), tuple(catalog.warnings), len(keys))
