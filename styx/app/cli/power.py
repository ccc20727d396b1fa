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
