"""Plain data types of the instance catalog: offers, sources, errors.

Standard library only, so importing the catalog costs next to nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

#: The catalog schema styx reads: SkyPilot's ``catalogs/v8`` CSV layout.
SCHEMA_VERSION = "v8"

#: A catalog file older than this makes a warning (not an error).
DEFAULT_MAX_AGE_DAYS = 7.0

#: Prices that mean "unknown / not sold" in the upstream data, per cloud, besides 0 and empty.
#: GCP uses 700.0 (some TPU rows); a 0.0 host row of a GPU machine (a4-highgpu-8g) means its price sits on
#: the accelerator rows (see loader._builtin_price).
SENTINEL_PRICES: dict[str, frozenset[float]] = {"gcp": frozenset({700.0})}


class CatalogError(Exception):
    """A catalog could not be found or read."""


class CatalogRefreshError(CatalogError):
    """Downloading a catalog failed (offline, HTTP error, not a catalog file)."""


def parse_price(text: str, cloud: str = "") -> float | None:
    """A price cell as $/hour, or None when the offer is unavailable.

    Empty, unparsable, non-finite, zero, negative and sentinel prices all mean *unavailable*,
    never *free*.
    """
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    if not math.isfinite(v) or v <= 0.0:
        return None
    sentinels = SENTINEL_PRICES.get(cloud)
    if sentinels and v in sentinels:
        return None
    return v


def parse_count(text: str) -> int | float | None:
    """An accelerator count cell: ``8.0`` -> 8, ``0.5`` -> 0.5, empty/0 -> None."""
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    if not math.isfinite(v) or v <= 0:
        return None
    return int(v) if v.is_integer() else v


def parse_float(text: str) -> float | None:
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def format_count(count: int | float) -> str:
    return str(int(count)) if float(count).is_integer() else f"{count:g}"


class Offer(NamedTuple):
    """One way to buy one machine: an instance type in one place, with its prices.

    ``zone`` is None for clouds without zones in their catalog (Lambda, Azure). For AWS it is the
    availability-zone *ID* (``use1-az4``), which is stable across accounts, not the account-specific
    zone name (``us-east-1a``).

    For GCP GPU machines the prices are the composed ones (host VM row + accelerator row of the
    same zone); ``attached`` is True when the GPUs are attached to an N1 host
    (``guest_accelerators``) rather than built into the machine type (A2/A3/A4/G2).

    A NamedTuple (immutable, hashable, cheap to build: a full catalog has ~10^5 of them).
    """

    cloud: str
    instance_type: str
    accelerator: str | None
    accelerator_count: int | float
    vcpus: float | None
    memory_gib: float | None
    region: str
    zone: str | None
    price: float | None
    spot_price: float | None
    arch: str | None = None
    attached: bool = False

    def price_for(self, spot: bool) -> float | None:
        return self.spot_price if spot else self.price

    @property
    def accelerators(self) -> str | None:
        """``NAME:COUNT`` or None for a CPU-only machine."""
        if self.accelerator is None:
            return None
        return f"{self.accelerator}:{format_count(self.accelerator_count)}"

    def location(self) -> str:
        parts = [self.cloud, self.region]
        if self.zone:
            parts.append(self.zone)
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class CatalogSource:
    """Where one cloud's catalog came from, and how old it is."""

    cloud: str
    path: str
    origin: str  # "--catalog", "styx cache", "skypilot cache", "file"
    url: str | None
    fetched_at: float  # epoch seconds (metadata json, else the file's mtime)
    age_seconds: float
    rows: int = 0

    @property
    def age_days(self) -> float:
        return self.age_seconds / 86400.0

    def to_dict(self) -> dict:
        return {
            "cloud": self.cloud,
            "path": self.path,
            "origin": self.origin,
            "url": self.url,
            "fetched_at": self.fetched_at,
            "age_days": round(self.age_days, 3),
            "rows": self.rows,
        }
