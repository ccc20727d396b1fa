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
    node_names,
    open_stack,
    stack_option,
)


@click.command("down")
@stack_option
@backend_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask (required when stdin is not a terminal).")
@click.option("--keep-stack", is_flag=True, help="Destroy the resources but keep the (empty) stack.")
@json_option
@handle_errors
def down(stack_name, backend, yes, keep_stack, as_json):
    """Destroy a cluster's machines and setup, then remove its stack."""
    from styx.app.cli.launch import _interrupt_note, _print_failure, repair_pending
    from styx.app.cli.progress import ProgressUI, Tracker
    from styx.app.session import sigint_forwarding

    engine = make_engine(backend)
    session = open_stack(engine, stack_name)
    name = session.name
    if not yes:
        if not is_interactive() or as_json:
            raise StyxError(f"refusing to destroy {name} without --yes (stdin is not a terminal)", EXIT_USAGE)
        if not click.confirm(f"Destroy cluster {name} and everything on it?", default=False, err=True):
            raise StyxError("not destroyed", EXIT_FAILED)
    repair_pending(session, True, as_json)
    cluster = session.cluster() or {"name": name}
    tracker = Tracker(cluster.get("name", name), node_names(cluster) if "cloud" in cluster else ["head"])
    info(f"destroying {name} ...")
    with ProgressUI(tracker, f"styx down {name}") as ui, sigint_forwarding(session, _interrupt_note(ui)):
        result = session.destroy(on_event=tracker.handle)
    if not result.ok:
        _print_failure(tracker.failures(), result.error)
        raise StyxError(f"destroy of {name} failed" + (" (cancelled)" if result.cancelled else "")
                        + "; run `styx down` again", EXIT_FAILED)
    removed = False
    if not keep_stack:
        session.remove()
        removed = True
    if as_json:
        emit_json({"ok": True, "stack": name, "destroyed": True, "removed": removed, "changes": result.changes})
    else:
        click.echo(f"cluster {name}: destroyed" + (" and stack removed" if removed else ""))
