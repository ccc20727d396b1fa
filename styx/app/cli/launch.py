"""`styx launch`: create or select the stack, write its config, run `up` with live per-node progress.

Capacity failover: when a node fails with a capacity/quota error (the backend's `capacity_patterns`),
its zone (or region) is blocked and the launch re-runs at `styx.app.failover.next_placement` (the
backend's next listed zone, e.g. of `local.zones`; catalog clouds: the optimizer's next-cheapest
choice). `--retry-until-up` starts over (blocklist cleared) after a pause when every place has been
tried. Ctrl-C: the first cancels (running steps finish, state is saved; `styx launch` again
resumes), the second stops at once, the third aborts styx.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import click

from styx.app.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    BackendChoice,
    StyxError,
    backend_option,
    default_config_file,
    emit_json,
    handle_errors,
    info,
    is_interactive,
    json_option,
    load_config_file,
    make_engine,
    node_names,
    resolve_secrets,
    stack_option,
    validate_cluster,
)


def quick_cluster(name: str | None, cloud: str | None) -> dict[str, Any]:
    return {"name": name or "styx", "cloud": cloud or "local"}


def apply_overrides(cluster: dict[str, Any], *, name=None, cloud=None, workers=None, accelerators=None,
                    instance_type=None, region=None, zone=None, subnet=None, no_ray=False) -> dict[str, Any]:
    c = copy.deepcopy(cluster)
    if name:
        c["name"] = name
    if cloud:
        c["cloud"] = cloud
    if region:
        c["region"] = region
    if zone:
        c["zone"] = zone
    if workers is not None:
        groups = c.setdefault("workers", [])
        if groups:
            groups[0]["count"] = workers
        elif workers > 0:
            groups.append({"name": "worker", "count": workers})
    specs = [c.setdefault("head", {}), *c.get("workers", [])]
    auto_types = bool(accelerators) and _has_catalog(c.get("cloud"))  # the optimizer picks the type
    for spec in specs:
        if accelerators:
            spec.setdefault("resources", {})["accelerators"] = accelerators
            if auto_types and not instance_type and not spec.get("instance_type"):
                spec["instance_type"] = "auto"
        if instance_type:
            spec["instance_type"] = instance_type
    if subnet:
        c.setdefault("local", {})["subnet"] = subnet
    if no_ray:
        c.setdefault("setup", {}).setdefault("ray", {})["enabled"] = False
    return c


def _has_catalog(cloud: str | None) -> bool:
    from styx.components.backends import backend_class
    from styx.components.backends.base import Feature

    try:
        return Feature.CATALOG in backend_class(cloud).features
    except ValueError:  # an unknown cloud: validation reports it
        return False


def repair_pending(session: Any, yes: bool, as_json: bool) -> int:
    """Detect what an interrupted update left (stale state locks, pending operations); fix it with consent.

    A lock held by a live process (or by another host) is never removed: that update may still run.
    """
    locks = session.locks()
    live = [lk for lk in locks if not lk.get("stale")]
    if live:
        lk = live[0]
        raise StyxError(f"stack {session.name} is locked by pid {lk.get('pid')} on {lk.get('hostname')} since "
                        f"{lk.get('timestamp')} (an update may be running); wait for it, or if it is gone: "
                        f"pulumi cancel -s {session.name} (lock: {lk.get('path')})", EXIT_FAILED)
    ops = session.pending_operations()
    if not ops and not locks:
        return 0
    info(f"stack {session.name} was left by an interrupted update:")
    for lk in locks:
        info(f"  stale lock of pid {lk.get('pid')} (gone) from {lk.get('timestamp')}")
    for op in ops[:20]:
        res = op.get("resource") or {}
        info(f"  pending {op.get('type', '?'):<8} {res.get('urn', '?')}")
    if ops:
        info("  (the engine does not know whether these finished; dropping them lets the next update "
             "re-create them if needed)")
    if not yes:
        if not is_interactive() or as_json:
            raise StyxError(f"stack {session.name} needs repair after an interrupted update; re-run with --yes to "
                            "remove the stale lock / drop the pending operations and continue", EXIT_FAILED)
        if not click.confirm("Repair the stack and continue?", default=False, err=True):
            raise StyxError("left the stack as it is", EXIT_FAILED)
    if locks:
        session.unlock()
        info(f"removed {len(locks)} stale lock(s) of stack {session.name}")
    n = session.clear_pending_operations() if ops else 0
    if n:
        info(f"dropped {n} pending operation(s) from stack {session.name}")
    return n


def persist_secret_env(names: tuple[str, ...] | list[str], source: Path | None, engine: Any) -> dict[str, str]:
    """`--secret-env NAME`: store $NAME encrypted in the stack file `source` (like `styx secret set`).

    Returns what could not be persisted in a stack file (a quick cluster, `--stack` re-applying the
    stored config, a plain cluster file): those go into the stack's stored config only (encrypted).
    """
    from styx.app.secrets import project_dir_of, stack_of_file

    values = {}
    for var in names:
        if var not in os.environ:
            raise StyxError(f"--secret-env {var}: the environment variable {var} is not set", EXIT_USAGE)
        values[var] = os.environ[var]
    if not values:
        return {}
    project = project_dir_of(source) if source is not None else None
    stack = stack_of_file(source) if source is not None else None
    if project is None or stack is None:
        info("note: --secret-env " + ", ".join(values) + ": no project stack file to keep it in; it is stored "
             "(encrypted) in this stack's config only, so pass it again when launching from a file")
        return values
    for var, value in values.items():
        store_secret(project, stack, f"setup.secret_env.{var}", value, getattr(engine, "backend_url", None))
        info(f"stored setup.secret_env.{var} encrypted in {source} (stack {stack})")
    return {}


def _store_secret(project: Path, stack: str, dotted: str, value: str, backend_url: str | None) -> None:
    from styx.app.secrets import SecretsError, set_secret

    try:
        set_secret(project, stack, dotted, value, backend_url=backend_url)
    except SecretsError as e:
        raise StyxError(str(e), EXIT_FAILED) from None


# Tests replace this (a fake engine has no Pulumi to encrypt with).
store_secret = _store_secret


def _interrupt_note(ui):
    def note(n: int, forwarded: bool) -> None:
        if n == 1:
            ui.note("^C: cancelling - running steps finish and the state is saved (^C again to stop now)")
        else:
            ui.note("^C: stopping now (the next `styx launch` repairs any pending operations)")

    return note


def _print_failure(failures: list[dict[str, Any]], error: str | None) -> None:
    if failures:
        for f in failures[:5]:
            info(f"failed: {f['node']} / {f['phase']}")
            text = f.get("error") or ""
            lines = [ln for ln in text.splitlines() if ln.strip()][-12:]
            for ln in lines:
                info(f"  | {ln}")
            tail = [t for t in f.get("tail") or [] if t not in lines][-8:]
            if tail:
                info("  output tail:")
                for ln in tail:
                    info(f"  | {ln}")
    elif error:
        for ln in error.splitlines()[-15:]:
            info(f"  | {ln}")


def _public_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in outputs.items() if k != "ssh_private_key"}


@click.command("launch")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@stack_option
@backend_option
@click.option("--name", help="Cluster name (overrides the file's).")
@click.option("--cloud", type=BackendChoice(), help="Backend (one of the registered backends).")
@click.option("--workers", type=click.IntRange(0, 1000), help="Number of workers (first worker group).")
@click.option("--accelerators", metavar="NAME[:N]", help="GPUs per node, e.g. A100:8 (clouds: picks the type).")
@click.option("--instance-type", help="Instance type for every node.")
@click.option("--region")
@click.option("--zone")
@click.option("--subnet", help="local backend: the sandbox subnet, e.g. 10.78.0.0/24.")
@click.option("--no-ray", is_flag=True, help="Do not install/start Ray.")
@click.option("--retry-until-up", is_flag=True, help="When every place is out of capacity, wait and start over.")
@click.option("--retry-interval", type=click.IntRange(1, 3600), default=60, show_default=True,
              help="Seconds to wait between rounds with --retry-until-up.")
@click.option("--max-rounds", type=click.IntRange(1, 100000), default=None,
              help="With --retry-until-up: give up after this many rounds.")
@click.option("--no-failover", is_flag=True, help="Fail on a capacity error instead of trying the next place.")
@click.option("--secret-env", "secret_env", multiple=True, metavar="NAME",
              help="Add setup.secret_env NAME with the value of the environment variable NAME (stored encrypted; "
                   "never on the command line).")
@click.option("-y", "--yes", is_flag=True, help="Repair a stack with pending operations without asking.")
@json_option
@handle_errors
def launch(config, stack_name, backend, name, cloud, workers, accelerators, instance_type, region, zone, subnet,
           no_ray, retry_until_up, retry_interval, max_rounds, no_failover, secret_env, yes, as_json):
    """Create or update a cluster (a Pulumi stack) and wait until every node is set up.

    CONFIG is a YAML file holding the cluster object, or a Pulumi stack file (config: styx:cluster).
    Without CONFIG: flags like --name/--cloud/--workers make a quick cluster; with only --stack the
    stack's stored config is re-applied; with nothing, stacks/Pulumi.local.yaml is used.
    """
    from styx.app import failover
    from styx.app.session import StackNotFound

    engine = make_engine(backend)
    flags = dict(name=name, cloud=cloud, workers=workers, accelerators=accelerators, instance_type=instance_type,
                 region=region, zone=zone, subnet=subnet, no_ray=no_ray)
    base_dir: Path | None = None
    implied_stack = None
    session = None
    source: Path | None = None  # the config file, when the cluster comes from one
    if config:
        source = Path(config)
    elif name or cloud:
        pass
    elif stack_name and engine.exists(stack_name):
        session = engine.open(stack_name)
    else:
        source = default_config_file()
        if source is None:
            raise StyxError("no CONFIG given and stacks/Pulumi.local.yaml not found; pass a CONFIG file or "
                            "--name/--cloud", EXIT_USAGE)
    in_memory = persist_secret_env(secret_env, source, engine)
    if source is not None:
        cluster, base_dir, implied_stack = load_config_file(source)
        cluster = resolve_secrets(cluster, source, engine)  # secure: values, decrypted by Pulumi
    elif session is not None:
        cluster = session.cluster()  # the stored config, its secrets decrypted by Pulumi
        if cluster is None:
            raise StyxError(f"stack {stack_name} has no styx:cluster config; pass a CONFIG file", EXIT_USAGE)
        base_dir = session.base_dir()
    else:
        from styx.app.engine import REPO

        cluster, base_dir = quick_cluster(name, cloud), REPO
    cluster = apply_overrides(cluster, **flags)
    for var, value in in_memory.items():
        cluster.setdefault("setup", {}).setdefault("secret_env", {})[var] = value
    stack = stack_name or implied_stack or cluster["name"]
    if session is None and engine.exists(stack):
        try:
            session = engine.open(stack)
        except StackNotFound:
            session = None
    original = cluster
    attempt_cluster = original
    if session is not None and session.outputs().get("nodes"):
        attempt_cluster = failover.keep_placement(original, session.cluster())
    if failover.needs_initial_placement(attempt_cluster):
        # `instance_type: auto`: the optimizer picks type, region and zone before validation
        # (a region is required for a cloud, but here it is the optimizer's to choose)
        attempt_cluster = _initial_placement(original)
        if attempt_cluster is None:
            raise StyxError("no instance type/region satisfies the request (see `styx optimize`)", EXIT_FAILED)
    validate_cluster(attempt_cluster, base_dir)

    if session is not None:
        repair_pending(session, yes, as_json)

    blocked: list[str] = []
    attempts: list[dict[str, Any]] = []
    started = time.monotonic()
    rounds = 1
    while True:
        outcome = _attempt(engine, stack, attempt_cluster, base_dir, as_json)
        attempts.append(outcome["attempt"])
        session = outcome["session"]
        if outcome["ok"]:
            break
        if outcome["cancelled"]:
            raise StyxError(f"launch of {stack} cancelled; the state is saved: run `styx launch` again to resume",
                            EXIT_FAILED, data=_json_body(stack, engine, attempts, outcome, started))
        if not outcome["capacity"] or no_failover:
            _print_failure(outcome["failures"], outcome["error"])
            raise StyxError(f"launch of {stack} failed" + (" (capacity; --no-failover)" if outcome["capacity"] else ""),
                            EXIT_FAILED, data=_json_body(stack, engine, attempts, outcome, started))
        for place in outcome["blocked"]:
            if place not in blocked:
                blocked.append(place)
        info(f"capacity error ({outcome['reason']}) in {', '.join(outcome['blocked'])}: blocked; "
             f"trying the next placement")
        nxt = failover.next_placement(original, blocked)
        if nxt is None:
            if retry_until_up and (max_rounds is None or rounds < max_rounds):
                rounds += 1
                info(f"no placement left (blocked: {', '.join(blocked)}); --retry-until-up: round {rounds} "
                     f"in {retry_interval}s")
                time.sleep(retry_interval)
                blocked = []
                nxt = failover.next_placement(original, blocked) if failover.needs_initial_placement(original) \
                    else original
                if nxt is None:
                    continue
            else:
                raise StyxError(f"launch of {stack} failed: no capacity left (blocked: {', '.join(blocked)})",
                                EXIT_FAILED, data=_json_body(stack, engine, attempts, outcome, started))
        attempt_cluster = nxt

    outputs = session.outputs()
    body = _json_body(stack, engine, attempts, outcome, started)
    body.update(ok=True, outputs=_public_outputs(outputs), pricing=session.meta().get("styx:pricing"))
    if as_json:
        emit_json(body)
        return
    nodes = outputs.get("nodes") or []
    click.echo(f"cluster {attempt_cluster['name']} (stack {stack}) is up in {body['duration_s']:.0f}s: "
               f"{len(nodes)} node(s), head {outputs.get('head_ip', '?')}")
    if outputs.get("ray_address") and (attempt_cluster.get("setup") or {}).get("ray", {}).get("enabled", True):
        click.echo(f"  ray:       {outputs['ray_address']}  (styx dashboard -s {stack})")
    click.echo(f"  ssh:       styx ssh -s {stack} [NODE]")
    click.echo(f"  status:    styx status -s {stack}")
    click.echo(f"  tear down: styx down -s {stack} --yes")


def _initial_placement(cluster: dict[str, Any]) -> dict[str, Any] | None:
    from styx.app import failover
    from styx.model.catalog import CatalogError
    from styx.model.optimizer import RequestError

    try:
        return failover.next_placement(cluster, [])
    except RequestError as e:
        raise StyxError(f"instance_type: auto: {e}", EXIT_USAGE) from None
    except CatalogError as e:
        raise StyxError(str(e), EXIT_FAILED) from None


def _json_body(stack, engine, attempts, outcome, started) -> dict[str, Any]:
    return {
        "ok": False,
        "stack": stack,
        "cluster": outcome["cluster"]["name"],
        "backend": engine.backend_url,
        "attempts": attempts,
        "placement": outcome["attempt"]["placement"],
        "changes": outcome["changes"],
        "phases": outcome["phases"],
        "failures": outcome["failures"],
        "duration_s": round(time.monotonic() - started, 1),
    }


def _attempt(engine: Any, stack: str, cluster: dict[str, Any], base_dir: Path | None, as_json: bool) -> dict:
    """One `up` at one placement: config + launch record written first, then the update with progress."""
    from styx.app import failover, pricing
    from styx.app.cli.progress import ProgressUI, Tracker
    from styx.app.session import now_utc, sigint_forwarding
    from styx.model.config import parse_cluster

    session = engine.create_or_select(stack, cluster, base_dir)
    old = session.outdated_phases() if hasattr(session, "outdated_phases") else 0
    if old:
        info(f"note: {old} setup phase(s) of {stack} were made by an earlier styx (scripts inline in the command "
             "text); this update runs every setup phase once more on every node in the new form (programs on "
             "stdin, the styx library installed on each node). Machines, SSH keys, synced files and the env file "
             "stay; Ray restarts once.")
    meta = session.meta()
    cfg = parse_cluster(cluster)
    rec = pricing.record(meta.get("styx:pricing"), pricing.price_cluster(cfg))
    session.set_meta("styx:pricing", rec)
    if not meta.get("styx:launched_at"):
        session.set_meta("styx:launched_at", pricing._iso(now_utc()))
    place = failover.placement_of(cluster)
    session.set_meta("styx:placement", place)

    where = "/".join(str(x) for x in (place.get("cloud"), place.get("region"), place.get("zone")) if x)
    tracker = Tracker(cluster["name"], node_names(cluster))
    info(f"launching {cluster['name']} (stack {stack}) at {where}: "
         f"{len(node_names(cluster))} node(s), ${rec['per_hour']:.4f}/h" + ("" if rec["complete"] else
                                                                            " (some nodes unpriced)"))
    with ProgressUI(tracker, f"styx launch {stack}") as ui, sigint_forwarding(session, _interrupt_note(ui)) as sig:
        result = session.up(on_event=tracker.handle)
    failures = tracker.failures()
    text = "\n".join([result.error or ""] + [f["error"] + "\n" + "\n".join(f["tail"]) for f in failures])
    cancelled = (not result.ok) and bool(result.cancelled or sig["count"])
    cloud = cluster.get("cloud")
    capacity = (not result.ok) and not cancelled and failover.is_capacity_error(text, cloud)
    blocked: list[str] = []
    if capacity:
        hits = [f for f in failures if failover.is_capacity_error(f["error"] + "\n".join(f["tail"]), cloud)] or \
            [{"node": None, "error": text, "tail": []}]
        for f in hits:
            p = failover.failed_place(cluster, f["node"], f["error"] + "\n" + "\n".join(f["tail"]))
            if p not in blocked:
                blocked.append(p)
    status = "ok" if result.ok else "cancelled" if cancelled else "capacity" if capacity else "failed"
    attempt = {"placement": place, "result": status, "blocked": blocked,
               "error": None if result.ok else (result.error or "")[-2000:]}
    return {"ok": result.ok, "cancelled": cancelled, "capacity": capacity, "blocked": blocked,
            "reason": failover.capacity_reason(text, cloud), "failures": failures, "error": result.error,
            "changes": result.changes or tracker.summary or {}, "phases": tracker.to_dict(), "session": session,
            "attempt": attempt, "cluster": cluster}
