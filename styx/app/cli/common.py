"""Shared pieces of the cluster commands: --json output, options, error handling. Errors and exit codes,
the engine, stacks and config files are the application's (styx.app.project), re-exported here.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or a bad config.
With --json, stdout carries exactly one JSON object (always with "ok"); progress and logs go to stderr.
A failure in --json mode is {"ok": false, "error": MESSAGE, "exit_code": N, "problems": [...]}.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from styx.app.pricing import iso
from styx.app.project import (  # noqa: F401  (re-exported for the commands)
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    StyxError,
    default_config_file,
    load_config_file,
    make_engine,
    node_names,
    open_stack,
    pick_stack,
    resolve_secrets,
    validate_cluster,
)

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


def stack_option(f=None, *, help: str = "Stack (cluster) to act on; default: the only stack, if there is one."):
    """`-s/--stack NAME` (as `@stack_option`, or `@stack_option(help=...)` where the default differs)."""
    option = click.option("-s", "--stack", "stack_name", metavar="NAME", default=None, help=help)
    return option if f is None else option(f)


def yes_option(help: str):
    """`-y/--yes`: what it skips asking differs per command, so each says it."""
    return click.option("-y", "--yes", is_flag=True, help=help)


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


def is_interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def now() -> datetime:
    return datetime.now(UTC)
