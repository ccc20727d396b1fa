"""Resource optimizer: the cheapest (cloud, region, zone, instance type, spot) for a cluster.

A user asks for resources (``accelerators: A100:8``, ``cpus: 8+``, ``memory: 64+``, ``spot: true``),
optionally a set of acceptable accelerators (``any_of``: cheapest wins) or a preference list
(``ordered``: the first feasible one wins), limited to some clouds/regions/zones. :func:`resolve`
answers with a :class:`Plan`: the cheapest feasible :class:`Choice`, the next-cheapest alternatives,
and the reason each other cloud/region was excluded.

Semantics (SkyPilot's, so the answers agree):

* ``cpus``/``memory``: ``N`` means exactly N, ``N+`` at least N; memory is GiB, and ``Nx`` means at
  least N GiB per vCPU.
* ``A100`` means ``A100:1``; names match case-insensitively (``a100`` -> ``A100``).
* Prices are $/hour per node; the cluster's price is the sum over node groups of count x price.
* A cluster is placed in ONE cloud, ONE region and, where the cloud has zones (AWS, GCP), ONE zone:
  Ray needs a private network between the nodes, and keeping GPU nodes in one zone keeps
  placement groups, capacity reservations and inter-node traffic simple. Clouds without zones in
  their catalog (Lambda, Azure) are placed per region (``zone`` is None). AWS zones are zone IDs
  (``use1-az4``).
* Ties are broken deterministically by (price, cloud, region, zone, instance types).
* Spot: an offer without a spot price is not available as spot (Lambda has no spot at all);
  empty, zero and sentinel prices mean unavailable, never free.

Plain dataclasses in and out, standard library only: no Pulumi, no pydantic, no pandas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from styx.catalog import Catalog, Offer
from styx.catalog import gcp as _gcp
from styx.catalog.loader import placement_index
from styx.catalog.model import format_count

__all__ = [
    "KNOWN_CLOUDS",
    "AcceleratorSpec",
    "Block",
    "Blocklist",
    "Choice",
    "Exclusion",
    "NodeChoice",
    "NodeGroupRequest",
    "Plan",
    "Quantity",
    "Request",
    "RequestError",
    "parse_request",
    "request_from_cluster",
    "resolve",
]

#: Clouds whose SkyPilot v8 catalogs styx understands (others load with the generic reader).
KNOWN_CLOUDS = ("aws", "azure", "gcp", "lambda")

_EPS = 1e-9


# =========================================================================== errors


class RequestError(ValueError):
    """A request that cannot be understood. ``field`` names the offending field."""

    def __init__(self, field: str, message: str, *, allowed: str | None = None, suggestions: Sequence[str] = ()):
        self.field = field
        self.allowed = allowed
        self.suggestions = list(suggestions)
        text = f"{field}: {message}"
        if allowed:
            text += f" (allowed: {allowed})"
        if self.suggestions:
            text += f"; did you mean {', '.join(self.suggestions)}?"
        super().__init__(text)


# =========================================================================== request types


_QTY_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([+x]?)\s*$")


@dataclass(frozen=True)
class Quantity:
    """``cpus``/``memory``: ``8`` (exactly), ``8+`` (at least), memory ``4x`` (>= 4 GiB per vCPU)."""

    value: float
    at_least: bool = False
    per_cpu: bool = False

    @classmethod
    def parse(cls, field: str, raw: Any) -> Quantity | None:
        if raw is None:
            return None
        if isinstance(raw, Quantity):
            return raw
        allowed = "N (exactly N) or N+ (at least N)"
        if field.endswith("memory"):
            allowed += ", or Nx (at least N GiB per vCPU)"
        if isinstance(raw, bool):
            raise RequestError(field, f"{raw!r} is not a number", allowed=allowed)
        if isinstance(raw, (int, float)):
            text = repr(raw)
            value, suffix = float(raw), ""
        else:
            text = str(raw)
            m = _QTY_RE.match(text)
            if not m:
                raise RequestError(field, f"{text!r} is not a size", allowed=allowed)
            value, suffix = float(m.group(1)), m.group(2)
        if suffix == "x" and not field.endswith("memory"):
            raise RequestError(field, f"{text!r}: the 'x' suffix is only for memory", allowed=allowed)
        if not math.isfinite(value) or value <= 0:
            raise RequestError(field, f"{text!r} must be greater than 0", allowed=allowed)
        return cls(value, at_least=suffix in ("+", "x"), per_cpu=suffix == "x")

    def ok(self, v: float | None, vcpus: float | None = None) -> bool:
        if v is None:
            return False
        target = self.value * (vcpus or 0.0) if self.per_cpu else self.value
        if self.at_least:
            return v >= target - _EPS
        return abs(v - target) <= 1e-6

    def __str__(self) -> str:
        n = format_count(self.value)
        return f"{n}x" if self.per_cpu else (f"{n}+" if self.at_least else n)

    def describe(self, field: str) -> str:
        n = format_count(self.value)
        if self.per_cpu:
            return f"{field}>={n}GiB/vCPU"
        return f"{field}>={n}" if self.at_least else f"{field}={n}"


_ACC_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(?::\s*([^\s]*)\s*)?$")


@dataclass(frozen=True)
class AcceleratorSpec:
    name: str
    count: int | float = 1

    @classmethod
    def parse(cls, raw: Any, field: str = "accelerators") -> AcceleratorSpec:
        if isinstance(raw, AcceleratorSpec):
            return raw
        allowed = "NAME or NAME:COUNT with COUNT >= 1, e.g. A100:8"
        if not isinstance(raw, str):
            raise RequestError(field, f"{raw!r} is not an accelerator", allowed=allowed)
        m = _ACC_RE.match(raw)
        if not m:
            raise RequestError(field, f"{raw!r} is not an accelerator", allowed=allowed)
        name, cnt = m.group(1), m.group(2)
        return cls(name, _parse_acc_count(field, raw, cnt if cnt is not None else 1))

    def __str__(self) -> str:
        return f"{self.name}:{format_count(self.count)}"


def _parse_acc_count(field: str, raw: Any, cnt: Any) -> int | float:
    allowed = "NAME or NAME:COUNT with COUNT >= 1, e.g. A100:8"
    if isinstance(cnt, bool):
        raise RequestError(field, f"{raw!r}: the count must be a number", allowed=allowed)
    try:
        v = float(cnt)
    except (TypeError, ValueError):
        raise RequestError(field, f"{raw!r}: the count {cnt!r} is not a number", allowed=allowed) from None
    if not math.isfinite(v) or v <= 0:
        raise RequestError(field, f"{raw!r}: the count must be greater than 0", allowed=allowed)
    return int(v) if v.is_integer() else v


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
                out.append(AcceleratorSpec(spec.name, _parse_acc_count(field, f"{k}: {cnt}", cnt)))
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
        cpus=Quantity.parse(f"{where}cpus", d.get("cpus")),
        memory=Quantity.parse(f"{where}memory", d.get("memory")),
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


# =========================================================================== results


@dataclass(frozen=True)
class NodeChoice:
    group: str
    count: int
    offer: Offer
    spot: bool
    price_per_node: float
    option: str  # the accelerator option that won (``A100:8``), or ``cpu``

    def to_dict(self) -> dict:
        o = self.offer
        return {
            "group": self.group,
            "count": self.count,
            "instance_type": o.instance_type,
            "accelerators": o.accelerators,
            "vcpus": o.vcpus,
            "memory_gib": o.memory_gib,
            "spot": self.spot,
            "price_per_node": round(self.price_per_node, 6),
            "price_per_hour": round(self.price_per_node * self.count, 6),
        }


@dataclass(frozen=True)
class Choice:
    """Where and what to launch for the whole cluster. ``price_per_hour`` is the cluster's total."""

    cloud: str
    region: str
    zone: str | None
    nodes: tuple[NodeChoice, ...]
    price_per_hour: float
    rank: tuple[int, ...] = ()

    @property
    def head(self) -> NodeChoice:
        return self.nodes[0]

    @property
    def instance_type(self) -> str:
        return self.head.offer.instance_type

    @property
    def accelerators(self) -> str | None:
        return self.head.offer.accelerators

    @property
    def spot(self) -> bool:
        return self.head.spot

    def node(self, group: str) -> NodeChoice:
        for n in self.nodes:
            if n.group == group:
                return n
        raise KeyError(group)

    def key(self) -> tuple:
        return (self.rank, round(self.price_per_hour, 9), self.cloud, self.region, self.zone or "",
                tuple(n.offer.instance_type for n in self.nodes))

    def to_dict(self) -> dict:
        return {
            "cloud": self.cloud,
            "region": self.region,
            "zone": self.zone,
            "instance_type": self.instance_type,
            "spot": self.spot,
            "accelerators": self.accelerators,
            "price_per_hour": round(self.price_per_hour, 6),
            "nodes": [n.to_dict() for n in self.nodes],
        }


@dataclass(frozen=True)
class Exclusion:
    cloud: str
    reason: str
    region: str | None = None
    zone: str | None = None

    def __str__(self) -> str:
        where = "/".join(x for x in (self.cloud, self.region, self.zone) if x)
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict:
        return {"cloud": self.cloud, "region": self.region, "zone": self.zone, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    request: Request
    choice: Choice | None
    alternatives: tuple[Choice, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    warnings: tuple[str, ...] = ()
    feasible_count: int = field(default=0, compare=False)

    @property
    def reasons(self) -> list[str]:
        return [str(e) for e in self.excluded]

    def to_dict(self) -> dict:
        """JSON-serialisable: choice (or None), alternatives, reasons, excluded, warnings, request."""
        return {
            "choice": self.choice.to_dict() if self.choice else None,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "reasons": self.reasons,
            "excluded": [e.to_dict() for e in self.excluded],
            "warnings": list(self.warnings),
            "request": self.request.to_dict(),
        }


# =========================================================================== resolve


def _validate(req: Request, catalog: Catalog) -> Request:
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


# stages an offer passes, for the "why was this cloud excluded" message
_S_LOCATION, _S_SHAPE, _S_PRICE, _S_UNBLOCKED = 1, 2, 3, 4


class _GroupSearch:
    """Best offer per placement (and per option) for one node group."""

    __slots__ = ("best", "blocked_hits", "group", "per_option", "spot", "stage")

    def __init__(self, group: NodeGroupRequest, spot: bool):
        self.group = group
        self.spot = spot
        # placement -> (rank, price, instance_type, offer, option index)
        self.best: dict[tuple[str, str, str], tuple] = {}
        self.per_option: dict[tuple[tuple[str, str, str], int], tuple] = {}
        self.stage: dict[tuple[str, int], int] = {}  # (cloud, option index) -> furthest stage reached
        self.blocked_hits: dict[Block, int] = {}


def _shape_filter(g: NodeGroupRequest):
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


def _search_group(
    g: NodeGroupRequest,
    spot: bool,
    catalog: Catalog,
    clouds: frozenset[str] | None,
    regions: frozenset[str] | None,
    zones: frozenset[str] | None,
    blocklist: Blocklist,
) -> _GroupSearch:
    """Best offer per placement for one group.

    Fast path: the catalog's per-(accelerator, count, spot) index maps each placement to its priced offers
    sorted by price, so the first offer that fits the shape is the placement's best; a placement costs
    O(1) when nothing but price matters. Why a cloud has nothing is only worked out (slow path, every offer
    of that cloud) for the clouds that end up with no placement.
    """
    s = _GroupSearch(g, spot)
    options: Sequence[AcceleratorSpec | None] = g.accelerators or (None,)
    ok = _shape_filter(g)
    best, per_option = s.best, s.per_option
    hits = s.blocked_hits
    # attached GPUs (GCP N1) always get a host-size check, so only CPU-/GPU-plain requests skip it
    shaped = g.cpus is not None or g.memory is not None or g.instance_type is not None or any(
        o is not None and _gcp.N1_ATTACHABLE.get(o.name) is not None for o in options
    )
    for idx, opt in enumerate(options):
        rank = idx if g.ordered else 0
        if opt is None and g.instance_type is not None:
            index = placement_index(_typed(catalog, g.instance_type, clouds), spot)
        elif opt is None:
            index = catalog.placements(None, None, spot)
        else:
            index = catalog.placements(opt.name, opt.count, spot)
        for place, lst in index.items():
            cloud, region, zone = place
            if clouds is not None and cloud not in clouds:
                continue
            if regions is not None and region not in regions:
                continue
            if zones is not None and (zone or None) not in zones:
                continue
            if shaped:
                for t in lst:
                    if ok(t[2]):
                        break
                else:
                    continue
            else:
                t = lst[0]
            if blocklist:
                b = blocklist.blocks(cloud, region, zone or None)
                if b is not None:
                    hits[b] = hits.get(b, 0) + 1
                    continue
            cand = (rank, t[0], t[1], t[2], idx)
            cur = best.get(place)
            if cur is None or cand[:3] < cur[:3]:
                best[place] = cand
            per_option[(place, idx)] = cand
    return s


def _stages(g: NodeGroupRequest, spot: bool, catalog: Catalog, cloud: str, regions, zones, blocklist) -> dict:
    """(cloud, option index) -> the furthest filter stage any offer of the cloud passed (for messages)."""
    stage: dict[tuple[str, int], int] = {}
    ok = _shape_filter(g)
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
            st = max(st, _S_LOCATION)
            if ok(o):
                st = max(st, _S_SHAPE)
                if (o.spot_price if spot else o.price) is not None:
                    st = max(st, _S_PRICE)
                    if not (blocklist and blocklist.blocks(cloud, o.region, o.zone)):
                        st = _S_UNBLOCKED
            stage[sk] = st
            if st == _S_UNBLOCKED:
                break
    return stage


def _typed(catalog: Catalog, instance_type: str, clouds: frozenset[str] | None) -> list[Offer]:
    out: list[Offer] = []
    for c in (clouds if clouds is not None else catalog.clouds):
        out.extend(catalog.offers_of_type(c, instance_type))
    return out


def _reason_for(g: NodeGroupRequest, gs: _GroupSearch, cloud: str, catalog: Catalog, req: Request) -> str:
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
        elif st < _S_LOCATION:
            where = ", ".join([*req.regions, *req.zones])
            msgs.append(f"no {what} offer in {where}")
        elif st < _S_SHAPE:
            cons = [q.describe(n) for n, q in (("cpus", g.cpus), ("memory", g.memory)) if q is not None]
            tail = " and ".join(cons) if cons else "a default-sized host"
            msgs.append(f"no offer with {what} and {tail}")
        elif st < _S_PRICE:
            msgs.append(f"no {'spot' if gs.spot else 'on-demand'} offer with {what}")
        elif st < _S_UNBLOCKED:
            msgs.append(f"every offer with {what} is blocked")
        else:
            msgs.append(f"{what} is offered")
    return "; ".join(msgs)


def resolve(
    request: Request | Mapping[str, Any] | str,
    catalog: Catalog,
    blocklist: Blocklist | Iterable[Any] = (),
    *,
    top_k: int = 5,
) -> Plan:
    """The cheapest feasible placement of the whole cluster, with up to ``top_k`` alternatives.

    Raises :class:`RequestError` for a request that cannot be understood (including an accelerator
    no loaded catalog knows). An infeasible request is not an error: ``plan.choice`` is None and
    ``plan.reasons`` says why each cloud was excluded.
    """
    req = _validate(parse_request(request), catalog)
    bl = blocklist if isinstance(blocklist, Blocklist) else Blocklist(blocklist)
    clouds = frozenset(req.clouds) if req.clouds else None
    regions = frozenset(req.regions) if req.regions else None
    zones = frozenset(req.zones) if req.zones else None
    active = [g for g in req.groups if g.count > 0]
    searches = [
        _search_group(g, req.spot if g.spot is None else g.spot, catalog, clouds, regions, zones, bl) for g in active
    ]

    # ---- candidate solutions: placements every group can use. Keys first (cheap tuples);
    # Choice objects are only built for the winner and the alternatives shown.
    cands: list[tuple] = []  # (sort key, place, picks)
    if len(searches) == 1 and len(active[0].accelerators) <= 1:  # the common case, kept tight
        s0 = searches[0]
        cnt = s0.group.count
        for place, p in s0.best.items():
            cands.append((((), p[1] if cnt == 1 else round(p[1] * cnt, 9), place[0], place[1], place[2], (p[2],)),
                          place, (p,)))
        common: set = set()
    else:
        common = set(searches[0].best)
        for s in searches[1:]:
            common &= s.best.keys()
    any_ordered = any(s.group.ordered for s in searches)
    for place in common:
        picks = tuple(s.best[place] for s in searches)
        rank = tuple(p[0] for p, s in zip(picks, searches, strict=True) if s.group.ordered) if any_ordered else ()
        if len(picks) == 1:
            total = picks[0][1] * searches[0].group.count
        else:
            total = math.fsum(p[1] * s.group.count for p, s in zip(picks, searches, strict=True))
        types = tuple(p[2] for p in picks)
        cands.append(((rank, round(total, 9), place[0], place[1], place[2], types), place, picks))
        if len(searches) == 1 and len(active[0].accelerators) > 1:
            s = searches[0]
            for idx in range(len(active[0].accelerators)):
                p = s.per_option.get((place, idx))
                if p is None or p[4] == picks[0][4]:
                    continue
                r = (p[0],) if s.group.ordered else ()
                key = (r, round(p[1] * s.group.count, 9), place[0], place[1], place[2], (p[2],))
                cands.append((key, place, (p,)))
    cands.sort(key=lambda c: c[0])

    def build(c: tuple) -> Choice:
        key, place, picks = c
        nodes = tuple(
            NodeChoice(s.group.name, s.group.count, p[3], s.spot, p[1], _opt_name(s.group, p[4]))
            for p, s in zip(picks, searches, strict=True)
        )
        return Choice(place[0], place[1], place[2] or None, nodes, math.fsum(n.price_per_node * n.count
                                                                             for n in nodes), key[0])

    choice = build(cands[0]) if cands else None
    alternatives: list[Choice] = []
    if cands and top_k > 0:
        seen = {_alt_key(cands[0])}
        for c in cands[1:]:
            k = _alt_key(c)
            if k in seen:
                continue
            seen.add(k)
            alternatives.append(build(c))
            if len(alternatives) >= top_k:
                break

    feasible = {(c[1][0], c[1][1]) for c in cands}
    excluded = _exclusions(req, catalog, searches, feasible, bl, clouds, regions, zones)
    return Plan(req, choice, tuple(alternatives), tuple(excluded), tuple(catalog.warnings), len(cands))


def _opt_name(g: NodeGroupRequest, idx: int) -> str:
    if not g.accelerators:
        return g.instance_type or "cpu"
    return str(g.accelerators[idx])


def _alt_key(c: tuple) -> tuple:
    """Alternatives differ in cloud, instance types or price: the zones of a region, and the regions of a cloud
    that sell the same machines at the same price, collapse into the first of them (by the tie-break order)."""
    key, place, picks = c
    return (place[0], key[0], key[1], tuple((p[2], p[4]) for p in picks))


def _exclusions(
    req: Request,
    catalog: Catalog,
    searches: list[_GroupSearch],
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
            if any(p[0] == cloud for p in s.best):
                continue
            s.stage.update(_stages(s.group, s.spot, catalog, cloud, regions, zones, bl))
            m = _reason_for(s.group, s, cloud, catalog, req)
            msgs.append(f"{s.group.name}: {m}" if multi else m)
        if not msgs:
            no_common.add(cloud)
            zoned = any(p[2] for s in searches for p in s.best if p[0] == cloud)
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
                places.setdefault((p[0], p[1]), set()).add(s.group.name)
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
