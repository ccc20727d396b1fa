"""``styx catalog refresh``: download the public v8 catalogs into styx's cache, atomically.

Each file is downloaded to a temporary file beside the target, checked to be a v8 ``vms.csv``
(header with InstanceType, Region, Price), then moved over the old one with ``os.replace``, so a
reader never sees half a file and a failed download never destroys the cached copy. A small
``vms.csv.meta.json`` records the URL, the time and the sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .loader import META_SUFFIX, styx_cache_dir
from .model import CatalogRefreshError

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs/v8"
DEFAULT_CLOUDS = ("aws", "gcp", "azure", "lambda")
_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class RefreshResult:
    cloud: str
    url: str
    path: str
    bytes: int
    rows: int
    sha256: str


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fetch(url: str, timeout: float) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "styx-catalog/1"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read(_MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise CatalogRefreshError(f"could not download {url}: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise CatalogRefreshError(f"could not download {url}: {e.reason} (offline?)") from e
    except (TimeoutError, OSError) as e:
        raise CatalogRefreshError(f"could not download {url}: {e}") from e
    if len(data) > _MAX_BYTES:
        raise CatalogRefreshError(f"could not download {url}: larger than {_MAX_BYTES} bytes")
    return data


def _check(url: str, data: bytes) -> int:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CatalogRefreshError(f"{url} is not a CSV catalog (not UTF-8 text)") from e
    first = text.split("\n", 1)[0].lstrip("\ufeff")
    cols = [c.strip() for c in first.split(",")]
    missing = [c for c in ("InstanceType", "Region", "Price") if c not in cols]
    if missing:
        raise CatalogRefreshError(f"{url} is not a v8 vms.csv catalog (header lacks {missing})")
    return max(0, sum(1 for line in text.splitlines()[1:] if line.strip()))


def refresh(
    clouds: Iterable[str] | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
    dest: str | Path | None = None,
    timeout: float = 60.0,
) -> list[RefreshResult]:
    """Download ``<base_url>/<cloud>/vms.csv`` for each cloud into ``dest`` (styx's cache).

    All clouds are tried; if any failed, :class:`CatalogRefreshError` is raised after the others were
    saved, naming each failed URL and its cause. Returns what was saved.
    """
    root = Path(dest) if dest is not None else styx_cache_dir()
    base = base_url.rstrip("/")
    results: list[RefreshResult] = []
    errors: list[str] = []
    for cloud in [c.lower() for c in (clouds or DEFAULT_CLOUDS)]:
        url = f"{base}/{cloud}/vms.csv"
        try:
            data = _fetch(url, timeout)
            rows = _check(url, data)
        except CatalogRefreshError as e:
            errors.append(str(e))
            continue
        target = root / cloud / "vms.csv"
        digest = hashlib.sha256(data).hexdigest()
        try:
            _atomic_write(target, data)
            meta = {"cloud": cloud, "url": url, "fetched_at": time.time(), "sha256": digest, "bytes": len(data)}
            _atomic_write(Path(str(target) + META_SUFFIX), json.dumps(meta, indent=1).encode())
        except OSError as e:
            errors.append(f"could not write {target}: {e}")
            continue
        results.append(RefreshResult(cloud, url, str(target), len(data), rows, digest))
    if errors:
        err = CatalogRefreshError("; ".join(errors))
        err.results = results  # type: ignore[attr-defined]
        raise err
    return results
