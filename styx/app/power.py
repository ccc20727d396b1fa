"""`styx stop` / `styx start`: machines stopped with their disks, and started again with only Ray re-run.

The power state is a record in the stack (`styx:power`), written by styx, never by the program:

    {"stopped": {"worker-0": "2026-12-02T04:40:00Z"},            # node -> stopped since
     "intervals": [{"node": "head", "from": ISO, "to": ISO}]}     # closed stopped intervals

Stopping needs `Feature.STOP` and goes one of two ways. A local sandbox is stopped by the backend
(`Backend.stop_machines`), not through the engine: Pulumi's resources stay as they are. On a cloud
(`Backend.power_in_program`: AWS, GCP) the record is the program's input: each machine's run state
follows it (AWS: an `InstanceState` per node; GCP: the Instance's `desired_status`), and styx applies
a change with an `up --target` of just those resources (`Backend.power_urns`): no phase depends on
them, so nothing re-runs and no instance is replaced; starting refreshes the machines too (a new
public address after a start, where the node has no static one: `aws.static_ip`/`gcp.static_ip` false, or a
spot VM; with one, the address every phase dials stays, and no phase changes). Either way nothing dials a
stopped node. Starting runs the machines again, then `drift` on them finds what a stop loses (the
processes: Ray) and `repair` replaces exactly that through the engine (the phases whose files survive the
stop stay untouched).
While any node is stopped, `styx launch` refuses (run `styx start`), and `styx down` starts the
machines first so the phases' undos can run. A stopped interval costs nothing for compute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from styx.app.project import EXIT_FAILED, EXIT_USAGE, StyxError

META_KEY = "styx:power"


def record(meta: Mapping[str, Any]) -> dict[str, Any]:
    rec = meta.get(META_KEY)
    rec = rec if isinstance(rec, dict) else {}
    out = {"stopped": dict(rec.get("stopped") or {}), "intervals": list(rec.get("intervals") or [])}
    if isinstance(rec.get("autostop"), dict):
        out["autostop"] = dict(rec["autostop"])
    return out


def autostopped(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The last stop by autostop ({"at", "action", "nodes"}) while any of its nodes is still stopped."""
    rec = record(meta)
    a = rec.get("autostop")
    if a and any(n in rec["stopped"] for n in a.get("nodes") or []):
        return a
    return None


def reconcile_autostop(session: Any, cluster: Mapping[str, Any] | None,
                       info: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """What the backend says autostop did (`Backend.autostop_record`), once into the stack's power record:
    its nodes stopped since its time (so that status, cost credit and `launch` know). Returns the
    autostop now in force (None: none)."""
    from styx.components.backends import backend_class
    from styx.components.backends.base import Feature

    if not cluster or not cluster.get("cloud"):
        return None
    try:
        backend = backend_class(cluster.get("cloud"))()
    except (ValueError, ImportError):  # an unknown cloud in an old stack, a missing SDK: nothing to reconcile
        return None
    if Feature.AUTOSTOP not in backend.features:
        return None
    rec = record(session.meta())
    seen = (_shut_down(session, backend, cluster, rec) if backend.autostop_poweroff
            else backend.autostop_record(cluster))
    if seen and (rec.get("autostop") or {}).get("at") != seen["at"]:
        mark_stopped(rec, seen["nodes"], seen["at"])
        rec["autostop"] = {"at": seen["at"], "action": seen["action"], "nodes": list(seen["nodes"])}
        if "synced" in seen:  # stopped outside the program: its run-state inputs still say running
            rec["autostop"]["synced"] = seen["synced"]
        session.set_meta(META_KEY, rec)
        if info:
            info(f"{session.name}: stopped by autostop at {seen['at']} ({', '.join(seen['nodes'])})")
    return autostopped({META_KEY: rec})


def _shut_down(session: Any, backend: Any, cluster: Mapping[str, Any], rec: Mapping[str, Any],
               now: datetime | None = None) -> dict[str, Any] | None:
    """Nodes that stopped themselves (`Backend.autostop_poweroff`: setup.autostop on a cloud), seen by a refresh of
    the machines styx has not stopped: the autostop (its time: when styx saw it) once the head is among them.
    Only while setup.autostop is on; None: nothing stopped."""
    from styx.app import drift as dr
    from styx.app.pricing import iso

    if not (cluster.get("setup") or {}).get("autostop") or not hasattr(session, "refresh"):
        return None
    dep = session.deployment()
    running = {n: m for n in dict.fromkeys(p.node for p in dr.phase_resources(dep))
               if n not in rec["stopped"] and (m := dr.machine_of(dep, n))}
    if not running:
        return None
    r = session.refresh(target=sorted(set(running.values())))
    if not r.ok:
        return None
    outs = {x.get("urn"): x.get("outputs") or {} for x in session.deployment().get("resources") or []}
    down = [n for n, m in running.items() if m in outs and backend.machine_stopped(outs[m])]
    if "head" not in down:  # the head shuts down last: until it has, the cluster is on its way
        return None
    return {"at": iso(now or datetime.now(UTC)), "action": "stop", "nodes": down, "synced": False}


# the head's autostop phase, run again after a start, names the request it found (setup_scripts/autostop.sh)
_REQUESTED_BEFORE = re.compile(r"; requested before: (stop|down) (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$")


def autostop_requested_time(session: Any, head: str = "head",
                            info: Callable[[str], None] | None = None) -> str | None:
    """After the start of a cluster that stopped itself (`Backend.autostop_poweroff`: AWS, GCP), the time the
    head's watcher requested the stop replaces "when styx saw it" in the power record: the autostop's `at` (the
    seen time kept as `seen_at`) and the start of the stopped intervals it opened. The time comes from the status
    line of the head's autostop phase, which ran again on the started head and found the request still on its
    disk (`; requested before: stop T`). Only a time no later than the seen one, and after the head's earlier
    stopped intervals, is taken; once per autostop. Returns the time used (None: nothing changed)."""
    from styx.app import drift as dr
    from styx.app.pricing import parse_iso

    rec = record(session.meta())
    a = rec.get("autostop")
    if not a or a.get("action") != "stop" or a.get("seen_at") or not a.get("at"):
        return None
    dep = session.deployment()
    urn = next((p.urn for p in dr.phase_resources(dep) if p.node == head and p.phase == "autostop"), None)
    out = next((r.get("outputs") or {} for r in dep.get("resources") or [] if urn and r.get("urn") == urn), {})
    stdout = dr.plain(out.get("stdout"))
    lines = [ln for ln in stdout.splitlines() if ln.strip()] if isinstance(stdout, str) else []
    m = _REQUESTED_BEFORE.search(lines[-1]) if lines else None
    if m is None or m.group(1) != "stop":
        return None
    at, seen = m.group(2), a["at"]
    t, s = parse_iso(at), parse_iso(seen)
    earlier = [parse_iso(i.get("to")) for i in rec["intervals"] if i.get("node") == head and i.get("from") != seen]
    if t is None or s is None or t > s or any(e is not None and t < e for e in earlier):
        return None
    nodes = set(a.get("nodes") or [])
    for i in rec["intervals"]:
        if i.get("node") in nodes and i.get("from") == seen:
            i["from"] = at
    for n in nodes:
        if rec["stopped"].get(n) == seen:
            rec["stopped"][n] = at
    a["seen_at"], a["at"] = seen, at
    session.set_meta(META_KEY, rec)
    if info:
        info(f"{session.name}: autostop had requested the stop at {at} (seen stopped at {seen})")
    return at


def stopped_nodes(meta: Mapping[str, Any]) -> dict[str, str]:
    """node -> stopped since (ISO) of the nodes styx stopped."""
    return record(meta)["stopped"]


def mark_stopped(rec: dict[str, Any], nodes: Sequence[str], at: str) -> dict[str, Any]:
    for n in nodes:
        rec["stopped"].setdefault(n, at)
    return rec


def mark_started(rec: dict[str, Any], nodes: Sequence[str], at: str) -> dict[str, Any]:
    for n in nodes:
        since = rec["stopped"].pop(n, None)
        if since:
            rec["intervals"].append({"node": n, "from": since, "to": at})
    return rec


def stopped_seconds(meta: Mapping[str, Any], now: datetime) -> dict[str, float]:
    """node -> seconds it has been stopped in all (closed intervals and the open one)."""
    from styx.app.pricing import parse_iso

    rec = record(meta)
    out: dict[str, float] = {}
    spans = [(i.get("node"), i.get("from"), i.get("to")) for i in rec["intervals"]]
    spans += [(n, since, None) for n, since in rec["stopped"].items()]
    for n, a, b in spans:
        start, end = parse_iso(a), (parse_iso(b) if b else now)
        if n and start and end and end > start:
            out[n] = out.get(n, 0.0) + (end - start).total_seconds()
    return out


def stopped_credit(pricing: Mapping[str, Any] | None, meta: Mapping[str, Any], now: datetime) -> float:
    """$ not spent on compute while nodes were stopped: each node's price × its stopped time."""
    if not pricing:
        return 0.0
    price = {n.get("node"): n.get("price_per_hour") or 0.0 for n in pricing.get("nodes") or []}
    return round(sum(price.get(n, 0.0) * s / 3600.0 for n, s in stopped_seconds(meta, now).items()), 6)


def _nodes(cluster: Mapping[str, Any], outputs: Mapping[str, Any], asked: Sequence[str] | None) -> list[str]:
    known = [n.get("name") for n in outputs.get("nodes") or []]
    if not known:
        raise StyxError("the stack has no nodes (not launched yet): nothing to stop or start", EXIT_FAILED)
    if not asked:
        return known
    unknown = [n for n in asked if n not in known]
    if unknown:
        raise StyxError(f"--node {', '.join(unknown)}: no such node; nodes: {', '.join(known)}", EXIT_USAGE)
    return [n for n in known if n in asked]


def _backend(cluster: Mapping[str, Any]):
    from styx.components.backends import backend_class
    from styx.components.backends.base import Feature

    backend = backend_class(cluster.get("cloud"))()
    if Feature.STOP not in backend.features:
        raise StyxError(f"styx:cluster.cloud: {cluster.get('cloud')} machines cannot be stopped by styx "
                        "(the local backend can); use `styx down`", EXIT_USAGE)
    return backend


def through_program(cluster: Mapping[str, Any]) -> bool:
    """Whether this cluster's machines stop and start through the program (AWS, GCP; not a local sandbox)."""
    from styx.components.backends import backend_class

    try:
        return bool(backend_class(cluster.get("cloud"))().power_in_program)
    except Exception:  # an unknown cloud: `_backend` refuses it
        return False


def _refuse_spot(backend: Any, cluster: Mapping[str, Any], nodes: Sequence[str]) -> None:
    """The nodes the backend cannot stop (spot ones: `Backend.can_stop`), refused before anything is touched."""
    why: dict[str, list[str]] = {}
    for n in nodes:
        reason = backend.can_stop(cluster, n)
        if reason:
            why.setdefault(reason, []).append(n)
    if why:
        raise StyxError("; ".join(f"{', '.join(ns)}: {r}" for r, ns in why.items())
                        + ": leave them out with --node, or use `styx down`", EXIT_USAGE)


def stop(session: Any, outputs: Mapping[str, Any], cluster: Mapping[str, Any], nodes: Sequence[str] | None,
         info: Callable[[str], None], now: datetime | None = None) -> list[str]:
    """Stop `nodes` (default: all); returns the nodes now stopped by this call."""
    from styx.app.pricing import iso

    names = _nodes(cluster, outputs, nodes)
    backend = _backend(cluster)
    _refuse_spot(backend, cluster, names)
    rec = record(session.meta())
    todo = [n for n in names if n not in rec["stopped"]]
    if not todo:
        info(f"{session.name}: {', '.join(names)} already stopped")
        return []
    # workers first: the head is the last to go
    todo.sort(key=lambda n: n == head_of(outputs))
    info(f"stopping {session.name}: {', '.join(todo)} ...")
    at = iso(now or datetime.now(UTC))
    if getattr(backend, "power_in_program", False):
        return _through_program(session, backend, cluster, todo, mark_stopped(record(session.meta()), todo, at),
                                refresh=False)
    return _one_by_one(session, todo, lambda n: backend.stop_machines(cluster, [n]),
                       lambda done: mark_stopped(rec, done, at))


def _through_program(session: Any, backend: Any, cluster: Mapping[str, Any], todo: list[str],
                     after: dict[str, Any], *, refresh: bool) -> list[str]:
    """The new record written first (the program reads it: `styx:power`), then one `up --target` of the
    nodes' run-state resources (`Backend.power_urns`; `refresh`: then the machines are read back, so that
    a started node's new address is in the state). A failed update puts the old record back."""
    from styx.app import drift as dr

    before = record(session.meta())
    dep = session.deployment()
    missing = [n for n in todo if not dr.machine_of(dep, n)]
    if missing:
        raise StyxError(f"{', '.join(missing)}: no machine in the stack's state (not launched yet?)", EXIT_FAILED)
    machines = [m for n in todo for m in [dr.machine_of(dep, n)] if m]
    urns = [u for n, m in zip(todo, machines, strict=True) for u in backend.power_urns(cluster, n, m)]
    session.set_meta(META_KEY, after)
    if hasattr(session, "bind_program"):
        session.bind_program()
    session.up_options = {"target": urns}
    try:
        result = session.up()
    finally:
        session.up_options = {}
    if not result.ok:
        session.set_meta(META_KEY, before)
        raise StyxError(f"{'starting' if refresh else 'stopping'} {', '.join(todo)} failed: "
                        f"{(result.error or '').strip()[-500:]}", EXIT_FAILED)
    if refresh:  # a started machine may have a new public address (one without a static address): read it back
        r = session.refresh(target=machines)
        if not r.ok:
            raise StyxError(f"started {', '.join(todo)}, but reading their machines back failed: "
                            f"{(r.error or '').strip()[-300:]}", EXIT_FAILED)
    return todo


def _sync_autostopped(session: Any, backend: Any, cluster: Mapping[str, Any], info: Callable[[str], None]) -> None:
    """Machines that stopped themselves (setup.autostop on a cloud) are stopped in the program too before they are
    started: one `up --target` of their run state with the record as it is (stopped), so that the start after it
    is a change (a machine whose state still says running would not be started)."""
    rec = record(session.meta())
    a = rec.get("autostop") or {}
    nodes = [n for n in a.get("nodes") or [] if n in rec["stopped"]]
    if a.get("synced") is not False or not nodes:
        return
    info(f"{session.name}: recording the stop by autostop of {', '.join(nodes)} in the stack first")
    a["synced"] = True
    _through_program(session, backend, cluster, nodes, rec, refresh=False)


def _one_by_one(session: Any, todo: list[str], act: Callable[[str], None],
                marked: Callable[[list[str]], Any]) -> list[str]:
    """`act` on each node in order; whatever was done is recorded in the stack even when one fails."""
    done: list[str] = []
    try:
        for n in todo:
            act(n)
            done.append(n)
    except RuntimeError as e:
        raise StyxError(str(e), EXIT_FAILED) from e
    finally:
        if done:
            session.set_meta(META_KEY, marked(done))
    return done


def head_of(outputs: Mapping[str, Any]) -> str:
    """The head's node name in a stack's outputs."""
    return next((n.get("name") for n in outputs.get("nodes") or [] if n.get("role") == "head"), "head")


def start_machines(session: Any, outputs: Mapping[str, Any], cluster: Mapping[str, Any],
                   nodes: Sequence[str] | None, info: Callable[[str], None],
                   now: datetime | None = None) -> list[str]:
    """Run the stopped machines of `nodes` (default: all) again; returns those started."""
    from styx.app.pricing import iso

    names = _nodes(cluster, outputs, nodes)
    rec = record(session.meta())
    todo = [n for n in names if n in rec["stopped"]]
    if not todo:
        return []
    backend = _backend(cluster)
    todo.sort(key=lambda n: n != head_of(outputs))  # the head first
    info(f"starting {session.name}: {', '.join(todo)} ...")
    if getattr(backend, "power_in_program", False):
        _sync_autostopped(session, backend, cluster, info)
        return _through_program(session, backend, cluster, todo,
                                mark_started(record(session.meta()), todo, iso(now or datetime.now(UTC))),
                                refresh=True)
    return _one_by_one(session, todo, lambda n: backend.start_machines(cluster, [n]),
                       lambda done: mark_started(rec, done, iso(now or datetime.now(UTC))))
