"""`styx secret set|list|rm`: setup.secret_env values, encrypted in the project's stack file.

`styx secret set NAME --stack S < value-file` is `pulumi config set --secret --path
'styx:cluster.setup.secret_env.NAME'` on stacks/Pulumi.S.yaml (same backend and passphrase as styx;
the stack is created in the backend when missing). The value is read from stdin (no echo on a tty)
and handed to Pulumi on stdin: never on a command line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from styx.app.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    StyxError,
    backend_option,
    emit_json,
    handle_errors,
    info,
    json_option,
    stack_option,
)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def target(config: str | None, stack_name: str | None) -> tuple[Path, Path, str]:
    """(project dir, stack file, stack) the command acts on."""
    from styx.app import secrets
    from styx.app.engine import REPO

    if config:
        f = Path(config).expanduser()
        stack = secrets.stack_of_file(f)
        project = secrets.project_dir_of(f)
        if stack is None or project is None:
            raise StyxError(f"{config}: not a stack file Pulumi.<stack>.yaml in a project's stackConfigDir "
                            "(secrets are kept encrypted in the project's stack files)", EXIT_USAGE)
        if stack_name and stack_name != stack:
            raise StyxError(f"{config} is the config of stack {stack}, not {stack_name}", EXIT_USAGE)
        return project, f, stack
    stack = stack_name or "local"
    f = secrets.stack_file(REPO, stack)
    return REPO, f, stack


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise StyxError(f"{name!r} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)", EXIT_USAGE)


def read_value(name: str) -> str:
    """The secret from stdin: a hidden prompt on a terminal, else all of stdin (one trailing newline dropped)."""
    stdin = sys.stdin
    try:
        tty = stdin.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        value = click.prompt(f"value of {name}", hide_input=True, err=True)
    else:
        value = stdin.read()
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
    if value == "":
        raise StyxError(f"no value for {name} on stdin (styx secret set {name} < value-file)", EXIT_USAGE)
    return value


def _backend(backend: str | None) -> str:
    from styx.app.engine import default_backend_url

    return backend or default_backend_url()


@click.group("secret")
def secret_group() -> None:
    """Secrets (setup.secret_env) kept encrypted in the project's stack files (stacks/Pulumi.<stack>.yaml)."""


@secret_group.command("set")
@click.argument("name")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@stack_option(help="Stack whose file (stacks/Pulumi.NAME.yaml) holds the secret; default: local, or CONFIG's.")
@backend_option
@handle_errors
def secret_set(name, config, stack_name, backend):
    """Set secret_env NAME from stdin (never from the command line), encrypted: styx secret set NAME < file."""
    from styx.app.secrets import SecretsError, set_secret

    _check_name(name)
    project, f, stack = target(config, stack_name)
    if not f.is_file():
        raise StyxError(f"{f}: no such stack file; write the cluster there first (config: styx:cluster)",
                        EXIT_USAGE)
    value = read_value(name)
    try:
        set_secret(project, stack, f"setup.secret_env.{name}", value, backend_url=_backend(backend))
    except SecretsError as e:
        raise StyxError(str(e), EXIT_FAILED) from None
    info(f"stored styx:cluster.setup.secret_env.{name} encrypted in {f} (stack {stack}); "
         f"`styx launch {_rel(f)}` puts it on the nodes")


@secret_group.command("list")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@stack_option(help="Stack (default: local).")
@json_option
@handle_errors
def secret_list(config, stack_name, as_json):
    """The secret_env names in the stack file (never their values); plain-text ones are marked."""
    from styx.app.secrets import list_secret_env

    _project, f, stack = target(config, stack_name)
    if not f.is_file():
        raise StyxError(f"{f}: no such stack file", EXIT_USAGE)
    items = list_secret_env(f)
    if as_json:
        emit_json({"ok": True, "stack": stack, "file": str(f),
                   "secrets": [{"name": n, "encrypted": enc} for n, enc in items]})
        return
    for n, enc in items:
        click.echo(n if enc else f"{n}  (PLAIN TEXT: styx secret set {n} --stack {stack} < value-file)")
    if not items:
        info(f"no secret_env in {f}")


@secret_group.command("rm")
@click.argument("name")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@stack_option(help="Stack (default: local).")
@backend_option
@handle_errors
def secret_rm(name, config, stack_name, backend):
    """Remove secret_env NAME from the stack file (the next `styx launch` removes it from the nodes)."""
    from styx.app.secrets import SecretsError, list_secret_env, remove_secret

    _check_name(name)
    project, f, stack = target(config, stack_name)
    if name not in [n for n, _ in list_secret_env(f)]:
        raise StyxError(f"no secret_env {name} in {f}", EXIT_FAILED)
    try:
        remove_secret(project, stack, f"setup.secret_env.{name}", backend_url=_backend(backend))
    except SecretsError as e:
        raise StyxError(str(e), EXIT_FAILED) from None
    info(f"removed styx:cluster.setup.secret_env.{name} from {f} (stack {stack})")


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)

