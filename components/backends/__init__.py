"""Backends by name, imported lazily so a missing cloud SDK breaks nothing else."""

from __future__ import annotations

import importlib

from components.backends.base import Backend

REGISTRY: dict[str, str] = {
    "ssh": "components.backends.ssh:SSHBackend",
    "local": "components.backends.local:LocalBackend",
    "aws": "components.backends.aws:AwsBackend",
    "gcp": "components.backends.gcp:GcpBackend",
    "kubernetes": "components.backends.kubernetes:KubernetesBackend",
}


def get_backend(name: str) -> Backend:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()
