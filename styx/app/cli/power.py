"""`styx stop` / `styx start`: stop a cluster's machines keeping their disks, start them again
(styx.app.power)."""

from __future__ import annotations

import click

from styx.app.cli.common import backend_option, emit_json, handle_errors, info, json_option, stack_option

node_option = click.option("--node", "nodes", multiple=True, metavar="NODE",
                           help="Only this node (repeat for more); default: every node.")


@click.command("stop")
@stack_option
@backend_option
@node_option
@json_option
@handle_errors
def stop(stack_name, backend, nodes, as_json):
    """Stop a cluster's machines (their disks stay); `styx start` runs them again."""
    from styx.app import api

    r = api.stop(stack_name, backend=backend, nodes=list(nodes) or None, on_info=info)
    if as_json:
        emit_json({"ok": True, "stack": r.stack, "stopped": r.stopped})
    else:
        click.echo(f"cluster {r.stack}: stopped {', '.join(r.stopped) or 'nothing'}")


@click.command("start")
@stack_option
@backend_option
@node_option
@json_option
@handle_errors
def start(stack_name, backend, nodes, as_json):
    """Start a stopped cluster's machines again; only Ray (what a stop loses) runs again."""
    from styx.app import api
    from styx.app.cli.launch import progress_update

    r = api.start(stack_name, backend=backend, nodes=list(nodes) or None, on_info=info, run_update=progress_update)
    if as_json:
        emit_json({"ok": True, "stack": r.stack, "started": r.started, "still_stopped": r.stopped,
                   "repaired": r.repaired})
    else:
        click.echo(f"cluster {r.stack}: started {', '.join(r.started) or 'nothing'}"
                   + (f"; re-ran {', '.join(w['node'] + '/' + w['phase'] for w in r.repaired if 'node' in w)}"
                      if r.repaired else ""))


@click.command("autostop")
@stack_option
@backend_option
@click.option("--idle-minutes", type=click.IntRange(1, 10080), default=None, metavar="N",
              help="Stop the cluster after N idle minutes (no Ray job or task, no interactive SSH session).")
@click.option("--down/--no-down", default=None, help="down: the cluster is to be removed, not kept stopped "
              "(see the README: Autostop); default: as configured (false).")
@click.option("--off", is_flag=True, help="Turn autostop off (the head's watcher stops).")
@json_option
@handle_errors
def autostop(stack_name, backend, idle_minutes, down, off, as_json):
    """Change setup.autostop of a running cluster: only the head's autostop phase runs again."""
    from styx.app import api
    from styx.app.cli.launch import progress_update

    r = api.autostop(stack_name, backend=backend, idle_minutes=idle_minutes, down=down, off=off, on_info=info,
                     run_update=progress_update)
    if as_json:
        emit_json({"ok": True, "stack": r.stack, "autostop": r.autostop, "targets": r.targets, "changes": r.changes})
    elif r.autostop is None:
        click.echo(f"cluster {r.stack}: autostop off")
    else:
        click.echo(f"cluster {r.stack}: autostop after {r.autostop['idle_minutes']} idle minutes"
                   + (" (down)" if r.autostop.get("down") else ""))
