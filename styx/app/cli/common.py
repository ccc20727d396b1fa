"""Shared pieces of the cluster commands: errors and exit codes, --json output, stacks, config files.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or a bad config.
With --json, stdout carries exactly one JSON object (always with "ok"); progress and logs go to stderr.
A failure in --json mode is {"ok": false, "error": MESSAGE, "exit_code": N, "problems": [...]}.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

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


# Tests replace this with a function returning a fake engine (tests/styx/app/cli/fakes.py).
engine_factory: Callable[[str | None], Any] = _default_engine


def make_engine(backend: str | None):
    return engine_factory(backend)


# --------------------------------------------------------------------------- output


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=False)


def stdout_console():
    from rich.console import Console

    return Console(highlight=False)


def info(msg: str) -> None:
    click.echo(msg, err=True)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return iso(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, set | tuple):
        return list(o)
    return str(o)


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def money(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"${v:,.{digits}f}"


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout (stable shape).")(f)


class BackendChoice(click.Choice):
    """`--cloud`: the names in the backend registry (`styx.components.backends`), read when the command
    runs, so a backend registered at run time (a plug-in, a test's) is accepted too."""

    def __init__(self) -> None:
        super().__init__([], case_sensitive=True)

    @property  # type: ignore[override]
    def choices(self):
        from styx.components.backends import backend_names

        return backend_names()

    @choices.setter
    def choices(self, _value) -> None:  # click.Choice.__init__ assigns; the registry is the source
        pass


def backend_option(f):
    return click.option(
        "--backend", metavar="URL", default=None,
        help="Pulumi state backend (default: $PULUMI_BACKEND_URL, else file://$STYX_HOME/state).",
    )(f)


def stack_option(f):
    return click.option("-s", "--stack", "stack_name", metavar="NAME", default=None,
                        help="Stack (cluster) to act on; default: the only stack, if there is one.")(f)


def handle_errors(f):
    """Map exceptions to exit codes and messages (JSON on stdout when --json)."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        as_json = bool(kwargs.get("as_json"))
        try:
            return f(*args, **kwargs)
        except (click.exceptions.Exit, click.Abort, click.UsageError):
            raise
        except StyxError as e:
            _fail(e.message, e.code, e.problems, as_json, e.data)
        except Exception as e:  # engine and environment failures: one clean message
            from styx.model.config import ConfigError

            if isinstance(e, ConfigError):
                _fail("invalid config", EXIT_USAGE, e.problems, as_json)
            try:
                from styx.app.engine import ToolchainMissing
            except Exception:  # pragma: no cover
                ToolchainMissing = ()  # type: ignore[assignment]
            if ToolchainMissing and isinstance(e, ToolchainMissing):
                _fail(str(e), EXIT_FAILED, [], as_json)
            if os.environ.get("STYX_DEBUG"):
                raise
            _fail(f"{type(e).__name__}: {e}", EXIT_FAILED, [], as_json)

    return wrapper


def _fail(message: str, code: int, problems: list[str], as_json: bool, data: dict[str, Any] | None = None):
    if as_json:
        emit_json({**(data or {}), "ok": False, "error": message, "exit_code": code, "problems": problems})
    else:
        click.echo(f"error: {message}", err=True)
        for p in problems:
            click.echo(p, err=True)
    sys.exit(code)


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


def is_interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


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
        click.echo(w, err=True)


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
            click.echo(w, err=True)
    return checked.cfg


def node_names(cluster: dict[str, Any]) -> list[str]:
    from styx.app.secrets import with_placeholders
    from styx.model.config import parse_cluster

    try:
        return [n for n, _r, _s, _i in parse_cluster(with_placeholders(cluster)).nodes()]
    except Exception:
        return ["head"]


def now() -> datetime:
    return datetime.now(UTC)
