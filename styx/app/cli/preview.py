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
@click.option("--markdown", "markdown", is_flag=False, flag_value="-", default=None, metavar="[FILE]",
              help="Write the preview as markdown (a pull-request comment section: why each phase changes, "
                   "resource counts, policy findings, $/hour before and after) to FILE, or stdout.")
@click.option("--policy-pack", "policy_packs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Run this policy pack on the preview (repeatable); its findings are in the report.")
@json_option
@handle_errors
def preview(config, stack_name, backend, show_diff, markdown, policy_packs, as_json):
    """Show what `styx launch` would do, per node and phase, without changing anything.

    With CONFIG, the preview is of that config (the stack's stored config is restored afterwards);
    without, of the stack's current config.
    """
    from styx.app import api

    result = api.preview(config, stack=stack_name, backend=backend, diff=show_diff, on_info=info,
                         policy_packs=policy_packs)
    name, rows, summary = result.stack, result.rows, result.changes
    if markdown is not None:
        from styx.app.preview_report import render_markdown

        text = render_markdown(result.report, redact=result.redact)
        if markdown == "-":
            click.echo(text, nl=False)
        else:
            with open(markdown, "w") as f:
                f.write(text)
            info(f"{name}: preview written to {markdown}")
    if as_json:
        import json

        from styx.app.preview_report import scrub

        body = {"ok": result.ok, "stack": name, "changes": summary, "nodes": result.nodes, "rows": rows,
                "report": result.report}
        if not result.ok:  # only mandatory policy findings make a preview come back not ok
            body.update(error=result.report.get("error"), exit_code=1)
        if show_diff:
            body["diff"] = result.diff
        emit_json(json.loads(scrub(json.dumps(body), result.redact)))
        raise SystemExit(0 if result.ok else 1)
    if markdown == "-":
        raise SystemExit(0 if result.ok else 1)
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
    if not result.ok:
        click.echo(f"{name}: {result.report.get('error')}", err=True)
        raise SystemExit(1)
