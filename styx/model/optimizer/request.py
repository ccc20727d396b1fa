"""Requests: what a user asks the optimizer for, parsed and checked (no search here).

:func:`parse_request` turns the YAML/JSON shapes (or a bare ``A100:8``) into a :class:`Request` of
:class:`NodeGroupRequest` groups; accelerators and sizes are parsed by :mod:`styx.model.grammar`, so they mean
the same here as in the stack config. :func:`validate` canonicalises accelerator names against a loaded
catalog and rejects unknown clouds, regions and zones. :class:`Blocklist` is the set of places a
failover excludes. :func:`shape_filter` is the machine-shape predicate of one group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from styx.model.catalog import Catalog, Offer
from styx.model.catalog import gcp as _gcp
from styx.model.grammar import Accelerator, Quantity, RequestError, parse_count, parse_size

if TYPE_CHECKING:
    from .plan import Choice

#: Clouds whose SkyPilot v8 catalogs styx understands (others load with the generic reader).
KNOWN_CLOUDS = ("aws", "azure", "gcp", "lambda")

#: The optimizer's name for a parsed accelerator (the grammar's :class:`~styx.model.grammar.Accelerator`).
AcceleratorSpec = Accelerator

__all__ = [
    "KNOWN_CLOUDS",
    "AcceleratorSpec",
    "Block",
    "Blocklist",
    "NodeGroupRequest",
    "Quantity",
    "Request",
    "RequestError",
    "parse_request",
    "request_from_cluster",
    "shape_filter",
    "validate",
]


# =========================================================================== request types


@dataclass(frozen=True)
class NodeGroupRequest:
    """One group of identical nodes (the head, or a worker group).

    ``accelerators`` are the acceptable accelerator shapes (empty: a CPU-only machine). With
    ``ordered=False`` (any_of) the cheapest wins; with ``ordered=True`` the first one that is feasible
    wins, whatever the price. ``spot=None`` inherits :attr:`Request.spot`. ``instance_type`` pins the
    machine type (the optimizer then only picks where).
    """

    name: str = "head"
    count: int = 1
    accelerators: tuple[AcceleratorSpec, ...] = ()
    ordered: bool = False
    cpus: Quantity | None = None
    memory: Quantity | None = None
    spot: bool | None = None
    instance_type: str | None = None

    def describe(self) -> str:
        parts = []
        if self.accelerators:
            accs = [str(a) for a in self.accelerators]
            if len(accs) == 1:
                parts.append(accs[0])
            else:
                inner = ", ".join(accs)
                parts.append(f"ordered[{inner}]" if self.ordered else f"any_of{{{inner}}}")
        if self.instance_type:
            parts.append(self.instance_type)
        if self.cpus:
            parts.append(self.cpus.describe("cpus"))
        if self.memory:
            parts.append(self.memory.describe("memory"))
        return ", ".join(parts) or "any machine"

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "count": self.count}
        if self.accelerators:
            key = "ordered" if self.ordered else ("any_of" if len(self.accelerators) > 1 else "accelerators")
            accs = [str(a) for a in self.accelerators]
            d[key] = accs if key != "accelerators" else accs[0]
        if self.cpus:
            d["cpus"] = str(self.cpus)
        if self.memory:
            d["memory"] = str(self.memory)
        if self.spot is not None:
            d["spot"] = self.spot
        if self.instance_type:
            d["instance_type"] = self.instance_type
        return d


@dataclass(frozen=True)
class Request:
    """A whole cluster: node groups that must share one cloud, region and zone."""

    groups: tuple[NodeGroupRequest, ...]
    spot: bool = False
    clouds: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()

    @classmethod
    def single(
        cls,
        accelerators: Any = None,
        *,
        cpus: Any = None,
        memory: Any = None,
        spot: bool = False,
        clouds: Iterable[str] | str | None = None,
        regions: Iterable[str] | str | None = None,
        zones: Iterable[str] | str | None = None,
        any_of: Iterable[Any] | None = None,
        ordered: Iterable[Any] | None = None,
        num_nodes: int = 1,
        instance_type: str | None = None,
    ) -> Request:
        """One group of ``num_nodes`` identical nodes, e.g. ``Request.single("A100:8", cpus="8+")``."""
        d: dict[str, Any] = {"accelerators": accelerators, "cpus": cpus, "memory": memory, "spot": spot,
                             "any_of": list(any_of) if any_of else None,
                             "ordered": list(ordered) if ordered else None, "num_nodes": num_nodes,
                             "instance_type": instance_type, "clouds": clouds, "regions": regions, "zones": zones}
        return parse_request({k: v for k, v in d.items() if v is not None})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Request:
        return parse_request(d)

    def describe(self) -> str:
        active = [g for g in self.groups if g.count > 0]
        parts = []
        for g in active:
            s = g.describe()
            if len(active) > 1 or g.count != 1:
                s = f"{g.count}x {s}" if len(active) == 1 else f"{g.name}: {g.count}x {s}"
            if g.spot is not None and g.spot != self.spot:
                s += ", spot" if g.spot else ", on-demand"
            parts.append(s)
        out = "; ".join(parts)
        if self.spot:
            out += " (spot)"
        return out

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"groups": [g.to_dict() for g in self.groups], "spot": self.spot}
        if self.clouds:
            d["clouds"] = list(self.clouds)
        if self.regions:
            d["regions"] = list(self.regions)
        if self.zones:
            d["zones"] = list(self.zones)
        return d


# =========================================================================== parsing dicts

_GROUP_KEYS = ("name", "count", "num_nodes", "accelerators", "any_of", "ordered", "cpus", "memory", "spot",
               "instance_type", "resources")
_TOP_KEYS = ("cloud", "clouds", "region", "regions", "zone", "zones", "spot", "head", "workers", "groups")


def _strs(field: str, v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        items = [p for p in re.split(r"[,\s]+", v) if p]
    elif isinstance(v, Iterable):
        items = list(v)
    else:
        raise RequestError(field, f"{v!r} is not a name or a list of names")
    out = []
    for x in items:
        if not isinstance(x, str) or not x.strip():
            raise RequestError(field, f"{x!r} is not a name")
        if x.strip() not in out:
            out.append(x.strip())
    return tuple(out)


def _check_keys(where: str, d: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for k in d:
        if k not in allowed:
            import difflib

            close = difflib.get_close_matches(str(k), list(allowed), n=3)
            raise RequestError(f"{where}{k}" if where else str(k), "unknown field", allowed=", ".join(allowed),
                               suggestions=close)


def _acc_options(field: str, v: Any) -> tuple[tuple[AcceleratorSpec, ...], bool]:
    """(options, ordered) from ``A100:8`` | ``{A100: 8}`` | ``{A100:8, H100:8}`` (set) | ``[H100:8, A100:8]``."""
    if v is None:
        return (), False
    if isinstance(v, (str, AcceleratorSpec)):
        return (AcceleratorSpec.parse(v, field),), False
    if isinstance(v, Mapping):
        out = []
        for k, cnt in v.items():
            if cnt is None:  # YAML `{A100:8, H100:8}` parses to keys with null values: a set
                out.append(AcceleratorSpec.parse(k, field))
            else:
                spec = AcceleratorSpec.parse(k, field)
                if ":" in str(k):
                    raise RequestError(field, f"{k!r}: give the count once (either {k} or {spec.name}: N)")
                out.append(AcceleratorSpec(spec.name, parse_count(f"{k}: {cnt}", cnt, field)))
        return _dedupe(field, out), False
    if isinstance(v, (set, frozenset)):
        return _dedupe(field, sorted((AcceleratorSpec.parse(x, field) for x in v), key=str)), False
    if isinstance(v, (list, tuple)):
        return _dedupe(field, [AcceleratorSpec.parse(x, field) for x in v]), True
    raise RequestError(field, f"{v!r} is not an accelerator", allowed="NAME:COUNT, a set or a list of them")


def _dedupe(field: str, specs: Iterable[AcceleratorSpec]) -> tuple[AcceleratorSpec, ...]:
    out: list[AcceleratorSpec] = []
    seen = set()
    for s in specs:
        k = (s.name.lower(), float(s.count))
        if k not in seen:
            seen.add(k)
            out.append(s)
    if not out:
        raise RequestError(field, "is empty", allowed="at least one NAME:COUNT")
    return tuple(out)


def _parse_group(d: Mapping[str, Any], *, default_name: str, where: str = "") -> NodeGroupRequest:
    if not isinstance(d, Mapping):
        raise RequestError(where.rstrip(".") or "group", f"{d!r} is not a mapping")
    _check_keys(where, d, _GROUP_KEYS)
    d = dict(d)
    res = d.pop("resources", None)
    if res is not None:  # styx config shape: {instance_type: auto, resources: {...}, spot}
        if not isinstance(res, Mapping):
            raise RequestError(f"{where}resources", f"{res!r} is not a mapping")
        _check_keys(f"{where}resources.", res, ("accelerators", "any_of", "ordered", "cpus", "memory"))
        for k, v in res.items():
            if d.get(k) is not None:
                raise RequestError(f"{where}{k}", "given both here and under resources")
            d[k] = v
    if d.get("instance_type") == "auto":
        d["instance_type"] = None
    name = d.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise RequestError(f"{where}name", f"{name!r} is not a group name")
    if d.get("count") is not None and d.get("num_nodes") is not None:
        raise RequestError(f"{where}num_nodes", "give either count or num_nodes")
    count = d.get("count", d.get("num_nodes", 1))
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        try:
            ok = not isinstance(count, bool) and int(str(count)) >= 0
        except ValueError:
            ok = False
        if not ok:
            raise RequestError(f"{where}count", f"{count!r} is not a node count", allowed="an integer >= 0")
        count = int(str(count))
    options, ordered = _acc_options(f"{where}accelerators", d.get("accelerators"))
    if d.get("any_of") is not None:
        if d.get("ordered") is not None:
            raise RequestError(f"{where}ordered", "cannot be combined with any_of")
        extra, _ = _acc_options(f"{where}any_of", list(_as_list(f"{where}any_of", d["any_of"])))
        if ordered and len(options) > 1:
            raise RequestError(f"{where}any_of", "cannot be combined with an ordered accelerators list")
        options, ordered = _dedupe(f"{where}any_of", list(options) + list(extra)), False
    if d.get("ordered") is not None:
        if options:
            raise RequestError(f"{where}ordered", "cannot be combined with accelerators; list them all in ordered")
        options, _ = _acc_options(f"{where}ordered", list(_as_list(f"{where}ordered", d["ordered"])))
        ordered = True
    if len(options) <= 1:
        ordered = False
    spot = d.get("spot")
    if spot is not None and not isinstance(spot, bool):
        raise RequestError(f"{where}spot", f"{spot!r} is not true/false")
    it = d.get("instance_type")
    if it is not None and (not isinstance(it, str) or not it.strip()):
        raise RequestError(f"{where}instance_type", f"{it!r} is not an instance type")
    return NodeGroupRequest(
        name=name,
        count=count,
        accelerators=options,
        ordered=ordered,
        cpus=parse_size(d.get("cpus"), f"{where}cpus"),
        memory=parse_size(d.get("memory"), f"{where}memory"),
        spot=spot,
        instance_type=it.strip() if it else None,
    )


def _as_list(field: str, v: Any) -> Iterable[Any]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, Mapping):
        return [k if c is None else f"{k}:{c}" for k, c in v.items()]
    if isinstance(v, Iterable):
        return list(v)
    raise RequestError(field, f"{v!r} is not a list of accelerators")


def parse_request(d: Mapping[str, Any] | Request | str) -> Request:
    """A :class:`Request` from a mapping (YAML/JSON shape) or an accelerator string.

    Shapes accepted::

        {accelerators: A100:8, cpus: 8+, memory: 64+, spot: true, clouds: [aws, gcp],
         regions: [us-east-1], any_of: [H100:8], num_nodes: 2}
        {head: {...group...}, workers: [{name: w, count: 4, accelerators: H100:8}], cloud: gcp}
        {groups: [{name: head, count: 1, ...}, ...]}

    Group keys: name, count (or num_nodes), accelerators, any_of, ordered, cpus, memory, spot,
    instance_type (``auto`` = let the optimizer pick), resources (styx config's nested form).
    """
    if isinstance(d, Request):
        return d
    if isinstance(d, str):
        d = {"accelerators": d}
    if not isinstance(d, Mapping):
        raise RequestError("request", f"{d!r} is not a mapping")
    top = {k: v for k, v in d.items() if k in _TOP_KEYS}
    rest = {k: v for k, v in d.items() if k not in _TOP_KEYS}
    structured = any(k in d for k in ("head", "workers", "groups"))
    if structured:
        _check_keys("", rest, ())
    else:
        _check_keys("", rest, _GROUP_KEYS)
    for single, plural in (("cloud", "clouds"), ("region", "regions"), ("zone", "zones")):
        if top.get(single) is not None and top.get(plural) is not None:
            raise RequestError(plural, f"give either {single} or {plural}")
    spot = top.get("spot", False)
    if not isinstance(spot, bool):
        raise RequestError("spot", f"{spot!r} is not true/false")
    groups: list[NodeGroupRequest] = []
    if structured:
        if "groups" in d and ("head" in d or "workers" in d):
            raise RequestError("groups", "give either groups or head/workers")
        if "groups" in d:
            gl = d["groups"]
            if not isinstance(gl, Sequence) or isinstance(gl, str) or not gl:
                raise RequestError("groups", "must be a non-empty list of node groups")
            for i, g in enumerate(gl):
                groups.append(_parse_group(g, default_name=f"group{i}", where=f"groups[{i}]."))
        else:
            groups.append(_parse_group(d.get("head") or {}, default_name="head", where="head."))
            wl = d.get("workers") or []
            if not isinstance(wl, Sequence) or isinstance(wl, str):
                raise RequestError("workers", "must be a list of worker groups")
            for i, g in enumerate(wl):
                groups.append(_parse_group(g, default_name="worker" if len(wl) == 1 else f"worker{i}",
                                           where=f"workers[{i}]."))
    else:
        rest.pop("spot", None)
        groups.append(_parse_group(rest, default_name="head"))
    names = [g.name for g in groups]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RequestError("groups", f"group names must be unique; repeated: {dup}")
    if not any(g.count > 0 for g in groups):
        raise RequestError("count", "the cluster has no nodes", allowed="at least one group with count >= 1")
    return Request(
        groups=tuple(groups),
        spot=spot,
        clouds=tuple(c.lower() for c in _strs("clouds", top.get("clouds", top.get("cloud")))),
        regions=_strs("regions", top.get("regions", top.get("region"))),
        zones=_strs("zones", top.get("zones", top.get("zone"))),
    )


def request_from_cluster(cfg: Any) -> Request:
    """A :class:`Request` from a styx ``ClusterConfig``-like object (duck-typed; no import of it).

    Nodes with ``instance_type: auto`` become optimized groups; nodes with a fixed instance type are
    pinned groups (so the region/zone still has to offer them); the cluster's ``cloud``, ``region``
    and ``zone`` become filters.
    """

    def group(name: str, spec: Any, count: int) -> dict:
        g: dict[str, Any] = {"name": name, "count": count, "spot": bool(getattr(spec, "spot", False))}
        it = getattr(spec, "instance_type", None)
        res = getattr(spec, "resources", None)
        if it and it != "auto":
            g["instance_type"] = it
        if res is not None:
            for k in ("accelerators", "any_of", "ordered", "cpus", "memory"):
                v = getattr(res, k, None)
                if v is not None:
                    g[k] = v
        return g

    groups = [group("head", cfg.head, 1)]
    for w in getattr(cfg, "workers", None) or []:
        groups.append(group(w.name, w, int(w.count or 0)))
    d: dict[str, Any] = {"groups": groups}
    if getattr(cfg, "cloud", None):
        d["clouds"] = [cfg.cloud]
    if getattr(cfg, "region", None):
        d["regions"] = [cfg.region]
    zone = getattr(cfg, "zone", None) or getattr(cfg.head, "zone", None)
    if zone:
        d["zones"] = [zone]
    return parse_request(d)


# =========================================================================== blocklist


@dataclass(frozen=True)
class Block:
    """Exclude a whole cloud, a region of it, or one zone (e.g. after a capacity error)."""

    cloud: str
    region: str | None = None
    zone: str | None = None

    @classmethod
    def parse(cls, v: Any) -> Block:
        if isinstance(v, Block):
            return v
        if isinstance(v, str):
            parts = [p or None for p in v.strip().split("/")]
            if not parts or not parts[0] or len(parts) > 3:
                raise RequestError("blocklist", f"{v!r} is not CLOUD[/REGION[/ZONE]]")
            return cls(parts[0].lower(), *(parts[1:] + [None] * (3 - len(parts))))  # type: ignore[arg-type]
        if isinstance(v, Mapping):
            return cls(str(v["cloud"]).lower(), v.get("region"), v.get("zone"))
        if isinstance(v, Sequence) and 1 <= len(v) <= 3 and v[0]:
            t = list(v) + [None] * (3 - len(v))
            return cls(str(t[0]).lower(), t[1], t[2])
        raise RequestError("blocklist", f"{v!r} is not (cloud, region|None, zone|None)")

    def __str__(self) -> str:
        return "/".join(x for x in (self.cloud, self.region, self.zone) if x)


class Blocklist:
    """A set of :class:`Block` entries with O(1) matching. Immutable; ``with_choice`` returns a new one."""

    __slots__ = ("_clouds", "_regions", "_zones", "entries")

    def __init__(self, entries: Iterable[Any] = ()):
        self.entries: tuple[Block, ...] = tuple(dict.fromkeys(Block.parse(e) for e in entries))
        self._clouds = {b.cloud for b in self.entries if b.region is None and b.zone is None}
        self._regions = {(b.cloud, b.region) for b in self.entries if b.region is not None and b.zone is None}
        self._zones = {(b.cloud, b.zone) for b in self.entries if b.zone is not None}

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def blocks(self, cloud: str, region: str, zone: str | None) -> Block | None:
        if cloud in self._clouds:
            return Block(cloud)
        if (cloud, region) in self._regions:
            return Block(cloud, region)
        if zone is not None and (cloud, zone) in self._zones:
            return Block(cloud, region, zone)
        return None

    def with_choice(self, choice: Choice, scope: str = "zone") -> Blocklist:
        """Add the place of ``choice`` (scope ``zone``, ``region`` or ``cloud``) for a failover."""
        if scope not in ("zone", "region", "cloud"):
            raise ValueError("scope must be zone, region or cloud")
        if scope == "cloud":
            b = Block(choice.cloud)
        elif scope == "region" or choice.zone is None:
            b = Block(choice.cloud, choice.region)
        else:
            b = Block(choice.cloud, choice.region, choice.zone)
        return Blocklist((*self.entries, b))


# =========================================================================== checked against a catalog


def validate(req: Request, catalog: Catalog) -> Request:
    """Canonicalise accelerator names against the catalog; unknown names, clouds, regions are errors."""
    import difflib  # error paths only
    known_clouds = sorted(set(KNOWN_CLOUDS) | set(catalog.clouds))
    for c in req.clouds:
        if c not in known_clouds:
            raise RequestError("clouds", f"unknown cloud {c!r}", allowed=", ".join(known_clouds),
                               suggestions=difflib.get_close_matches(c, known_clouds, n=3))
    if req.regions:
        allr = catalog.regions()
        for r in req.regions:
            if r not in allr:
                raise RequestError("region", f"no catalog has region {r!r}",
                                   suggestions=difflib.get_close_matches(r, sorted(allr), n=3, cutoff=0.6))
    if req.zones:
        allz = catalog.zones()
        for z in req.zones:
            if z not in allz:
                raise RequestError("zone", f"no catalog has zone {z!r}",
                                   suggestions=difflib.get_close_matches(z, sorted(allz), n=3, cutoff=0.6))
    groups = []
    changed = False
    for g in req.groups:
        accs = []
        for a in g.accelerators:
            canon = catalog.canonical_accelerator(a.name)
            if canon is None:
                field_name = "accelerators" if len(req.groups) == 1 else f"{g.name}.accelerators"
                raise RequestError(field_name, f"unknown accelerator {a.name!r}",
                                   allowed="a GPU listed by `styx show-gpus`",
                                   suggestions=catalog.suggest_accelerators(a.name))
            if canon != a.name:
                changed = True
                a = AcceleratorSpec(canon, a.count)
            accs.append(a)
        groups.append(g if not changed else NodeGroupRequest(g.name, g.count, tuple(accs), g.ordered, g.cpus,
                                                             g.memory, g.spot, g.instance_type))
    return Request(tuple(groups), req.spot, req.clouds, req.regions, req.zones) if changed else req


def shape_filter(g: NodeGroupRequest):
    """A predicate for the machine shape: pinned type, cpus, memory, default host size for attached GPUs."""
    cpus, memory, it = g.cpus, g.memory, g.instance_type
    mem_per_cpu = _gcp.DEFAULT_MEMORY_PER_CPU

    def ok(o: Offer) -> bool:
        if it is not None and o.instance_type != it:
            return False
        if o.attached and cpus is None and memory is None:
            need = _gcp.n1_default_min_cpus(o.accelerator or "", o.accelerator_count)
            if (o.vcpus or 0) < need or (o.memory_gib or 0) < need * mem_per_cpu:
                return False
        if cpus is not None and not cpus.ok(o.vcpus):
            return False
        if memory is not None:
            return memory.ok(o.memory_gib, o.vcpus)
        return not (o.attached and cpus is not None and (o.memory_gib or 0) < cpus.value * mem_per_cpu)

    return ok


def needs_shape_check(g: NodeGroupRequest) -> bool:
    """False when only price matters (the placement's cheapest offer wins): no cpus, memory, pinned type,
    or attached GPU (GCP N1 hosts always get a host-size check)."""
    return g.cpus is not None or g.memory is not None or g.instance_type is not None or any(
        _gcp.is_attachable(a.name) for a in g.accelerators
    )
