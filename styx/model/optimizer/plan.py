"""Results of the optimizer: a :class:`Plan` holds the cheapest :class:`Choice`, the alternatives and the
:class:`Exclusion` of each cloud/region that could not host the cluster. ``to_dict`` is the ``--json`` shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from styx.model.catalog import Offer

from .request import Request

__all__ = ["Choice", "Exclusion", "NodeChoice", "Plan"]


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

