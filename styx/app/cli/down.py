"""`styx down`: destroy every resource of a cluster and remove its stack."""

from __future__ import annotations

import click

from styx.app.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    StyxError,
    backend_option,
    emit_json,
    handle_errors,
    info,
    is_interactive,
    json_option,
    make_engine,
    pick_stack,
    stack_option,
    yes_option,
)


@click.command("down")
@stack_option
@backend_option
@yes_option("Do not ask (required when stdin is not a terminal).")
@click.option("--keep-stack", is_flag=True, help="Destroy the resources but keep the (empty) stack.")
@json_option
@handle_errors
def down(stack_name, backend, yes, keep_stack, as_json):
    """Destroy a cluster's machines and setup, then remove its stack."""
    from styx.app import api
    from styx.app.cli.launch import progress_update

    engine = make_engine(backend)
    name = pick_stack(engine, stack_name)  # api.down opens it (and says so when it does not exist)
    if not yes:
        if not is_interactive() or as_json:
            raise StyxError(f"refusing to destroy {name} without --yes (stdin is not a terminal)", EXIT_USAGE)
        if not click.confirm(f"Destroy cluster {name} and everything on it?", default=False, err=True):
            raise StyxError("not destroyed", EXIT_FAILED)
    result = api.down(name, backend=backend, keep_stack=keep_stack, on_info=info, run_update=progress_update)
    if as_json:
        emit_json({"ok": True, "stack": name, "destroyed": True, "removed": result.removed,
                   "changes": result.changes})
    else:
        click.echo(f"cluster {name}: destroyed" + (" and stack removed" if result.removed else ""))
