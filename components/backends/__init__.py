"""The registry of backends: the one list of clouds styx knows.

Each entry maps a cloud name (the config's `cloud`) to the backend class that implements it, as an
import path. Nothing else lists the clouds: the config's allowed `cloud` values and their error
text, the CLI's `--cloud` choices and the README come from here.

This module imports no Pulumi and no backend: the model (`styx.config`) reads the names from it,
and a backend module (and its cloud SDK) is imported only when someone asks for that backend, so a
missing SDK breaks nothing else (Ray's `_NODE_PROVIDERS`, SkyPilot's adaptors).

Adding a cloud: one module `components/backends/<cloud>.py` with a `Backend` subclass, one line in
`REGISTRY`, and its tests. Tests (or a plug-in package) can add one at run time with
`register_backend(name, "module:Class")` and take it away with `unregister_backend(name)`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.backends.base import Backend

# name -> "module:Class". The order is the order users see (config errors, --cloud, docs).
REGISTRY: dict[str, str] = {
    "aws": "components.backends.aws:AwsBackend",
    "gcp": "components.backends.gcp:GcpBackend",
    "kubernetes": "components.backends.kubernetes:KubernetesBackend",
    "ssh": "components.backends.ssh:SSHBackend",
    "local": "components.backends.local:LocalBackend",
}


def backend_names() -> tuple[str, ...]:
    """Every registered cloud name, in registry order."""
    return tuple(REGISTRY)


def register_backend(name: str, target: str, *, replace: bool = False) -> None:
    """Register `name` -> `target` ("package.module:Class", imported on first use).

    The hook for a cloud that lives outside this package (a plug-in, or a test-only backend such as
    tests/components/backends/fake_cloud.py). Registering a taken name needs `replace=True`.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"backend name {name!r}: use lowercase letters, digits, '-' or '_'")
    if ":" not in target:
        raise ValueError(f"backend target {target!r}: use 'package.module:Class'")
    if name in REGISTRY and REGISTRY[name] != target and not replace:
        raise ValueError(f"backend {name!r} is already registered as {REGISTRY[name]}")
    REGISTRY[name] = target
    _CLASSES.pop(name, None)


def unregister_backend(name: str) -> None:
    """Remove a backend added with `register_backend` (a no-op when it is not registered)."""
    REGISTRY.pop(name, None)
    _CLASSES.pop(name, None)


_CLASSES: dict[str, type[Backend]] = {}


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
