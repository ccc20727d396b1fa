"""The program's registry of backends: the cloud names of `styx.model.clouds` (the one list of clouds)
mapped to their backend classes, each imported only when someone asks for that backend, so a missing
SDK breaks nothing else (Ray's `_NODE_PROVIDERS`, SkyPilot's adaptors). This module imports no
Pulumi and no backend by itself.

`validate` is the one validation of a config: every entry point (the CLI's validate, preview and
launch, and the program that `pulumi preview/up` runs) calls it, so they accept and reject the same
configs with the same lines.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from styx.model.clouds import REGISTRY, backend_names, on_change, register_backend, unregister_backend
from styx.model.config import CONFIG_KEY

__all__ = ["REGISTRY", "Checked", "backend_class", "backend_names", "check_cluster", "get_backend",
           "register_backend", "unregister_backend", "validate"]

if TYPE_CHECKING:
    from styx.components.backends.base import Backend
    from styx.model.catalog import Catalog
    from styx.model.config import ClusterConfig

_CLASSES: dict[str, type[Backend]] = {}
on_change(lambda name: _CLASSES.pop(name, None))


def backend_class(name: str | None) -> type[Backend]:
    """The backend class for a cloud name, imported on first use. ValueError for an unknown name."""
    cls = _CLASSES.get(name or "")
    if cls is not None:
        return cls
    try:
        target = REGISTRY[name or ""]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(backend_names())}") from None
    module, attr = target.split(":")
    cls = getattr(importlib.import_module(module), attr)
    if getattr(cls, "name", None) != name:
        raise ValueError(f"backend {target} says its name is {getattr(cls, 'name', None)!r}, registered as {name!r}")
    _CLASSES[name or ""] = cls
    return cls


def get_backend(name: str) -> Backend:
    """A new instance of the backend registered as `name`."""
    return backend_class(name)()


@dataclass(frozen=True)
class Checked:
    """A valid config and what is allowed but worth saying (`warning: ...` lines, for stderr)."""

    cfg: ClusterConfig
    warnings: tuple[str, ...] = ()


def _dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def _catalog_for(backend: Backend, cfg: ClusterConfig) -> tuple[Catalog | None, list[str]]:
    """The catalogs `backend.catalog_clouds(cfg)` asks for, found as the optimizer finds them
    (`STYX_CATALOG_DIR`, else styx's and SkyPilot's caches); None and a warning when there are none."""
    clouds = backend.catalog_clouds(cfg)
    if clouds == ():
        return None, []
    from styx.model.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(os.environ.get("STYX_CATALOG_DIR"), clouds=clouds)
    except CatalogError as e:
        what = "/".join(clouds or ("any cloud",))
        return None, [f"warning: {CONFIG_KEY}: no instance catalog for {what}, so instance types, regions, zones "
                      f"and GPU names were not checked against it ({e}); run `styx catalog refresh` or set "
                      "STYX_CATALOG_DIR=DIR (DIR/<cloud>/vms.csv)"]
    return catalog, []


def _ray_warnings(cfg: ClusterConfig) -> list[str]:
    """A Ray dashboard bound to every interface (setup.ray.extra_start_args) is reachable by anyone who
    reaches the head: it runs jobs, so it is code execution."""
    args = list(cfg.setup.ray.extra_start_args)
    out = []
    for i, a in enumerate(args):
        host = a.split("=", 1)[1] if a.startswith("--dashboard-host=") else (
            args[i + 1] if a == "--dashboard-host" and i + 1 < len(args) else None)
        if host is not None and host.strip("[]") in ("0.0.0.0", "::", ""):
            out.append(f"warning: {CONFIG_KEY}.setup.ray.extra_start_args: --dashboard-host={host} binds the Ray "
                       "dashboard (which runs jobs) to every interface; styx binds it to 127.0.0.1 and reaches "
                       "it through the SSH tunnel (the `dashboard` output)")
    if cfg.setup.ray.enabled and cfg.setup.ray.auth == "none":
        out.append(f"warning: {CONFIG_KEY}.setup.ray.auth: none turns Ray's token authentication off: anything that "
                   "reaches a Ray port (GCS, dashboard, Jobs API) can run code on the cluster; the default is token")
    return out


def validate(raw: object, base_dir: Path | None = None, *, source: tuple[str | Path, str | None] | None = None,
             catalog: Catalog | bool | None = True) -> Checked:
    """THE validation of a `styx:cluster` value, run by every entry point before anything is registered
    (`styx validate`, `styx preview`, `styx launch` through `styx.app.cli.common.validate_cluster`, and the
    program, `styx.components.program.build`, that `pulumi preview/up` runs):

    1. the model (`styx.model.config.parse_cluster`: types, ranges, unknown keys);
    2. the chosen backend's `config_problems`, with the catalogs it asks for (`catalog_clouds`):
       accelerator names, instance types (unless `allow_unlisted`), regions and zones; no catalog
       available: those checks are skipped with a warning;
    3. the files the config names, relative to `base_dir` (when given).

    Raises ConfigError with one line per problem (deduplicated, each naming its key path, the bad value
    and what is allowed). Returns the config and its warnings: SSH open to the internet, a Ray dashboard
    on every interface, and (with `source` = (file, stack)) secrets written in plain text.
    `catalog`: True = find it; a Catalog (tests); None/False = none.
    """
    from styx.model.config import ConfigError, file_problems, parse_cluster
    from styx.model.secret_refs import with_placeholders

    cfg = parse_cluster(with_placeholders(raw))  # a `secure:` value is a present string
    backend = get_backend(cfg.cloud)
    warnings: list[str] = []
    if catalog is True:
        cat, warnings = _catalog_for(backend, cfg)
    else:
        cat = catalog or None
    problems = backend.config_problems(cfg, cat)
    if base_dir is not None:
        problems += file_problems(cfg, base_dir)
    if problems:
        raise ConfigError(_dedupe(problems))
    if cat is not None:
        warnings += [f"warning: {w}" for w in cat.warnings]
    warnings += backend.config_warnings(cfg) + _ray_warnings(cfg)
    if source is not None:
        from styx.model.secret_refs import plain_text_warnings

        warnings += plain_text_warnings(raw, source[0], source[1])
    return Checked(cfg, tuple(_dedupe(warnings)))


def check_cluster(raw: object, base_dir: Path | None = None) -> ClusterConfig:
    """`validate(raw, base_dir).cfg`: the valid config, for callers that print no warnings."""
    return validate(raw, base_dir).cfg
