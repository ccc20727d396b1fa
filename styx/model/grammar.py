"""The one grammar of resource requests: accelerators (``A100:8``) and sizes (``8``, ``8+``, ``64GB``, ``4x``).

Every reader of these strings (the `styx:cluster` config, the optimizer, the setup phases, the backends)
parses them here, so a bare ``A100`` means ``A100:1`` everywhere and an error says the same thing
wherever it is raised. Plain Python, standard library only.

Accelerators
    ``NAME`` or ``NAME:COUNT``. ``A100`` is ``A100:1``. COUNT is > 0; fractional counts (``T4:0.5``,
    as some catalogs sell them) parse, and ``whole=True`` (what a backend can create) refuses them.
    Names are matched case-insensitively: a name listed in :mod:`styx.model.catalog.gpus` is spelled as there
    (``a100-80gb`` -> ``A100-80GB``); any other name is kept as written (the optimizer then matches it
    against the loaded catalogs).

Sizes (``cpus``, ``memory``)
    ``N`` exactly N, ``N+`` at least N. Memory is in GiB: ``16``, ``16G``, ``16GB``, ``16Gi`` and
    ``16GiB`` are all 16 GiB (``16GB+`` at least). Memory ``Nx`` means at least N GiB per vCPU (only
    the optimizer can answer that one: it needs the machine's vCPU count).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACCELERATOR_ALLOWED",
    "Accelerator",
    "Quantity",
    "RequestError",
    "canonical_accelerator_name",
    "format_count",
    "parse_accelerator",
    "parse_count",
    "parse_size",
    "size_allowed",
]

ACCELERATOR_ALLOWED = "NAME or NAME:COUNT with COUNT >= 1, e.g. A100:8 (A100 = A100:1)"
_WHOLE_ALLOWED = "NAME or NAME:COUNT with a whole COUNT >= 1, e.g. A100:8 (A100 = A100:1)"

_EPS = 1e-9


class RequestError(ValueError):
    """A request that cannot be understood. ``field`` names the offending field, ``allowed`` what would do."""

    def __init__(self, field: str, message: str, *, allowed: str | None = None, suggestions: Sequence[str] = ()):
        self.field = field
        self.message = message
        self.allowed = allowed
        self.suggestions = list(suggestions)
        text = f"{field}: {message}"
        if allowed:
            text += f" (allowed: {allowed})"
        if self.suggestions:
            text += f"; did you mean {', '.join(self.suggestions)}?"
        super().__init__(text)

    @property
    def detail(self) -> str:
        """The message without the field name (for a caller that names the field itself, like pydantic)."""
        return str(self)[len(self.field) + 2:]


def format_count(count: int | float) -> str:
    """``8`` -> ``"8"``, ``8.0`` -> ``"8"``, ``0.5`` -> ``"0.5"``."""
    return str(int(count)) if float(count).is_integer() else f"{count:g}"


# =========================================================================== accelerators

_ACC_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(?::\s*(\S*)\s*)?$")


_known: Mapping[str, str] | None = None


def canonical_accelerator_name(name: str) -> str:
    """The spelling of :mod:`styx.model.catalog.gpus` for a known GPU (case-insensitive), else ``name`` unchanged."""
    global _known
    if _known is None:
        from styx.model.catalog.gpus import KNOWN_ACCELERATORS  # plain data, read on first use

        _known = KNOWN_ACCELERATORS
    return _known.get(name.lower(), name)


@dataclass(frozen=True)
class Accelerator:
    """``A100:8``: ``name`` (known names in the catalog's spelling) and ``count`` (> 0)."""

    name: str
    count: int | float = 1

    @classmethod
    def parse(cls, raw: Any, field: str = "accelerators", *, whole: bool = False) -> Accelerator:
        return parse_accelerator(raw, field, whole=whole)

    def __str__(self) -> str:
        return f"{self.name}:{format_count(self.count)}"

    def same_name(self, other: str) -> bool:
        return self.name.lower() == other.lower()


def parse_count(raw: Any, cnt: Any, field: str = "accelerators", *, whole: bool = False) -> int | float:
    """An accelerator count (``8``, ``"8"``, ``8.0``; fractions unless ``whole``) as int when whole."""
    allowed = _WHOLE_ALLOWED if whole else ACCELERATOR_ALLOWED
    if isinstance(cnt, bool):
        raise RequestError(field, f"{raw!r}: the count must be a number", allowed=allowed)
    try:
        v = float(cnt)
    except (TypeError, ValueError):
        raise RequestError(field, f"{raw!r}: the count {cnt!r} is not a number", allowed=allowed) from None
    if not math.isfinite(v) or v <= 0:
        need = ">= 1" if whole else "greater than 0"
        raise RequestError(field, f"{raw!r}: the count must be {need}", allowed=allowed)
    if not v.is_integer():
        if whole:
            raise RequestError(field, f"{raw!r}: the count must be a whole number", allowed=allowed)
        return v
    return int(v)


def parse_accelerator(raw: Any, field: str = "accelerators", *, whole: bool = False) -> Accelerator:
    """``"A100:8"`` -> ``Accelerator("A100", 8)``; ``"a100"`` -> ``Accelerator("A100", 1)``."""
    if isinstance(raw, Accelerator):
        if whole and not float(raw.count).is_integer():
            raise RequestError(field, f"{str(raw)!r}: the count must be a whole number", allowed=_WHOLE_ALLOWED)
        return raw
    allowed = _WHOLE_ALLOWED if whole else ACCELERATOR_ALLOWED
    if not isinstance(raw, str):
        raise RequestError(field, f"{raw!r} is not an accelerator", allowed=allowed)
    m = _ACC_RE.match(raw)
    if not m:
        raise RequestError(field, f"{raw!r} is not an accelerator", allowed=allowed)
    name, cnt = m.group(1), m.group(2)
    count = parse_count(raw, cnt if cnt is not None else 1, field, whole=whole)
    return Accelerator(canonical_accelerator_name(name), count)


# =========================================================================== sizes

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(gib|gb|gi|g)?\s*([+x]?)\s*$", re.IGNORECASE)


def size_allowed(field: str) -> str:
    """What ``cpus``/``memory`` accept, for error messages."""
    if field.endswith("memory"):
        return "N (exactly N) or N+ (at least N), in GiB with an optional unit G/GB/Gi/GiB (16GB, 16GB+), " \
               "or Nx (at least N GiB per vCPU)"
    return "N (exactly N) or N+ (at least N), e.g. 8 or 8+"


@dataclass(frozen=True)
class Quantity:
    """``cpus``/``memory``: ``8`` (exactly), ``8+`` (at least), memory ``4x`` (>= 4 GiB per vCPU).

    ``text`` is the number as written (``8``, ``0.5``): what a backend that passes it on (Kubernetes
    quantities) uses, so no float round trip changes it.
    """

    value: float
    at_least: bool = False
    per_cpu: bool = False
    text: str = dataclasses.field(default="", compare=False)

    @classmethod
    def parse(cls, field: str, raw: Any) -> Quantity | None:
        return parse_size(raw, field)

    def ok(self, v: float | None, vcpus: float | None = None) -> bool:
        if v is None:
            return False
        target = self.value * (vcpus or 0.0) if self.per_cpu else self.value
        if self.at_least:
            return v >= target - _EPS
        return abs(v - target) <= 1e-6

    @property
    def number(self) -> str:
        return self.text or format_count(self.value)

    def __str__(self) -> str:
        """The canonical spelling: ``8``, ``8+``, ``4x`` (memory in GiB, no unit)."""
        return self.number + ("x" if self.per_cpu else ("+" if self.at_least else ""))

    def describe(self, field: str) -> str:
        n = format_count(self.value)
        if self.per_cpu:
            return f"{field}>={n}GiB/vCPU"
        return f"{field}>={n}" if self.at_least else f"{field}={n}"


def parse_size(raw: Any, field: str = "cpus") -> Quantity | None:
    """``cpus``/``memory`` text or number -> :class:`Quantity` (None stays None). ``field`` picks the rules:
    a field ending in ``memory`` takes GiB units and ``Nx``."""
    if raw is None:
        return None
    if isinstance(raw, Quantity):
        return raw
    memory = field.endswith("memory")
    allowed = size_allowed(field)
    if isinstance(raw, bool):
        raise RequestError(field, f"{raw!r} is not a number", allowed=allowed)
    if isinstance(raw, (int, float)):
        text = repr(raw)
        value, unit, suffix = float(raw), None, ""
        number = format_count(raw) if math.isfinite(raw) else text
    else:
        text = str(raw)
        m = _SIZE_RE.match(text)
        if not m:
            raise RequestError(field, f"{text!r} is not a size", allowed=allowed)
        number, unit, suffix = m.group(1), m.group(2), m.group(3)
        value = float(number)
    if unit and not memory:
        raise RequestError(field, f"{text!r}: a unit is only for memory", allowed=allowed)
    if suffix == "x" and not memory:
        raise RequestError(field, f"{text!r}: the 'x' suffix (per vCPU) is only for memory", allowed=allowed)
    if suffix == "x" and unit:
        raise RequestError(field, f"{text!r}: Nx is GiB per vCPU, without a unit", allowed=allowed)
    if not math.isfinite(value) or value <= 0:
        raise RequestError(field, f"{text!r} must be greater than 0", allowed=allowed)
    return Quantity(value, at_least=suffix in ("+", "x"), per_cpu=suffix == "x", text=number)
