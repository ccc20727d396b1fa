"""The names of the clouds styx knows, and where each one's backend lives: the one list of clouds.

Each entry maps a cloud name (the config's `cloud`) to the backend class that implements it, as an
import path. Nothing else lists the clouds: the config's allowed `cloud` values and their error
text, the CLI's `--cloud` choices and the README come from here. Plain data (the model layer): the
program's registry (`styx.components.backends`) imports a backend module only when it is asked for.

Adding a cloud: one module `components/backends/<cloud>.py` with a `Backend` subclass, one line in
`REGISTRY`, and its tests. Tests (or a plug-in package) can add one at run time with
`register_backend(name, "module:Class")` and take it away with `unregister_backend(name)`.
"""

from __future__ import annotations

from collections.abc import Callable

# name -> "module:Class". The order is the order users see (config errors, --cloud, docs).
REGISTRY: dict[str, str] = {
    "aws": "styx.components.backends.aws:AwsBackend",
    "gcp": "styx.components.backends.gcp:GcpBackend",
    "kubernetes": "styx.components.backends.kubernetes:KubernetesBackend",
    "ssh": "styx.components.backends.ssh:SSHBackend",
    "local": "styx.components.backends.local:LocalBackend",
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
    _notify(name)


def unregister_backend(name: str) -> None:
    """Remove a backend added with `register_backend` (a no-op when it is not registered)."""
    REGISTRY.pop(name, None)
    _notify(name)


_LISTENERS: list[Callable[[str], None]] = []


def on_change(fn: Callable[[str], None]) -> None:
    """Call fn(name) when a registration changes (the program's registry drops its cached class)."""
    _LISTENERS.append(fn)


def _notify(name: str) -> None:
    for fn in _LISTENERS:
        fn(name)
