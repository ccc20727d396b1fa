"""The program's registry of backends: the cloud names of `styx.clouds` (the one list of clouds)
mapped to their backend classes, each imported only when someone asks for that backend, so a missing
SDK breaks nothing else (Ray's `_NODE_PROVIDERS`, SkyPilot's adaptors). This module imports no
Pulumi and no backend by itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from styx.clouds import REGISTRY, backend_names, on_change, register_backend, unregister_backend

__all__ = ["REGISTRY", "backend_class", "backend_names", "check_cluster", "get_backend", "register_backend",
           "unregister_backend"]

if TYPE_CHECKING:
    from components.backends.base import Backend

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


def check_cluster(raw: object):
    """The one validation of a `styx:cluster` value: the model (`styx.config.parse_cluster`), then the
    chosen backend's `config_problems`. Returns the ClusterConfig; raises ConfigError listing every
    problem by key path. (Host preflight, `Backend.check`, is left to the program.)"""
    from styx.config import ConfigError, parse_cluster

    cfg = parse_cluster(raw)
    problems = get_backend(cfg.cloud).config_problems(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg
