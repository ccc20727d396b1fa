"""`styx validate CONFIG`: check a cluster file without an engine (exit 2 on a config error)."""

from __future__ import annotations

import click

from styx.app.cli.common import StyxError, emit_json, handle_errors, json_option, load_config_file, validate_cluster


@click.command("validate")
@click.argument("config", type=click.Path(dir_okay=False))
@json_option
@handle_errors
def validate(config, as_json):
    """Validate CONFIG (a cluster file or a Pulumi stack file). One line per problem, naming its key path."""
    try:
        cluster, base_dir, stack = load_config_file(config, warn=False)
        cfg = validate_cluster(cluster, base_dir, source=(config, stack), warn=not as_json)
    except StyxError as e:
        if as_json:
            emit_json({"ok": False, "config": config, "error": e.message, "exit_code": e.code,
                       "problems": e.problems or [e.message]})
            raise SystemExit(e.code) from None
        for p in e.problems or [e.message]:
            click.echo(p, err=True)
        raise SystemExit(e.code) from None
    nodes = [{"name": n, "role": r} for n, r, _s, _i in cfg.nodes()]
    if as_json:
        emit_json({"ok": True, "config": config, "cluster": cfg.name, "cloud": cfg.cloud, "stack": stack,
                   "nodes": nodes, "problems": []})
        return
    click.echo(f"{config}: ok: cluster {cfg.name} on {cfg.cloud}, {len(nodes)} node(s)")
