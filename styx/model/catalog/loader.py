"""Find and read SkyPilot v8 ``vms.csv`` catalogs into compact in-memory indexes.

Sources, in order:

1. a directory the user gives (``--catalog DIR``, laid out ``DIR/<cloud>/vms.csv``): when given,
   it is the only source, so an answer never mixes in a cache the user did not ask for;
2. styx's cache, ``$STYX_HOME/catalogs/v8`` (``STYX_HOME`` defaults to ``~/.styx``), filled by
   ``styx catalog refresh``;
3. SkyPilot's own cache, ``~/.sky/catalogs/v8`` (``$SKY_RUNTIME_DIR/.sky/...`` when that is set).

Per cloud, the first of 2 and 3 that has the file wins. Each file is read once per process with
the ``csv`` module (no pandas) and kept while its size and mtime do not change.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import gcp as gcp_rules
from .model import (
    DEFAULT_MAX_AGE_DAYS,
    SCHEMA_VERSION,
    CatalogError,
    CatalogSource,
    Offer,
    parse_count,
    parse_float,
    parse_price,
)

META_SUFFIX = ".meta.json"
_REQUIRED = ("InstanceType", "Region", "Price")


# --------------------------------------------------------------------------- locations


def styx_home() -> Path:
    return Path(os.environ.get("STYX_HOME") or (Path.home() / ".styx")).expanduser()


def styx_cache_dir() -> Path:
    return styx_home() / "catalogs" / SCHEMA_VERSION


def sky_cache_dir() -> Path:
    base = os.environ.get("SKY_RUNTIME_DIR") or "~"
    return Path(base).expanduser() / ".sky" / "catalogs" / SCHEMA_VERSION


def meta_path(csv_path: Path | str) -> Path:
    return Path(str(csv_path) + META_SUFFIX)


def _clouds_in(directory: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return out
    for sub in entries:
        f = sub / "vms.csv"
        if f.is_file():
            out[sub.name.lower()] = f
    return out


def discover(catalog_dir: str | Path | None = None, clouds: Iterable[str] | None = None) -> list[tuple[str, Path, str]]:
    """(cloud, path, origin) of each catalog to read, per the source order above."""
    wanted = {c.lower() for c in clouds} if clouds else None
    found: dict[str, tuple[Path, str]] = {}
    if catalog_dir is not None:
        d = Path(catalog_dir).expanduser()
        if not d.is_dir():
            raise CatalogError(f"catalog directory {str(d)!r} does not exist")
        for cloud, f in _clouds_in(d).items():
            found[cloud] = (f, "--catalog")
        if not found:
            raise CatalogError(f"no catalog in {str(d)!r}: expected {d}/<cloud>/vms.csv (e.g. {d}/aws/vms.csv)")
    else:
        for base, origin in ((styx_cache_dir(), "styx cache"), (sky_cache_dir(), "skypilot cache")):
            for cloud, f in _clouds_in(base).items():
                found.setdefault(cloud, (f, origin))
    return [(c, p, o) for c, (p, o) in sorted(found.items()) if wanted is None or c in wanted]


def _source(cloud: str, path: Path, origin: str, rows: int, now: float) -> CatalogSource:
    url = None
    fetched_at = None
    mp = meta_path(path)
    if mp.is_file():
        try:
            meta = json.loads(mp.read_text())
            url = meta.get("url")
            fetched_at = float(meta["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError):
            fetched_at = None
    if fetched_at is None:
        fetched_at = path.stat().st_mtime
    return CatalogSource(cloud, str(path), origin, url, fetched_at, max(0.0, now - fetched_at), rows)


# --------------------------------------------------------------------------- parsing


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise CatalogError(f"{path}: empty file")
            raw = [r for r in reader if r]
    except OSError as e:
        raise CatalogError(f"cannot read {path}: {e.strerror or e}") from e
    except (csv.Error, UnicodeDecodeError) as e:
        raise CatalogError(f"{path}: not a CSV catalog ({e})") from e
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise CatalogError(f"{path}: not a SkyPilot v8 vms.csv (missing columns {missing}; header {header[:6]}...)")
    # Every row gets exactly len(header) cells plus one empty cell at index len(header), which is where
    # absent optional columns point (see _Cols): the parsers then index rows without bounds checks.
    n = len(header)
    pad = [""] * (n + 1)
    rows = [[*r, ""] if len(r) == n else [*(r + pad)[:n], ""] for r in raw]
    return header, rows


class _Cols:
    """Column indexes; an absent optional column points at the always-empty padding cell."""

    def __init__(self, header: list[str]):
        ix = {h: i for i, h in enumerate(header)}
        none = len(header)
        self.it = ix["InstanceType"]
        self.acc = ix.get("AcceleratorName", none)
        self.cnt = ix.get("AcceleratorCount", none)
        self.cpu = ix.get("vCPUs", none)
        self.mem = ix.get("MemoryGiB", none)
        self.gpu = ix.get("GpuInfo", none)
        self.price = ix["Price"]
        self.spot = ix.get("SpotPrice", none)
        self.region = ix["Region"]
        self.zone = ix.get("AvailabilityZone", none)
        self.arch = ix.get("Arch", none)


class ParsedFile(NamedTuple):
    offers: list[Offer]
    rows: int
    gpu_info: dict[str, str]  # raw GpuInfo by instance type (GCP: by accelerator name)
    listed: set[str]  # accelerator names that appear in the file, offered or not


def _load_generic(cloud: str, path: Path) -> ParsedFile:
    """AWS, Azure, Lambda and other clouds: one row = one offer (instance type in a region/zone)."""
    header, rows = _read(path)
    c = _Cols(header)
    offers: list[Offer] = []
    gpu_info: dict[str, str] = {}
    i_it, i_acc, i_cnt, i_cpu, i_mem = c.it, c.acc, c.cnt, c.cpu, c.mem
    i_price, i_spot, i_region, i_zone, i_arch, i_gpu = c.price, c.spot, c.region, c.zone, c.arch, c.gpu
    append = offers.append
    for r in rows:
        it = r[i_it].strip()
        region = r[i_region].strip()
        if not it or not region:
            continue
        acc = r[i_acc].strip() or None
        count = 0
        if acc:
            count = parse_count(r[i_cnt])
            if count is None:
                continue  # an accelerator row without a usable count: unusable
            if it not in gpu_info and r[i_gpu]:
                gpu_info[it] = r[i_gpu]
        append(
            Offer(
                cloud,
                it,
                acc,
                count,
                parse_float(r[i_cpu]),
                parse_float(r[i_mem]),
                region,
                r[i_zone].strip() or None,
                parse_price(r[i_price], cloud),
                parse_price(r[i_spot], cloud),
                r[i_arch].strip() or None,
            )
        )
    return ParsedFile(offers, len(rows), gpu_info, {o.accelerator for o in offers if o.accelerator})


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _builtin_price(host_cell: str, acc_price: float | None) -> float | None:
    """Price of a GCP machine with built-in GPUs: host row + accelerator row of the zone.

    GCP prices some of them (``a4-highgpu-8g``) on the accelerator rows alone, with a host row of 0.0:
    then the accelerator row is the price. A 0/sentinel host price without a priced accelerator row
    stays unavailable, never free.
    """
    if acc_price is None:
        return None
    hp = parse_price(host_cell, "gcp")
    if hp is not None:
        return hp + acc_price
    try:
        zero = float(host_cell) == 0.0
    except ValueError:
        zero = False
    return acc_price if zero else None


def _load_gcp(path: Path) -> ParsedFile:
    """GCP: compose host-VM rows with accelerator rows of the same zone."""
    cloud = "gcp"
    header, rows = _read(path)
    c = _Cols(header)
    # (accelerator, count, zone) -> (price, spot price)
    acc_rows: dict[tuple[str, int | float, str], tuple[float | None, float | None]] = {}
    attachable_by_zone: dict[str, list[tuple[str, int | float, float | None, float | None]]] = {}
    gpu_info: dict[str, str] = {}
    hosts: list[list[str]] = []
    for r in rows:
        it = r[c.it].strip()
        if it:
            hosts.append(r)
            continue
        acc = r[c.acc].strip()
        if not acc or acc.lower().startswith("tpu-"):
            continue  # TPUs (priced on their own, TPU-VM hosts) are not offered by styx
        count = parse_count(r[c.cnt])
        zone = r[c.zone].strip()
        if count is None or not zone:
            continue
        p, sp = parse_price(r[c.price], cloud), parse_price(r[c.spot], cloud)
        acc_rows[(acc, count, zone)] = (p, sp)
        if acc not in gpu_info:
            g = r[c.gpu]
            if g:
                gpu_info[acc] = g
        if gcp_rules.attachable_limits(acc, count) is not None:
            attachable_by_zone.setdefault(zone, []).append((acc, count, p, sp))

    offers: list[Offer] = []
    for r in hosts:
        it = r[c.it].strip()
        region = r[c.region].strip()
        zone = r[c.zone].strip() or None
        if not region:
            continue
        vcpus = parse_float(r[c.cpu])
        mem = parse_float(r[c.mem])
        builtin = gcp_rules.builtin_accelerator(it)
        if builtin is not None:
            name, count = builtin
            ap = acc_rows.get((name, count, zone or ""))
            if ap is None:
                continue  # the host is listed in a zone that does not sell its GPUs
            offers.append(Offer(cloud, it, name, count, vcpus, mem, region, zone,
                                _builtin_price(r[c.price], ap[0]), _builtin_price(r[c.spot], ap[1])))
            continue
        hp = parse_price(r[c.price], cloud)
        hsp = parse_price(r[c.spot], cloud)
        if gcp_rules.is_gpu_family(it):
            continue  # GPU-only family we cannot map (a3-edgegpu-8g, *-nolssd, a4x-*)
        offers.append(Offer(cloud, it, None, 0, vcpus, mem, region, zone, hp, hsp))
        if gcp_rules.is_n1(it) and zone:
            for acc, count, p, sp in attachable_by_zone.get(zone, ()):
                max_cpu, max_mem = gcp_rules.attachable_limits(acc, count)  # type: ignore[misc]
                if vcpus is None or mem is None or vcpus > max_cpu or mem > max_mem:
                    continue
                offers.append(
                    Offer(cloud, it, acc, count, vcpus, mem, region, zone, _add(hp, p), _add(hsp, sp), attached=True)
                )
    return ParsedFile(offers, len(rows), gpu_info, {k[0] for k in acc_rows})


def load_file(cloud: str, path: str | Path) -> ParsedFile:
    """Parse one ``vms.csv`` into offers."""
    cloud = cloud.lower()
    p = Path(path)
    if cloud == "gcp":
        return _load_gcp(p)
    return _load_generic(cloud, p)


# --------------------------------------------------------------------------- the catalog


class Place(NamedTuple):
    """Where an offer is sold: ``zone`` is "" for clouds without zones in their catalog (a dict key)."""

    cloud: str
    region: str
    zone: str


@dataclass(frozen=True, slots=True)
class PricedOffer:
    """An offer in a placement index: its price there (on-demand or spot, per the index), rounded to 1e-9."""

    price: float
    instance_type: str
    offer: Offer


PlacementIndex = dict[Place, list[PricedOffer]]


def _key(count: int | float) -> float:
    return float(count)


class Catalog:
    """Offers of one or more clouds, indexed by (accelerator, count) and by instance type."""

    def __init__(
        self,
        offers_by_cloud: Mapping[str, list[Offer]],
        sources: Mapping[str, CatalogSource] | None = None,
        gpu_info: Mapping[str, Mapping[str, str]] | None = None,
        max_age_days: float = DEFAULT_MAX_AGE_DAYS,
        load_warnings: Iterable[str] = (),
        load_seconds: float = 0.0,
        listed: Mapping[str, Iterable[str]] | None = None,
    ):
        self.clouds: tuple[str, ...] = tuple(sorted(offers_by_cloud))
        self.sources: dict[str, CatalogSource] = dict(sources or {})
        self.load_seconds = load_seconds
        self.max_age_days = max_age_days
        self._gpu_info_raw = {c: dict(v) for c, v in (gpu_info or {}).items()}
        self._gpu_info_cache: dict[tuple[str, str], dict | None] = {}
        self._by_acc: dict[tuple[str, float], list[Offer]] = {}
        self._by_type: dict[tuple[str, str], list[Offer]] = {}
        self._cpu_only: list[Offer] = []
        self._placements: dict[tuple, PlacementIndex] = {}
        self._names: dict[str, str] = {}
        self._counts: dict[str, dict[str, set[int | float]]] = {}
        self._regions: dict[str, set[str]] = {}
        self._zones: dict[str, dict[str, str]] = {}  # cloud -> zone -> region
        self.n_offers = 0
        for cloud in self.clouds:
            regions = self._regions.setdefault(cloud, set())
            zones = self._zones.setdefault(cloud, {})
            for o in offers_by_cloud[cloud]:
                self.n_offers += 1
                regions.add(o.region)
                if o.zone:
                    zones[o.zone] = o.region
                if o.accelerator is None:
                    self._cpu_only.append(o)
                else:
                    low = o.accelerator.lower()
                    self._names.setdefault(low, o.accelerator)
                    self._by_acc.setdefault((low, _key(o.accelerator_count)), []).append(o)
                    self._counts.setdefault(low, {}).setdefault(cloud, set()).add(o.accelerator_count)
                if not o.attached:
                    self._by_type.setdefault((cloud, o.instance_type), []).append(o)
        # names listed in a file without a machine to host them (GCP L4 rows without g2 hosts)
        self._listed: dict[str, set[str]] = {}
        for cloud, names in (listed or {}).items():
            for n in names:
                self._names.setdefault(n.lower(), n)
                self._listed.setdefault(n.lower(), set()).add(cloud)
        self.warnings: list[str] = list(load_warnings)
        for s in self.sources.values():
            if s.age_days > max_age_days:
                self.warnings.append(
                    f"the {s.cloud} catalog ({s.path}) is {s.age_days:.1f} days old "
                    f"(older than {max_age_days:g} days): prices may be stale; "
                    f"run `styx catalog refresh --cloud {s.cloud}`"
                )

    # ---- lookups used by the optimizer (all O(1) or O(matches))

    def offers(self, accelerator: str | None, count: int | float | None = None) -> list[Offer]:
        """Offers with exactly ``count`` of ``accelerator`` (case-insensitive), or CPU-only offers."""
        if accelerator is None:
            return self._cpu_only
        return self._by_acc.get((accelerator.lower(), _key(count or 1)), [])

    def placements(self, accelerator: str | None, count: int | float | None, spot: bool) -> PlacementIndex:
        """:class:`Place` -> the offers priced there (:class:`PricedOffer`), cheapest first.

        Prices are rounded to 1e-9 (float noise is no price difference). Built on first use per
        (accelerator, count, spot) and kept, so a query costs O(placements), not O(catalog rows).
        """
        key = (accelerator.lower() if accelerator else None, _key(count or 1) if accelerator else 0.0, spot)
        idx = self._placements.get(key)
        if idx is None:
            idx = placement_index(self.offers(accelerator, count), spot)
            self._placements[key] = idx
        return idx

    def offers_of_type(self, cloud: str, instance_type: str) -> list[Offer]:
        return self._by_type.get((cloud, instance_type), [])

    def instance_types(self, cloud: str) -> set[str]:
        """Every instance type the catalog sells on `cloud` (machines with attached GPUs as their host type)."""
        return {t for c, t in self._by_type if c == cloud}

    def canonical_accelerator(self, name: str) -> str | None:
        return self._names.get(name.lower())

    def accelerator_names(self) -> list[str]:
        return sorted(self._names.values(), key=str.lower)

    def accelerator_counts(self, name: str, cloud: str | None = None) -> list[int | float]:
        per_cloud = self._counts.get(name.lower(), {})
        if cloud is not None:
            return sorted(per_cloud.get(cloud, ()))
        out: set[int | float] = set()
        for s in per_cloud.values():
            out |= s
        return sorted(out)

    def accelerator_clouds(self, name: str) -> list[str]:
        """Clouds with at least one offer of this accelerator."""
        return sorted(self._counts.get(name.lower(), {}))

    def accelerator_listed(self, name: str, cloud: str) -> bool:
        """The cloud's file names this accelerator (even if no machine type can host it)."""
        return cloud in self._listed.get(name.lower(), ()) or cloud in self._counts.get(name.lower(), {})

    def suggest_accelerators(self, name: str, n: int = 5) -> list[str]:
        """Closest known accelerator names (difflib, case-insensitive)."""
        import difflib
        low = name.lower()
        keys = list(self._names)
        close = difflib.get_close_matches(low, keys, n=n, cutoff=0.5)
        for k in sorted(keys):  # prefix/substring matches: h100 -> H100-MEGA
            if len(close) >= n:
                break
            if k not in close and (k.startswith(low) or low.startswith(k)):
                close.append(k)
        return [self._names[k] for k in close]

    def regions(self, cloud: str | None = None) -> set[str]:
        if cloud is not None:
            return set(self._regions.get(cloud, ()))
        out: set[str] = set()
        for s in self._regions.values():
            out |= s
        return out

    def zones(self, cloud: str | None = None) -> dict[str, str]:
        """zone -> region."""
        if cloud is not None:
            return dict(self._zones.get(cloud, {}))
        out: dict[str, str] = {}
        for z in self._zones.values():
            out.update(z)
        return out

    def all_offers(self) -> Iterable[Offer]:
        for lst in self._by_acc.values():
            yield from lst
        yield from self._cpu_only

    def gpu_info(self, cloud: str, key: str) -> dict | None:
        """GpuInfo of an instance type (GCP: of an accelerator name), parsed with ``ast.literal_eval``."""
        ck = (cloud, key)
        if ck not in self._gpu_info_cache:
            raw = self._gpu_info_raw.get(cloud, {}).get(key)
            val = None
            if raw:
                import ast  # only when asked: GpuInfo is a Python literal, never eval()ed

                try:
                    v = ast.literal_eval(raw)
                    val = v if isinstance(v, dict) else None
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    val = None
            self._gpu_info_cache[ck] = val
        return self._gpu_info_cache[ck]

    def gpu_memory_gib(self, offer: Offer) -> float | None:
        """Memory of one GPU of an offer, from GpuInfo."""
        key = offer.accelerator if offer.cloud == "gcp" else offer.instance_type
        info = self.gpu_info(offer.cloud, key or "")
        try:
            return float(info["Gpus"][0]["MemoryInfo"]["SizeInMiB"]) / 1024.0  # type: ignore[index]
        except (TypeError, KeyError, IndexError, ValueError):
            return None

    def gpu_info_name(self, offer: Offer) -> str | None:
        """The GPU name inside GpuInfo (AWS p4de: ``A100`` while AcceleratorName is ``A100-80GB``)."""
        info = self.gpu_info(offer.cloud, offer.instance_type)
        try:
            return str(info["Gpus"][0]["Name"])  # type: ignore[index]
        except (TypeError, KeyError, IndexError):
            return None

    def describe(self) -> list[dict]:
        return [
            {**s.to_dict(), "offers": sum(1 for o in self.all_offers() if o.cloud == s.cloud)}
            for _, s in sorted(self.sources.items())
        ]

    def gpu_summary(self, name: str | None = None, clouds: Iterable[str] | None = None) -> list[dict]:
        """One row per (accelerator, count, cloud, instance type): cheapest on-demand and spot, and where."""
        want = {c.lower() for c in clouds} if clouds else None
        best: dict[tuple[str, float, str, str], dict] = {}
        low = name.lower() if name else None
        for (acc_low, cnt), lst in self._by_acc.items():
            if low is not None and acc_low != low:
                continue
            for o in lst:
                if want is not None and o.cloud not in want:
                    continue
                k = (acc_low, cnt, o.cloud, o.instance_type)
                row = best.get(k)
                if row is None:
                    row = best[k] = {
                        "accelerator": o.accelerator,
                        "count": o.accelerator_count,
                        "cloud": o.cloud,
                        "instance_type": o.instance_type,
                        "vcpus": o.vcpus,
                        "memory_gib": o.memory_gib,
                        "gpu_memory_gib": self.gpu_memory_gib(o),
                        "price": None,
                        "price_where": None,
                        "spot_price": None,
                        "spot_where": None,
                    }
                for fld, where, p in (("price", "price_where", o.price), ("spot_price", "spot_where", o.spot_price)):
                    if p is None:
                        continue
                    loc = "/".join(x for x in (o.region, o.zone) if x)
                    cur = row[fld]
                    if cur is None or p < cur - 1e-12 or (abs(p - cur) <= 1e-12 and loc < row[where]):
                        row[fld] = round(p, 6)
                        row[where] = loc
        return sorted(
            best.values(),
            key=lambda r: (
                r["accelerator"].lower(),
                float(r["count"]),
                r["price"] if r["price"] is not None else float("inf"),
                r["cloud"],
                r["instance_type"],
            ),
        )


def placement_index(offers: Iterable[Offer], spot: bool) -> PlacementIndex:
    """Group priced offers by :class:`Place`, each list sorted by (price, instance type)."""
    out: PlacementIndex = {}
    for o in offers:
        p = o.spot_price if spot else o.price
        if p is not None:
            out.setdefault(Place(o.cloud, o.region, o.zone or ""), []).append(
                PricedOffer(round(p, 9), o.instance_type, o))
    for lst in out.values():
        lst.sort(key=lambda e: (e.price, e.instance_type))
    return out


# --------------------------------------------------------------------------- loading with a process cache

_CACHE: dict[tuple, Catalog] = {}
_CACHE_LOCK = threading.Lock()


def _stamp(p: Path) -> tuple:
    st = p.stat()
    mp = meta_path(p)
    mst = mp.stat() if mp.is_file() else None
    return (str(p.resolve()), st.st_size, st.st_mtime_ns, mst and (mst.st_size, mst.st_mtime_ns))


def load_files(
    files: Mapping[str, str | Path],
    *,
    origin: str = "file",
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    now: float | None = None,
    use_cache: bool = True,
) -> Catalog:
    """A catalog from an explicit mapping ``{cloud: path to a v8 vms.csv}`` (any file name)."""
    return _load([(c.lower(), Path(p), origin) for c, p in sorted(files.items())], max_age_days, now, use_cache)


def load_catalog(
    catalog_dir: str | Path | None = None,
    *,
    clouds: Iterable[str] | None = None,
    files: Mapping[str, str | Path] | None = None,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    now: float | None = None,
    use_cache: bool = True,
) -> Catalog:
    """Load the catalogs per the source order in this module's docstring.

    ``files`` (``{cloud: path}``) bypasses discovery. Raises :class:`CatalogError` when nothing is found.
    """
    if files:
        entries = [(c.lower(), Path(p), "file") for c, p in sorted(files.items())]
        if clouds:
            want = {c.lower() for c in clouds}
            entries = [e for e in entries if e[0] in want]
    else:
        entries = discover(catalog_dir, clouds)
    if not entries:
        where = (
            str(catalog_dir)
            if catalog_dir is not None
            else f"{styx_cache_dir()} or {sky_cache_dir()}"
        )
        raise CatalogError(
            f"no instance catalog found in {where}; run `styx catalog refresh` (needs network) "
            "or pass --catalog DIR (layout DIR/<cloud>/vms.csv)"
        )
    return _load(entries, max_age_days, now, use_cache)


def _load(entries: list[tuple[str, Path, str]], max_age_days: float, now: float | None, use_cache: bool) -> Catalog:
    for _, p, _ in entries:
        if not p.is_file():
            raise CatalogError(f"catalog file {str(p)!r} does not exist")
    key = (tuple((c, _stamp(p), o) for c, p, o in entries), max_age_days)
    if use_cache and now is None:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
        if hit is not None:
            return hit
    t0 = time.perf_counter()
    wall = time.time() if now is None else now
    offers: dict[str, list[Offer]] = {}
    sources: dict[str, CatalogSource] = {}
    infos: dict[str, dict[str, str]] = {}
    listed: dict[str, set[str]] = {}
    for cloud, path, origin in entries:
        parsed = load_file(cloud, path)
        offers[cloud] = parsed.offers
        infos[cloud] = parsed.gpu_info
        listed[cloud] = parsed.listed
        sources[cloud] = _source(cloud, path, origin, parsed.rows, wall)
    cat = Catalog(
        offers, sources, infos, max_age_days=max_age_days, load_seconds=time.perf_counter() - t0, listed=listed
    )
    if use_cache and now is None:
        with _CACHE_LOCK:
            _CACHE[key] = cat
    return cat


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
