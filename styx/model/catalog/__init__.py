"""Instance catalogs (SkyPilot v8 ``vms.csv`` format): loading, indexing, refreshing.

Plain Python, standard library only (no Pulumi, no pandas).
"""

from __future__ import annotations

from .loader import (
    Catalog,
    clear_cache,
    discover,
    load_catalog,
    load_file,
    load_files,
    sky_cache_dir,
    styx_cache_dir,
    styx_home,
)
from .model import (
    DEFAULT_MAX_AGE_DAYS,
    SCHEMA_VERSION,
    CatalogError,
    CatalogRefreshError,
    CatalogSource,
    Offer,
    parse_price,
)

_LAZY = {"DEFAULT_BASE_URL", "DEFAULT_CLOUDS", "RefreshResult", "refresh"}


def __getattr__(name: str):  # urllib is only imported when a refresh is asked for
    if name in _LAZY:
        from . import fetch as _fetch

        return getattr(_fetch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CLOUDS",
    "DEFAULT_MAX_AGE_DAYS",
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogError",
    "CatalogRefreshError",
    "CatalogSource",
    "Offer",
    "RefreshResult",
    "clear_cache",
    "discover",
    "load_catalog",
    "load_file",
    "load_files",
    "parse_price",
    "refresh",
    "sky_cache_dir",
    "styx_cache_dir",
    "styx_home",
]
