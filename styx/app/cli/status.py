"""`styx status` and `styx cost-report`: what runs where, how healthy, since when, at what price.

Both read only the stack (outputs, config, history): prices are the ones recorded at launch
(`styx:pricing`), never the live catalog.
"""

from __future__ import annotations

from typing import Any

import click

from styx.app.api import cluster_record  # noqa: F401  (re-exported: tests read it here)
from styx.app.cli.common import (
    backend_option,
    emit_json,
    handle_errors,
    human_duration,
    info,
    iso,
    json_option,
    make_engine,
    money,
    now,
    stack_option,
    stdout_console,
)


def _ray_text(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if r.get("enabled") is False:
        return "disabled"
    if r.get("ok"):
        return f"healthy ({r.get('active_nodes')}/{r.get('expected_nodes')} nodes)"
    if "active_nodes" in r:
        return f"degraded ({r.get('active_nodes')}/{r.get('expected_nodes')} nodes)"
    return f"unreachable: {r.get('error', '?')}"


def _drift_text(d: dict[str, Any]) -> str:
    if d.get("clean"):
        return f"none (checked {d.get('at')})"
    parts = [f"{x['node']}/{x['phase']}" for x in d.get("drifted") or []]
    parts += [f"{n} unreachable" for n in d.get("unreachable") or []]
    return f"{', '.join(parts)} (checked {d.get('at')}; `styx repair`)"


def _autostop_text(a: dict[str, Any], stack: str) -> str:
    if a.get("stopped_at"):
        text = f"stopped by autostop at {a['stopped_at']}; `styx launch` or `styx start` brings it back"
        if a.get("action") == "down":
            text += f" (down: true: `styx down --stack {stack}` removes it; the head cannot)"
        return text
    text = f"after {a['idle_minutes']} idle min" + (" (down)" if a.get("down") else "")
    if a.get("busy"):
        text += f"; busy: {a['busy']}"
    elif a.get("idle_since"):
        text += f"; idle since {a['idle_since']}"
    return text


@click.command("status")
@stack_option
@backend_option
@click.option("--no-ray", is_flag=True, help="Skip the Ray health check (no SSH).")
@click.option("--ray-timeout", type=click.IntRange(5, 300), default=20, show_default=True,
              help="Seconds for `ray status` on each head.")
@json_option
@handle_errors
def status(stack_name, backend, no_ray, ray_timeout, as_json):
    """Clusters (stacks): nodes, roles, addresses, phases, Ray health, uptime and $/hour."""
    from styx.app.api import status_records

    at = now()
    backend_url, records = status_records(stack_name, backend=backend, ray=not no_ray, ray_timeout=ray_timeout, at=at)
    if as_json:
        emit_json({"ok": True, "backend": backend_url, "at": iso(at), "clusters": records})
        return
    if not records:
        info(f"no clusters on {backend_url}")
        return
    from rich.table import Table

    con = stdout_console()
    for r in records:
        head = (f"{r['stack']}: {r['cluster'] or '?'} on {r['cloud'] or '?'} - {r['state']}, "
                f"up {human_duration(r['uptime_s'])}, {money(r['price_per_hour'])}/h, "
                f"ray {_ray_text(r['ray'])}")
        con.print(head, markup=False)
        if r["last_update"]:
            lu = r["last_update"]
            con.print(f"  last update: {lu['kind']} {lu['result']} at {lu['end'] or lu['start']}", markup=False)
        if r.get("drift"):
            con.print(f"  drift: {_drift_text(r['drift'])}", markup=False)
        if r.get("preempted"):
            con.print(f"  preempted: {', '.join(r['preempted'])} (spot machine gone): `styx launch` makes "
                      "it again with its phases", markup=False)
        if r.get("stopped_s"):
            con.print("  stopped: " + ", ".join(f"{n} {human_duration(s)}" + (" (now)" if any(
                x["name"] == n and x.get("power") == "stopped" for x in r["nodes"]) else "")
                for n, s in sorted(r["stopped_s"].items())) + " (stopped time costs nothing for compute)",
                markup=False)
        if r.get("autostop"):
            con.print(f"  autostop: {_autostop_text(r['autostop'], r['stack'])}", markup=False)
        if not r["nodes"]:
            continue
        t = Table(show_edge=False, pad_edge=False, box=None)
        for col in ("node", "role", "power", "address", "zone", "type", "phases"):
            t.add_column(col, overflow="fold")
        for n in r["nodes"]:
            ok = sum(1 for p in n["phases"].values() if p["status"] in ("ok", "skipped"))
            bad = [p for p, v in n["phases"].items() if v["status"] not in ("ok", "skipped")]
            ph = f"{ok}/{len(n['phases'])} ok" + (f" (not ok: {', '.join(bad)})" if bad else "")
            addr = n["host"] if n["host"] == n["private_ip"] else f"{n['host']} ({n['private_ip']})"
            t.add_row(n["name"], n["role"], n.get("power", "running"), addr or "-", n.get("zone") or "-",
                      n.get("instance_type") or "-", ph)
        con.print(t)


@click.command("cost-report")
@stack_option
@backend_option
@json_option
@handle_errors
def cost_report(stack_name, backend, as_json):
    """Each cluster's $/hour as priced at launch, uptime, and the total so far."""
    from styx.app.power import stopped_credit, stopped_seconds
    from styx.app.pricing import cost_so_far, parse_iso

    engine = make_engine(backend)
    names = [stack_name] if stack_name else [s.name for s in engine.list_stacks()]
    at = now()
    rows = []
    for name in names:
        from styx.app.cli.common import open_stack

        session = open_stack(engine, name)
        meta = session.meta()
        pricing = meta.get("styx:pricing") if isinstance(meta.get("styx:pricing"), dict) else None
        launched = parse_iso(meta.get("styx:launched_at")) if isinstance(meta.get("styx:launched_at"), str) else None
        if launched is None:
            last = session.last_update()
            launched = last.start if last else None
        cluster = session.cluster() or {}
        rows.append({
            "stack": name,
            "cluster": cluster.get("name"),
            "cloud": cluster.get("cloud"),
            "price_per_hour": pricing.get("per_hour") if pricing else None,
            "priced_at": pricing.get("priced_at") if pricing else None,
            "complete": pricing.get("complete", False) if pricing else False,
            "nodes": pricing.get("nodes", []) if pricing else [],
            "launched_at": iso(launched),
            "uptime_s": round((at - launched).total_seconds()) if launched else None,
            "stopped_s": {k: round(v) for k, v in stopped_seconds(meta, at).items()},
            "stopped_credit": stopped_credit(pricing, meta, at),
            "cost_so_far": max(0.0, round(cost_so_far(pricing, launched, at) - stopped_credit(pricing, meta, at), 6))
            if launched else 0.0,
        })
    total_h = round(sum(r["price_per_hour"] or 0.0 for r in rows), 6)
    total = round(sum(r["cost_so_far"] for r in rows), 6)
    if as_json:
        emit_json({"ok": True, "currency": "USD", "at": iso(at), "clusters": rows,
                   "total_per_hour": total_h, "total_so_far": total})
        return
    if not rows:
        info(f"no clusters on {engine.backend_url}")
        return
    from rich.table import Table

    t = Table(show_edge=False, pad_edge=False, box=None)
    for col in ("stack", "cloud", "types", "$/hour", "priced at", "uptime", "so far"):
        t.add_column(col, justify="right" if col in ("$/hour", "so far") else "left")
    for r in rows:
        types = sorted({f"{n.get('instance_type')}" for n in r["nodes"]})
        note = "" if r["complete"] else " (partial)"
        t.add_row(r["stack"], r["cloud"] or "-", ",".join(types) or "-", money(r["price_per_hour"]) + note,
                  r["priced_at"] or "-", human_duration(r["uptime_s"]), money(r["cost_so_far"], 2))
    t.add_row("total", "", "", money(total_h), "", "", money(total, 2))
    stdout_console().print(t)
