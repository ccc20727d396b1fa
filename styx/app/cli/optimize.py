"""``styx optimize``, ``styx show-gpus`` and ``styx catalog ...``: the optimizer and catalogs on the command line.

Exit codes: 0 ok; 1 no feasible offer, no catalog, or a failed download; 2 bad usage or a bad request.
With ``--json`` stdout carries exactly one JSON document; messages and warnings go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

# the options optimize, show-gpus and catalog show share
catalog_option = click.option(
    "--catalog", "catalog_dir", type=click.Path(file_okay=False),
    help="Directory of catalogs laid out DIR/<cloud>/vms.csv (default: styx's cache, then SkyPilot's).")
clouds_option = click.option("--cloud", "clouds", multiple=True, metavar="CLOUD",
                             help="Only these clouds (repeatable).")
json_only_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only.")


def _load(catalog_dir: str | None):
    from styx.model.catalog import CatalogError, load_catalog

    try:
        return load_catalog(catalog_dir)
    except CatalogError as e:
        raise click.ClickException(str(e)) from e


def _warn(msgs) -> None:
    for m in msgs:
        click.echo(f"WARNING: {m}", err=True)


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.4f}"


def _read_request_file(path: str) -> Any:
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise click.BadParameter(f"{path}: not valid YAML: {e}", param_hint="--request") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise click.BadParameter(f"{path}: neither JSON nor YAML: {e}", param_hint="--request") from e


# --------------------------------------------------------------------------- optimize


@click.command("optimize")
@click.option("--accelerators", "-a", metavar="NAME[:COUNT]", help="e.g. A100:8 (A100 = A100:1).")
@click.option("--cpus", metavar="N|N+", help="vCPUs per node: N exactly, N+ at least.")
@click.option("--memory", metavar="N|N+|Nx", help="GiB per node: N exactly, N+ at least, Nx at least N per vCPU.")
@click.option("--spot", is_flag=True, help="Spot/preemptible instances.")
@clouds_option
@click.option("--region", "regions", multiple=True, metavar="REGION", help="Only these regions (repeatable).")
@click.option("--zone", "zones", multiple=True, metavar="ZONE", help="Only these zones (repeatable).")
@click.option("--any-of", "any_of", multiple=True, metavar="NAME:COUNT",
              help="Also acceptable accelerators; the cheapest wins (repeatable).")
@click.option("--ordered", "ordered", multiple=True, metavar="NAME:COUNT",
              help="Accelerators in order of preference; the first feasible wins (repeatable).")
@click.option("--num-nodes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Identical nodes; the price shown is for all of them.")
@click.option("--instance-type", metavar="TYPE", help="Pin the instance type; only pick where.")
@click.option("--request", "request_file", type=click.Path(exists=True, dir_okay=False),
              help="A request file (YAML/JSON): one node shape, or head + workers groups.")
@click.option("--block", "blocks", multiple=True, metavar="CLOUD[/REGION[/ZONE]]",
              help="Exclude a cloud, region or zone, e.g. after a capacity error (repeatable).")
@catalog_option
@click.option("--top", type=click.IntRange(0, 1000), default=5, show_default=True, help="Alternatives to show.")
@json_only_option
def optimize(accelerators, cpus, memory, spot, clouds, regions, zones, any_of, ordered, num_nodes, instance_type,
             request_file, blocks, catalog_dir, top, as_json):
    """Find the cheapest cloud, region, zone and instance type for the resources asked for."""
    from styx.model.optimizer import Blocklist, RequestError, parse_request, resolve

    if any_of and ordered:
        raise click.UsageError("--any-of and --ordered cannot be combined")
    try:
        if request_file:
            shape = (accelerators, cpus, memory, any_of, ordered, instance_type)
            if any(shape) or num_nodes != 1:
                raise click.UsageError("--request cannot be combined with --accelerators, --cpus, --memory, "
                                       "--any-of, --ordered, --instance-type or --num-nodes")
            data = _read_request_file(request_file)
            if not isinstance(data, dict):
                raise click.UsageError(f"--request {request_file}: expected a mapping")
            if spot:
                data["spot"] = True
            for key, vals in (("clouds", clouds), ("regions", regions), ("zones", zones)):
                if vals:
                    data.pop(key[:-1], None)
                    data[key] = list(vals)
            req = parse_request(data)
        else:
            d: dict[str, Any] = {"spot": spot, "num_nodes": num_nodes}
            if ordered:
                if accelerators:
                    raise click.UsageError("give the accelerators in --ordered only (first = most preferred)")
                d["ordered"] = list(ordered)
            else:
                if accelerators:
                    d["accelerators"] = accelerators
                if any_of:
                    d["any_of"] = list(any_of)
            for k, v in (("cpus", cpus), ("memory", memory), ("instance_type", instance_type)):
                if v is not None:
                    d[k] = v
            for k, v in (("clouds", clouds), ("regions", regions), ("zones", zones)):
                if v:
                    d[k] = list(v)
            req = parse_request(d)
        blocklist = Blocklist(blocks)
        catalog = _load(catalog_dir)
        plan = resolve(req, catalog, blocklist, top_k=top)
    except RequestError as e:
        raise click.UsageError(str(e)) from e

    _warn(plan.warnings)
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2))
        if plan.choice is None:
            sys.exit(1)
        return
    if plan.choice is None:
        click.echo(f"No feasible offer for {req.describe()}.", err=True)
        for r in plan.reasons:
            click.echo(f"  - {r}", err=True)
        sys.exit(1)
    _print_plan(plan)


def _place(c) -> str:
    return "/".join(x for x in (c.cloud, c.region, c.zone) if x)


def _what(c, multi: bool) -> str:
    if not multi:
        n = c.nodes[0]
        return n.offer.instance_type + (f" x{n.count}" if n.count > 1 else "")
    return "; ".join(f"{n.group}: {n.count}x {n.offer.instance_type}" for n in c.nodes)


def _console():
    from rich.console import Console

    # piped output: do not squeeze the table into 80 columns
    return Console(highlight=False, width=None if sys.stdout.isatty() else 180)


def _print_plan(plan) -> None:
    from rich.table import Table

    con = _console()
    c = plan.choice
    multi = len(c.nodes) > 1
    accs = ", ".join(sorted({n.offer.accelerators for n in c.nodes if n.offer.accelerators})) or "no GPU"
    spot = "spot" if all(n.spot for n in c.nodes) else ("on-demand" if not any(n.spot for n in c.nodes) else "mixed")
    con.print(f"[bold]Cheapest:[/bold] {_place(c)}  {_what(c, multi)}  {accs}  {spot}  "
              f"[bold green]{_money(c.price_per_hour)}/h[/bold green]")
    t = Table(title=f"Choice and alternatives for {plan.request.describe()}", title_justify="left")
    cols = [("#", "right"), ("cloud", None), ("region", None), ("zone", None),
            ("nodes" if multi else "instance type", None), ("accelerators", None)]
    if not multi:
        cols += [("vCPUs", "right"), ("memory GiB", "right")]
    cols += [("spot", None), ("$/hour", "right"), ("vs best", "right")]
    for col, just in cols:
        t.add_column(col, justify=just or "left", overflow="fold")
    for i, alt in enumerate((c, *plan.alternatives)):
        n = alt.nodes[0]
        row = [
            "*" if i == 0 else str(i),
            alt.cloud,
            alt.region,
            alt.zone or "-",
            _what(alt, multi),
            ", ".join(x.offer.accelerators or "-" for x in alt.nodes),
        ]
        if not multi:
            row += ["-" if n.offer.vcpus is None else f"{n.offer.vcpus:g}",
                    "-" if n.offer.memory_gib is None else f"{n.offer.memory_gib:g}"]
        row += [
            "yes" if alt.spot else "no",
            _money(alt.price_per_hour),
            "" if i == 0 else f"+{(alt.price_per_hour / c.price_per_hour - 1) * 100:.0f}%",
        ]
        t.add_row(*row, style="bold" if i == 0 else None)
    con.print(t)
    if plan.excluded:
        con.print("[dim]Not chosen:[/dim]")
        for r in plan.reasons:
            con.print(f"[dim]  - {r}[/dim]")


# --------------------------------------------------------------------------- show-gpus


@click.command("show-gpus")
@click.argument("name", required=False, metavar="[NAME[:COUNT]]")
@clouds_option
@catalog_option
@json_only_option
def show_gpus(name, clouds, catalog_dir, as_json):
    """List GPUs: count, cloud, instance type, cheapest on-demand and spot price, and where."""
    from styx.model.optimizer import AcceleratorSpec, RequestError

    catalog = _load(catalog_dir)
    _warn(catalog.warnings)
    count = None
    if name:
        try:
            spec = AcceleratorSpec.parse(name, "NAME")
        except RequestError as e:
            raise click.UsageError(str(e)) from e
        canon = catalog.canonical_accelerator(spec.name)
        if canon is None:
            sugg = catalog.suggest_accelerators(spec.name)
            hint = f"; did you mean {', '.join(sugg)}?" if sugg else ""
            raise click.UsageError(f"NAME: unknown accelerator {spec.name!r}{hint}")
        count = spec.count if ":" in name else None
        name = canon
    rows = catalog.gpu_summary(name, [c.lower() for c in clouds] or None)
    if count is not None:
        rows = [r for r in rows if float(r["count"]) == float(count)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No GPU offers match.", err=True)
        sys.exit(1)
    from rich.table import Table

    t = Table(title="GPUs in the catalogs (per node, $/hour)", title_justify="left")
    for col, kw in (("GPU", {}), ("count", {"justify": "right"}), ("cloud", {}), ("instance type", {}),
                    ("vCPUs", {"justify": "right"}), ("memory GiB", {"justify": "right"}),
                    ("GPU mem GiB", {"justify": "right"}), ("on-demand", {"justify": "right"}), ("where", {}),
                    ("spot", {"justify": "right"}), ("where (spot)", {})):
        t.add_column(col, overflow="fold", **kw)
    for r in rows:
        t.add_row(
            r["accelerator"],
            f"{r['count']:g}",
            r["cloud"],
            r["instance_type"],
            "-" if r["vcpus"] is None else f"{r['vcpus']:g}",
            "-" if r["memory_gib"] is None else f"{r['memory_gib']:g}",
            "-" if r["gpu_memory_gib"] is None else f"{r['gpu_memory_gib']:g}",
            _money(r["price"]),
            r["price_where"] or "-",
            _money(r["spot_price"]),
            r["spot_where"] or "-",
        )
    _console().print(t)


# --------------------------------------------------------------------------- catalog


@click.group("catalog")
def catalog_group():
    """Instance catalogs: download and inspect."""


@catalog_group.command("refresh")
@click.option("--cloud", "clouds", multiple=True, metavar="CLOUD",
              help="Clouds to download (repeatable; default aws, gcp, azure, lambda).")
@click.option("--url", "base_url", metavar="BASE", default=None,
              help="Base URL holding <cloud>/vms.csv (default: SkyPilot's public catalog, v8).")
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Where to save (default $STYX_HOME/catalogs/v8).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True, help="Seconds per file.")
def catalog_refresh(clouds, base_url, dest, timeout):
    """Download the public catalogs into styx's cache (atomically; a failure keeps the old copy)."""
    from styx.model.catalog import CatalogRefreshError
    from styx.model.catalog import refresh as do_refresh
    from styx.model.catalog.fetch import DEFAULT_BASE_URL

    try:
        results = do_refresh(clouds or None, base_url=base_url or DEFAULT_BASE_URL, dest=dest, timeout=timeout)
    except CatalogRefreshError as e:
        for r in getattr(e, "results", []):
            click.echo(f"saved {r.cloud}: {r.path} ({r.rows} rows) from {r.url}")
        raise click.ClickException(str(e)) from e
    for r in results:
        click.echo(f"saved {r.cloud}: {r.path} ({r.rows} rows) from {r.url}")


@catalog_group.command("show")
@catalog_option
@json_only_option
def catalog_show(catalog_dir, as_json):
    """Which catalog files are used, where they came from and how old they are."""
    catalog = _load(catalog_dir)
    info = catalog.describe()
    if as_json:
        click.echo(json.dumps({"catalogs": info, "warnings": catalog.warnings}, indent=2))
        return
    _warn(catalog.warnings)
    for d in info:
        click.echo(f"{d['cloud']:8} {d['offers']:6} offers  {d['age_days']:6.1f} days old  {d['origin']:15} {d['path']}"
                   + (f"  ({d['url']})" if d["url"] else ""))
