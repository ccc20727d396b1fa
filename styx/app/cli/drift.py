"""`styx drift` and `styx repair`: find what changed on the nodes since their phases ran; put it back.

Exit codes of `styx drift`: 0 every node as its phases left it, 3 drift found (or a node unreachable),
1 the check itself failed, 2 bad usage.
"""

from __future__ import annotations

import click

from styx.app.cli.common import (
    EXIT_FAILED,
    StyxError,
    backend_option,
    emit_json,
    handle_errors,
    info,
    json_option,
    stack_option,
    stdout_console,
)

EXIT_DRIFT = 3


def print_report(report) -> None:
    from rich.table import Table

    con = stdout_console()
    t = Table(show_edge=False, pad_edge=False, box=None)
    for col in ("node", "phase", "status", "detail"):
        t.add_column(col, overflow="fold")
    for n in report.nodes:
        for p in n.phases:
            t.add_row(n.node, p.phase, p.status, p.detail)
    con.print(t)
    d = report.as_dict()
    if report.clean:
        con.print(f"{report.stack}: no drift on {len(report.nodes)} node(s)", markup=False)
    else:
        con.print(f"{report.stack}: {len(d['drifted'])} phase(s) drifted, {len(d['unreachable'])} node(s) "
                  "unreachable: `styx repair` puts them back", markup=False)


@click.command("drift")
@stack_option
@backend_option
@click.option("--node", "nodes", multiple=True, help="Check only this node (repeatable).")
@click.option("--parallel", type=click.IntRange(1, 256), default=16, show_default=True, help="Nodes at a time.")
@click.option("--timeout", type=click.IntRange(5, 3600), default=120, show_default=True,
              help="Seconds for each phase's check.")
@json_option
@handle_errors
def drift(stack_name, backend, nodes, parallel, timeout, as_json):
    """Check, read-only, that every node still is as its setup phases left it."""
    from styx.app import api

    report = api.drift(stack_name, backend=backend, nodes=list(nodes) or None, parallel=parallel, timeout=timeout)
    if as_json:
        emit_json({"ok": True, **report.as_dict()})
    else:
        print_report(report)
    if not report.clean:
        raise SystemExit(EXIT_DRIFT)


@click.command("repair")
@stack_option
@backend_option
@json_option
@handle_errors
def repair(stack_name, backend, as_json):
    """Re-run, through the engine, exactly the drifted phases (and those after them on their node)."""
    from styx.app import api
    from styx.app.cli.launch import progress_update

    report = api.drift(stack_name, backend=backend)
    if not as_json:
        print_report(report)
    r = api.repair(report.stack, backend=backend, report=report, on_info=info,
                   run_update=None if as_json else progress_update)
    if not r.ok:
        raise StyxError(f"repair of {r.stack} failed", EXIT_FAILED)
    if as_json:
        emit_json({"ok": True, "stack": r.stack, "replaced": r.replaced, "changes": r.changes, "phases": r.phases,
                   "before": report.as_dict()})
    elif r.replaced:
        click.echo(f"{r.stack}: repaired {len(r.replaced)} resource(s); run `styx drift` to check")
