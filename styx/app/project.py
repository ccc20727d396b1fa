"""What every operation on a cluster starts from, for the CLI and the Python API alike: errors with
exit codes, the engine (a factory tests replace), the stack to act on, config files (a cluster object
or a Pulumi stack file), their secrets decrypted by Pulumi, and the one validation.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or a bad config. Nothing here prints but
`on_warning` (stderr), which callers may replace.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# Where warnings go (a config's plain-text secrets, validation warnings): stderr unless replaced.
on_warning: Callable[[str], None] = _stderr


EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class StyxError(Exception):
    """A failure the user can act on: printed without a traceback, exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_FAILED, problems: list[str] | None = None,
                 data: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.problems = problems or []
        self.data = data or {}


# --------------------------------------------------------------------------- engine factory


def _default_engine(backend: str | None):
    from styx.app.session import Engine

    return Engine(backend)


# Tests replace this with a function returning a fake engine (tests/cli_fakes.py).
engine_factory: Callable[[str | None], Any] = _default_engine


def make_engine(backend: str | None):
    return engine_factory(backend)


# --------------------------------------------------------------------------- stacks


def pick_stack(engine: Any, name: str | None) -> str:
    """`name`, or the only stack on the backend; exit 2 naming the stacks otherwise."""
    if name:
        return name
    names = [s.name for s in engine.list_stacks()]
    if len(names) == 1:
        return names[0]
    if not names:
        raise StyxError(f"no clusters on {engine.backend_url}; start one with `styx launch`", EXIT_FAILED)
    raise StyxError(f"several clusters on {engine.backend_url}: {', '.join(names)}; pick one with --stack NAME",
                    EXIT_USAGE)


def open_stack(engine: Any, name: str | None):
    from styx.app.session import StackNotFound

    stack = pick_stack(engine, name)
    try:
        return engine.open(stack)
    except StackNotFound:
        raise StyxError(f"no cluster (stack) named {stack!r} on {engine.backend_url}", EXIT_FAILED) from None


# --------------------------------------------------------------------------- config files


def load_config_file(path: str | Path, *, warn: bool = True) -> tuple[dict[str, Any], Path, str | None]:
    """(cluster object, base dir for relative paths, stack name the file implies or None).

    A file is either the cluster object itself (top-level `name:`, `cloud:` ...) or a Pulumi stack
    file whose `config:` holds `styx:cluster` (its stack name comes from `Pulumi.<stack>.yaml`).
    Secrets may be `secure:` values (kept as they are: see resolve_secrets); a secret in plain text
    gets a warning on stderr (`warn`) naming the command that encrypts it.
    """
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise StyxError(f"{path}: no such file", EXIT_USAGE)
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise StyxError(f"{path}: not valid YAML: {e}", EXIT_USAGE) from None
    if not isinstance(doc, dict):
        raise StyxError(f"{path}: expected a mapping (the cluster, or a stack file with config:)", EXIT_USAGE)
    base = p.resolve().parent
    if "config" in doc and isinstance(doc["config"], dict):
        cfg = doc["config"]
        cluster = cfg.get("styx:cluster")
        if cluster is None:
            raise StyxError(f"{path}: config: has no styx:cluster key", EXIT_USAGE,
                            problems=["styx:cluster: required, but missing"])
        # relative paths in a stack file are relative to the project (the folder with Pulumi.yaml)
        for d in [base, *base.parents][:3]:
            if (d / "Pulumi.yaml").is_file():
                base = d
                break
        else:
            from styx.app.engine import REPO

            if base.name == "stacks" and base.parent == REPO:
                base = REPO
        stack = None
        if p.name.startswith("Pulumi.") and p.name.endswith((".yaml", ".yml")):
            stack = p.name[len("Pulumi."):].rsplit(".", 1)[0]
        if warn:
            _warn_plain_secrets(cluster, path, stack)
        return cluster, base, stack
    if warn:
        _warn_plain_secrets(doc, path, None)
    return doc, base, None


def _warn_plain_secrets(cluster: Any, path: str | Path, stack: str | None) -> None:
    from styx.app.secrets import plain_text_warnings

    for w in plain_text_warnings(cluster, path, stack):
        on_warning(w)


def _default_resolver(cluster: dict[str, Any], path: Path, backend_url: str | None) -> dict[str, Any]:
    from styx.app.secrets import resolve_file

    return resolve_file(cluster, path, backend_url=backend_url)


# Tests replace this (a fake engine has no Pulumi to decrypt with).
secret_resolver: Callable[[dict[str, Any], Path, str | None], dict[str, Any]] = _default_resolver


def resolve_secrets(cluster: dict[str, Any], path: str | Path, engine: Any) -> dict[str, Any]:
    """`cluster` from file `path` with its `secure:` values decrypted by Pulumi (for preview/launch)."""
    from styx.app.secrets import SecretsError, has_secure

    if not has_secure(cluster):
        return cluster
    try:
        return secret_resolver(cluster, Path(path).expanduser(), getattr(engine, "backend_url", None))
    except SecretsError as e:
        raise StyxError(str(e), EXIT_FAILED) from None


def default_config_file() -> Path | None:
    from styx.app.engine import REPO

    p = REPO / "stacks" / "Pulumi.local.yaml"
    return p if p.is_file() else None


def validate_cluster(cluster: Any, base_dir: Path | None = None, *, source: tuple[str | Path, str | None] | None = None,
                     warn: bool = True):
    """`styx.components.backends.validate` (the one validation; the program runs it too) on a config from a
    file: raises StyxError(exit 2) listing every problem once; prints its warnings on stderr (`warn`).
    `source` = (file, stack) adds the warnings for secrets written in plain text."""
    from styx.components.backends import validate
    from styx.model.config import ConfigError

    try:
        checked = validate(cluster, base_dir, source=source)
    except ConfigError as e:
        raise StyxError("invalid config", EXIT_USAGE, problems=e.problems) from None
    if warn:
        for w in checked.warnings:
            on_warning(w)
    return checked.cfg


def node_names(cluster: dict[str, Any]) -> list[str]:
    from styx.app.secrets import with_placeholders
    from styx.model.config import parse_cluster

    try:
        return [n for n, _r, _s, _i in parse_cluster(with_placeholders(cluster)).nodes()]
    except Exception:
        return ["head"]
