"""`styx preview`: which phases on which nodes would run, change or be replaced."""

from __future__ import annotations

import click

from styx.app.cli.common import (
    EXIT_FAILED,
    StyxError,
    backend_option,
    emit_json,
    handle_errors,
    json_option,
    load_config_file,
    make_engine,
    node_names,
    resolve_secrets,
    stack_option,
    stdout_console,
    validate_cluster,
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
    from styx.app.cli.common import pick_stack
    from styx.app.cli.progress import PlanCollector

    engine = make_engine(backend)
    created = False
    restore = None
    if config:
        cluster, base_dir, implied = load_config_file(config, warn=False)
        validate_cluster(cluster, base_dir, source=(config, implied))
        cluster = resolve_secrets(cluster, config, engine)  # secure: values, decrypted by Pulumi
        name = stack_name or implied or cluster["name"]
        existed = engine.exists(name)
        if existed:
            session = engine.open(name)
            restore = session.cluster()
        session = engine.create_or_select(name, cluster, base_dir)
        created = not existed
    else:
        name = pick_stack(engine, stack_name)
        from styx.app.cli.common import open_stack

        session = open_stack(engine, name)
        cluster = session.cluster()
        if cluster is None:
            raise StyxError(f"stack {name} has no styx:cluster config; pass a CONFIG file", EXIT_FAILED)
        validate_cluster(cluster, session.base_dir())  # the stack's stored config: the same checks, exit 2
        session.bind_program()
    collector = PlanCollector(cluster["name"], node_names(cluster))
    try:
        result = session.preview(on_event=collector.handle, diff=show_diff)
    finally:
        if restore is not None:
            session.set_cluster(restore)
        if created:
            session.remove()
    if not result.ok:
        for e in collector.errors[-10:]:
            click.echo(e, err=True)
        raise StyxError(f"preview of {name} failed: {(result.error or '').strip()[-1500:]}", EXIT_FAILED)
    rows = collector.compact()
    summary = result.changes or collector.summary
    if as_json:
        body = {"ok": True, "stack": name, "changes": summary, "nodes": collector.plan, "rows": rows}
        if show_diff:
            body["diff"] = result.stdout
        emit_json(body)
        return
    if show_diff:
        click.echo(result.stdout)
    from rich.table import Table

    t = Table(show_edge=False, pad_edge=False, box=None)
    for col in ("node", *ACTIONS, "unchanged"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["node"], *[", ".join(r[a]) or "-" for a in ACTIONS], str(len(r["same"])))
    stdout_console().print(t)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.items())) or "no changes"
    click.echo(f"{name}: {counts}")
