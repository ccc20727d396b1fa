"""`styx preview`: which phases on which nodes would run, change or be replaced."""

from __future__ import annotations

import click

from styx.app.cli.common import (
    backend_option,
    emit_json,
    handle_errors,
    info,
    json_option,
    stack_option,
    stdout_console,
)

ACTIONS = ("create", "update", "replace", "delete")


@click.command("preview")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@stack_option
@backend_option
@click.option("--diff", "show_diff", is_flag=True, help="Also print Pulumi's raw diff.")
@json_option
@handle_errors
def preview(config, stack_name, backend, show_diff, as_json):
    """Show what `styx launch` would do, per node and phase, without changing anything.

    With CONFIG, the preview is of that config (the stack's stored config is restored afterwards);
    without, of the stack's current config.
    """
    from styx.app import api

    result = api.preview(config, stack=stack_name, backend=backend, diff=show_diff, on_info=info)
    name, rows, summary = result.stack, result.rows, result.changes
    if as_json:
        body = {"ok": True, "stack": name, "changes": summary, "nodes": result.nodes, "rows": rows}
        if show_diff:
            body["diff"] = result.diff
        emit_json(body)
        return
    if show_diff:
        click.echo(result.diff)
    from rich.table import Table

    t = Table(show_edge=False, pad_edge=False, box=None)
    for col in ("node", *ACTIONS, "unchanged"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["node"], *[", ".join(r[a]) or "-" for a in ACTIONS], str(len(r["same"])))
    stdout_console().print(t)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.items())) or "no changes"
    click.echo(f"{name}: {counts}")
