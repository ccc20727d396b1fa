"""`styx launch`: create or select the stack, write its config, run `up` with live per-node progress.

Capacity failover: when a node fails with a capacity/quota error (the backend's `capacity_patterns`),
its zone (or region) is blocked and the launch re-runs at `styx.app.failover.next_placement` (the
backend's next listed zone, e.g. of `local.zones`; catalog clouds: the optimizer's next-cheapest
choice). `--retry-until-up` starts over (blocklist cleared) after a pause when every place has been
tried. Ctrl-C: the first cancels (running steps finish, state is saved; `styx launch` again
resumes), the second stops at once, the third aborts styx.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from styx.app.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    BackendChoice,
    StyxError,
    backend_option,
    default_config_file,
    emit_json,
    handle_errors,
    info,
    is_interactive,
    json_option,
    make_engine,
    stack_option,
    yes_option,
)


def persist_secret_env(names: tuple[str, ...] | list[str], source: Path | None, engine: Any) -> dict[str, str]:
    """`--secret-env NAME`: store $NAME encrypted in the stack file `source` (like `styx secret set`).

    Returns what could not be persisted in a stack file (a quick cluster, `--stack` re-applying the
    stored config, a plain cluster file): those go into the stack's stored config only (encrypted).
    """
    from styx.app.secrets import project_dir_of, stack_of_file

    values = {}
    for var in names:
        if var not in os.environ:
            raise StyxError(f"--secret-env {var}: the environment variable {var} is not set", EXIT_USAGE)
        values[var] = os.environ[var]
    if not values:
        return {}
    project = project_dir_of(source) if source is not None else None
    stack = stack_of_file(source) if source is not None else None
    if project is None or stack is None:
        info("note: --secret-env " + ", ".join(values) + ": no project stack file to keep it in; it is stored "
             "(encrypted) in this stack's config only, so pass it again when launching from a file")
        return values
    for var, value in values.items():
        store_secret(project, stack, f"setup.secret_env.{var}", value, getattr(engine, "backend_url", None))
        info(f"stored setup.secret_env.{var} encrypted in {source} (stack {stack})")
    return {}


def _store_secret(project: Path, stack: str, dotted: str, value: str, backend_url: str | None) -> None:
    from styx.app.secrets import SecretsError, set_secret

    try:
        set_secret(project, stack, dotted, value, backend_url=backend_url)
    except SecretsError as e:
        raise StyxError(str(e), EXIT_FAILED) from None


# Tests replace this (a fake engine has no Pulumi to encrypt with).
store_secret = _store_secret


def _interrupt_note(ui):
    def note(n: int, forwarded: bool) -> None:
        if n == 1:
            ui.note("^C: cancelling - running steps finish and the state is saved (^C again to stop now)")
        else:
            ui.note("^C: stopping now (the next `styx launch` repairs any pending operations)")

    return note


@click.command("launch")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@stack_option
@backend_option
@click.option("--name", help="Cluster name (overrides the file's).")
@click.option("--cloud", type=BackendChoice(), help="Backend (one of the registered backends).")
@click.option("--workers", type=click.IntRange(0, 1000), help="Number of workers (first worker group).")
@click.option("--accelerators", metavar="NAME[:N]", help="GPUs per node, e.g. A100:8 (clouds: picks the type).")
@click.option("--instance-type", help="Instance type for every node.")
@click.option("--region")
@click.option("--zone")
@click.option("--subnet", help="local backend: the sandbox subnet, e.g. 10.78.0.0/24.")
@click.option("--no-ray", is_flag=True, help="Do not install/start Ray.")
@click.option("--retry-until-up", is_flag=True, help="When every place is out of capacity, wait and start over.")
@click.option("--retry-interval", type=click.IntRange(1, 3600), default=60, show_default=True,
              help="Seconds to wait between rounds with --retry-until-up.")
@click.option("--max-rounds", type=click.IntRange(1, 100000), default=None,
              help="With --retry-until-up: give up after this many rounds.")
@click.option("--no-failover", is_flag=True, help="Fail on a capacity error instead of trying the next place.")
@click.option("--secret-env", "secret_env", multiple=True, metavar="NAME",
              help="Add setup.secret_env NAME with the value of the environment variable NAME (stored encrypted; "
                   "never on the command line).")
@yes_option("Repair a stack with pending operations without asking.")
@json_option
@handle_errors
def launch(config, stack_name, backend, name, cloud, workers, accelerators, instance_type, region, zone, subnet,
           no_ray, retry_until_up, retry_interval, max_rounds, no_failover, secret_env, yes, as_json):
    """Create or update a cluster (a Pulumi stack) and wait until every node is set up.

    CONFIG is a YAML file holding the cluster object, or a Pulumi stack file (config: styx:cluster).
    Without CONFIG: flags like --name/--cloud/--workers make a quick cluster; with only --stack the
    stack's stored config is re-applied; with nothing, stacks/Pulumi.local.yaml is used.
    """
    from styx.app import api

    engine = make_engine(backend)
    flags = dict(name=name, cloud=cloud, workers=workers, accelerators=accelerators, instance_type=instance_type,
                 region=region, zone=zone, subnet=subnet, no_ray=no_ray)
    source: Path | None = None  # the config file, when the cluster comes from one (only --secret-env needs it)
    if config:
        source = Path(config)
    elif secret_env and not (name or cloud) and not (stack_name and engine.exists(stack_name)):
        source = default_config_file()
    in_memory = persist_secret_env(secret_env, source, engine)
    confirm = None
    if is_interactive() and not as_json:
        def confirm(question: str) -> bool:
            return click.confirm(question, default=False, err=True)
    result = api.launch(config, stack=stack_name, backend=backend, overrides=flags, secret_env=in_memory,
                        failover=not no_failover, retry_until_up=retry_until_up, retry_interval=retry_interval,
                        max_rounds=max_rounds, repair=yes, confirm_repair=confirm, on_info=info,
                        run_update=progress_update)
    if as_json:
        emit_json({**asdict(result), "ok": True, "failures": []})
        return
    stack, outputs = result.stack, result.outputs
    nodes = outputs.get("nodes") or []
    click.echo(f"cluster {result.cluster} (stack {stack}) is up in {result.duration_s:.0f}s: "
               f"{len(nodes)} node(s), head {outputs.get('head_ip', '?')}")
    if outputs.get("ray_address") and result.ray_enabled:
        click.echo(f"  ray:       {outputs['ray_address']}  (styx dashboard -s {stack})")
    click.echo(f"  ssh:       styx ssh -s {stack} [NODE]")
    click.echo(f"  status:    styx status -s {stack}")
    click.echo(f"  tear down: styx down -s {stack} --yes")


def progress_update(session: Any, tracker: Any, title: str, op: str):
    """api.RunUpdate for the terminal: the live table (or one line per change), Ctrl-C notes."""
    from styx.app.cli.progress import ProgressUI
    from styx.app.session import sigint_forwarding

    with ProgressUI(tracker, title) as ui, sigint_forwarding(session, _interrupt_note(ui)) as sig:
        result = (session.up if op == "up" else session.destroy)(on_event=tracker.handle)
    return result, sig["count"]
