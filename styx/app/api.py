"""styx's Python API: launch, preview, status, exec and down, returning typed results.

The `styx` command is built on these functions (it adds flags, a live progress table and exit codes);
scripts and programs call them directly (examples/api/):

    import styx

    up = styx.launch("stacks/Pulumi.local.yaml")          # LaunchResult
    print(up.outputs["head_ip"], up.changes)
    r = styx.exec(up.stack, ["ray", "status"])              # ExecResult (exit_code, stdout, stderr)
    for c in styx.status(up.stack):                         # [ClusterStatus]
        print(c.state, [n.name for n in c.nodes])
    styx.down(up.stack)                                     # DownResult

A config is a path (a cluster file or a Pulumi stack file), a cluster dict, or None (the stack's stored
config when `stack` exists, else stacks/Pulumi.local.yaml). Failures raise `StyxError` with `.code`
(1 failed, 2 bad usage or config), `.problems` (one line per config problem: key path, bad value,
what is allowed) and `.data` (what is known, e.g. the failed phases).

Progress notes go to `on_info` (stderr by default); the CLI passes `run_update` to draw its table.
"""

from __future__ import annotations

import copy
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from styx.app.events import PlanCollector, Tracker
from styx.app.project import (
    EXIT_FAILED,
    EXIT_USAGE,
    StyxError,
    default_config_file,
    load_config_file,
    make_engine,
    node_names,
    open_stack,
    pick_stack,
    resolve_secrets,
    validate_cluster,
)
from styx.app.project import _stderr as _default_info
from styx.app.remote import ExecResult  # one node's run: exec, exec_all, cp

Config = str | Path | dict[str, Any] | None
# (session, tracker, title, op) -> (result, number of Ctrl-C seen); op is "up" or "destroy"
RunUpdate = Callable[[Any, Tracker, str, str], tuple[Any, int]]


# --------------------------------------------------------------------------- results


@dataclass
class LaunchResult:
    stack: str
    cluster: str
    outputs: dict[str, Any]  # the stack's outputs, the private key and the Ray token left out
    changes: dict[str, int]  # resource changes of the last `up` ({"same": 41} when nothing changed)
    phases: dict[str, Any]  # per node: each phase's status and output tail
    placement: dict[str, Any]  # cloud / region / zone / instance types used
    attempts: list[dict[str, Any]]  # one per placement tried (capacity failover)
    pricing: dict[str, Any] | None
    duration_s: float
    backend: str
    ray_enabled: bool = True
    ok: bool = True


@dataclass
class PreviewResult:
    stack: str
    changes: dict[str, int]
    nodes: dict[str, dict[str, str]]  # node -> phase -> "create" | "replace" | "update" | "delete" | "same"
    rows: list[dict[str, Any]]
    diff: str | None = None
    ok: bool = True
    report: dict[str, Any] | None = None  # styx.app.preview_report.explain: why each phase changes, $/h, policy
    redact: list[str] = field(default_factory=list)  # plaintext secrets of the config (never to be shown)


@dataclass
class NodeStatus:
    name: str
    role: str
    host: str | None
    private_ip: str | None
    ready: bool
    phases: dict[str, str]  # phase -> "ok" | "skipped" | "unknown" (not run, failed, or before styx recorded it)
    zone: str | None = None
    instance_type: str | None = None


@dataclass
class ClusterStatus:
    stack: str
    cluster: str | None
    cloud: str | None
    state: str  # up | partial | empty | degraded | ...
    nodes: list[NodeStatus]
    head_ip: str | None
    ray_address: str | None
    ray: dict[str, Any] | None  # `ray status` on the head: ok, active_nodes, ... (None: not asked)
    price_per_hour: float | None
    uptime_s: int | None
    record: dict[str, Any] = field(repr=False, default_factory=dict)  # everything `styx status --json` says


@dataclass
class DownResult:
    stack: str
    changes: dict[str, int]
    removed: bool
    ok: bool = True


# --------------------------------------------------------------------------- config


def quick_cluster(name: str | None, cloud: str | None) -> dict[str, Any]:
    return {"name": name or "styx", "cloud": cloud or "local"}


def apply_overrides(cluster: dict[str, Any], *, name=None, cloud=None, workers=None, accelerators=None,
                    instance_type=None, region=None, zone=None, subnet=None, no_ray=False) -> dict[str, Any]:
    """The cluster with `styx launch`'s flags applied (a copy)."""
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


def _source(config: Config, stack: str | None, engine: Any, overrides: dict[str, Any]):
    """(cluster, base_dir, stack name, open session or None, source file or None) of a config argument."""
    from styx.app.engine import REPO

    session, source, looked_up = None, None, None
    if isinstance(config, dict):
        cluster, base_dir, implied = copy.deepcopy(config), Path.cwd(), None
    else:
        if config is not None:
            source = Path(config)
        elif not (overrides.get("name") or overrides.get("cloud")):
            session, looked_up = (engine.find(stack) if stack else None), stack
            if session is None:
                source = default_config_file()
                if source is None:
                    raise StyxError("no CONFIG given and stacks/Pulumi.local.yaml not found; pass a CONFIG file or "
                                    "--name/--cloud", EXIT_USAGE)
        implied = None
        if source is not None:
            cluster, base_dir, implied = load_config_file(source)
            cluster = resolve_secrets(cluster, source, engine)  # secure: values, decrypted by Pulumi
        elif session is not None:
            cluster = session.cluster()  # the stored config, its secrets decrypted by Pulumi
            if cluster is None:
                raise StyxError(f"stack {stack} has no styx:cluster config; pass a CONFIG file", EXIT_USAGE)
            base_dir = session.base_dir()
        else:
            cluster, base_dir = quick_cluster(overrides.get("name"), overrides.get("cloud")), REPO
    cluster = apply_overrides(cluster, **overrides)
    name = stack or implied or cluster.get("name")
    if session is None and name and name != looked_up:
        session = engine.find(name)  # one `stack select` (not `stack ls` and then a select)
    return cluster, base_dir, name, session, source


# --------------------------------------------------------------------------- launch


def launch(config: Config = None, *, stack: str | None = None, backend: str | None = None,
           overrides: dict[str, Any] | None = None, secret_env: dict[str, str] | None = None,
           failover: bool = True, retry_until_up: bool = False, retry_interval: int = 60,
           max_rounds: int | None = None, repair: bool = False, confirm_repair: Callable[[str], bool] | None = None,
           on_info: Callable[[str], None] | None = None, run_update: RunUpdate | None = None) -> LaunchResult:
    """Create or update a cluster and wait until every node is set up (`styx launch`).

    `overrides`: `styx launch`'s flags (name, cloud, workers, accelerators, instance_type, region, zone,
    subnet, no_ray). `secret_env`: values added to setup.secret_env (stored encrypted). On a capacity
    error the failed place is blocked and the next one is tried (`failover`); with `retry_until_up`
    it starts over after `retry_interval` s. A stack left by an interrupted update is repaired when
    `repair` is true or `confirm_repair(message)` says so; otherwise StyxError.
    """
    from styx.app import failover as fo

    info = on_info or _default_info
    engine = make_engine(backend)
    cluster, base_dir, stack, session, _src = _source(config, stack, engine, dict(overrides or {}))
    for var, value in (secret_env or {}).items():
        cluster.setdefault("setup", {}).setdefault("secret_env", {})[var] = value
    original = attempt_cluster = cluster
    if session is not None and _public_of(session).get("nodes"):
        attempt_cluster = fo.keep_placement(original, session.cluster())
    if fo.needs_initial_placement(attempt_cluster):
        # `instance_type: auto`: the optimizer picks type, region and zone before validation
        # (a region is required for a cloud, but here it is the optimizer's to choose)
        attempt_cluster = _initial_placement(original)
        if attempt_cluster is None:
            raise StyxError("no instance type/region satisfies the request (see `styx optimize`)", EXIT_FAILED)
    validate_cluster(attempt_cluster, base_dir)
    if session is not None:
        from styx.app.power import reconcile_autostop, stopped_nodes

        auto = reconcile_autostop(session, session.cluster(), info) if _public_of(session).get("nodes") else None
        stopped = stopped_nodes(session.meta())
        if stopped and auto and set(stopped) <= set(auto.get("nodes") or []):
            # stopped by autostop: this launch is the "come back" (the machines run, Ray is repaired)
            info(f"cluster {stack} was stopped by autostop at {auto['at']}: starting its machines")
            start(stack, backend=backend, on_info=info, run_update=run_update)
            session = engine.open(stack)
            stopped = stopped_nodes(session.meta())
        if stopped:
            raise StyxError(f"cluster {stack} is stopped ({', '.join(sorted(stopped))}): run `styx start "
                            f"--stack {stack}` first", EXIT_FAILED)
        repair_pending(session, yes=repair, confirm=confirm_repair, on_info=info)

    blocked: list[str] = []
    attempts: list[dict[str, Any]] = []
    started = time.monotonic()
    rounds = 1
    while True:
        outcome = _attempt(engine, stack, attempt_cluster, base_dir, info, run_update,
                           prior=session if not attempts else None)
        attempts.append(outcome["attempt"])
        session = outcome["session"]
        if outcome["ok"]:
            break
        body = _launch_body(stack, engine, attempts, outcome, started)
        if outcome["cancelled"]:
            raise StyxError(f"launch of {stack} cancelled; the state is saved: run `styx launch` again to resume",
                            EXIT_FAILED, data=body)
        if not outcome["capacity"] or not failover:
            print_failure(outcome["failures"], outcome["error"], info)
            _host_key_refusals(session, outcome, info)
            raise StyxError(f"launch of {stack} failed" + (" (capacity; --no-failover)" if outcome["capacity"] else ""),
                            EXIT_FAILED, data=body)
        for place in outcome["blocked"]:
            if place not in blocked:
                blocked.append(place)
        info(f"capacity error ({outcome['reason']}) in {', '.join(outcome['blocked'])}: blocked; "
             f"trying the next placement")
        nxt = fo.next_placement(original, blocked)
        if nxt is None:
            if retry_until_up and (max_rounds is None or rounds < max_rounds):
                rounds += 1
                info(f"no placement left (blocked: {', '.join(blocked)}); --retry-until-up: round {rounds} "
                     f"in {retry_interval}s")
                time.sleep(retry_interval)
                blocked = []
                nxt = fo.next_placement(original, blocked) if fo.needs_initial_placement(original) else original
                if nxt is None:
                    continue
            else:
                raise StyxError(f"launch of {stack} failed: no capacity left (blocked: {', '.join(blocked)})",
                                EXIT_FAILED, data=body)
        attempt_cluster = nxt

    body = _launch_body(stack, engine, attempts, outcome, started)
    return LaunchResult(stack=stack, cluster=attempt_cluster["name"], outputs=public_outputs(_public_of(session)),
                        changes=body["changes"], phases=body["phases"], placement=body["placement"],
                        attempts=attempts, pricing=session.meta().get("styx:pricing"),
                        duration_s=body["duration_s"], backend=engine.backend_url,
                        ray_enabled=bool((attempt_cluster.get("setup") or {}).get("ray", {}).get("enabled", True)))


SECRET_OUTPUTS = ("ssh_private_key", "ray_auth_token")


def public_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """The stack's outputs without its secrets (the SSH key, the Ray token)."""
    return {k: v for k, v in outputs.items() if k not in SECRET_OUTPUTS}


def _public_of(session: Any) -> dict[str, Any]:
    """A session's outputs without those Pulumi keeps secret, read without decrypting (after an update: from
    its events; before: the state without --show-secrets; StackSession.public_outputs), else all of them."""
    return session.public_outputs() if hasattr(session, "public_outputs") else session.outputs()


def repair_pending(session: Any, *, yes: bool = False, confirm: Callable[[str], bool] | None = None,
                   on_info: Callable[[str], None] | None = None) -> int:
    """Detect what an interrupted update left (stale state locks, pending operations); fix it with consent
    (`yes`, else `confirm(question)`). A lock held by a live process (or another host) is never removed:
    that update may still run."""
    info = on_info or _default_info
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
        if confirm is None:
            raise StyxError(f"stack {session.name} needs repair after an interrupted update; re-run with --yes to "
                            "remove the stale lock / drop the pending operations and continue", EXIT_FAILED)
        if not confirm("Repair the stack and continue?"):
            raise StyxError("left the stack as it is", EXIT_FAILED)
    if locks:
        session.unlock()
        info(f"removed {len(locks)} stale lock(s) of stack {session.name}")
    n = session.clear_pending_operations() if ops else 0
    if n:
        info(f"dropped {n} pending operation(s) from stack {session.name}")
    return n


def print_failure(failures: list[dict[str, Any]], error: str | None, info: Callable[[str], None]) -> None:
    """The failed phases (node, phase, error, output tail), else the engine's error, through `info`."""
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


def _host_key_refusals(session: Any, outcome: dict[str, Any], info: Callable[[str], None]) -> None:
    """A phase refused because its node showed another SSH host key: say so, and how to accept a new key."""
    from styx.app import hostkeys

    texts = {f["node"]: f["error"] + "\n".join(f.get("tail") or []) for f in outcome["failures"]}
    nodes = [n for n, t in texts.items() if hostkeys.refused(t)]
    if not nodes and hostkeys.refused(outcome["error"]):
        nodes = [n for n in node_names(outcome["cluster"]) if f"{outcome['cluster']['name']}-{n}-" in outcome["error"]]
    if not nodes:
        return
    from pulumi import automation as auto

    try:
        outputs = session.outputs()
    except auto.CommandError:  # the hint does without the URNs
        outputs = {}
    for n in nodes:
        info(hostkeys.accept_hint(outcome["cluster"]["name"], n, outputs))


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


def _launch_body(stack, engine, attempts, outcome, started) -> dict[str, Any]:
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


def _plain_update(session: Any, tracker: Tracker, title: str, op: str) -> tuple[Any, int]:
    """Run `up`/`destroy` with Ctrl-C forwarded to the engine (the first cancels, the second stops)."""
    from styx.app.session import sigint_forwarding

    with sigint_forwarding(session, lambda n, forwarded: None) as sig:
        result = (session.up if op == "up" else session.destroy)(on_event=tracker.handle)
    return result, sig["count"]


def _machines_gone(session: Any, cluster: dict[str, Any], info: Callable[[str], None]) -> list[str]:
    """Machines of this stack removed outside Pulumi, to be made again by this `up` (their phases then
    run again: a new machine is a new identity). The backend tells (a sandbox that no longer runs); a
    backend that cannot gets its machine resources refreshed, which drops a deleted VM from the state."""
    from styx.app import drift as dr

    # read without its secrets (no passphrase key derivation on a no-op launch); what is edited below has them
    dep = (session.public_deployment() if hasattr(session, "public_deployment") else
           session.deployment() if hasattr(session, "deployment") else {})
    phases = dr.phase_resources(dep)
    nodes = list(dict.fromkeys(p.node for p in phases if p.machine))
    if not nodes:
        return []
    gone = _gone_nodes(cluster, nodes)
    if gone is None:
        lost = _refresh_lost(session, sorted({p.machine for p in phases if p.machine}), info)
        if lost:
            info(f"machine(s) of {', '.join(lost)} gone outside Pulumi (the refresh dropped them): making them again")
        return []
    if gone:
        info(f"machine(s) of {', '.join(gone)} gone outside Pulumi: making them again (all their phases run again)")
        # their phases have nothing left to undo, and the old machines cannot be dialled
        undos = dr.phases_on(dep, gone)
        if hasattr(session, "edit_state"):
            session.edit_state(lambda d: dr.drop_undos(d, undos))
    return [m for m in (dr.machine_of(dep, n) for n in gone) if m]


def _refresh_lost(session: Any, machines: list[str], info: Callable[[str], None]) -> list[str]:
    """Refresh the machine resources `machines` (their provider reads them: an AWS instance in state
    terminated or a deleted GCP VM leaves the state); the nodes whose machine is gone, their phases' undos
    dropped from the state (nothing is left to undo, the old machine cannot be dialled), so that the next
    `up` makes the machine again and runs all its phases once more."""
    from styx.app import drift as dr

    if not machines:
        return []
    r = session.refresh(target=machines)
    if not r.ok:
        info(f"note: refreshing the machines failed ({(r.error or '').strip()[-200:]}); going on")
        return []
    dep = session.public_deployment() if hasattr(session, "public_deployment") else session.deployment()
    left = {x.get("urn") for x in dep.get("resources") or []}
    want = set(machines)
    lost = list(dict.fromkeys(p.node for p in dr.phase_resources(dep)
                              if p.machine and p.machine in want and p.machine not in left))
    if lost and hasattr(session, "edit_state"):
        undos = dr.phases_on(dep, lost)
        session.edit_state(lambda d: dr.drop_undos(d, undos))
    return lost


def preempted(session: Any, cluster: dict[str, Any], info: Callable[[str], None] | None = None) -> list[str]:
    """`styx status`: the spot nodes whose machine is gone (preempted: terminated or deleted by the cloud).
    The backend tells where it can; a cloud backend gets only its spot machines refreshed (see
    `_refresh_lost`): the next `styx launch` then makes them again with all their phases."""
    from styx.app import drift as dr
    from styx.model.config import parse_cluster

    try:
        spot = [name for name, _role, spec, _i in parse_cluster(cluster).nodes() if spec.spot]
    except Exception:  # a config this styx cannot read: nothing to say
        return []
    if not spot or not hasattr(session, "refresh") or not hasattr(session, "deployment"):
        return []
    gone = _gone_nodes(cluster, spot)
    if gone is not None:
        return gone
    dep = session.deployment()
    machines = [m for m in (dr.machine_of(dep, n) for n in spot) if m]
    return _refresh_lost(session, machines, info or (lambda _m: None))


def _attempt(engine: Any, stack: str, cluster: dict[str, Any], base_dir: Path | None,
             info: Callable[[str], None], run_update: RunUpdate | None, prior: Any = None) -> dict:
    """One `up` at one placement: config + launch record written first, then the update. `prior`: the
    session `launch` read the stack with just before (its state reads are still current: nothing ran
    an update since): the update runs from it, so that the stack is not selected, its config read
    and its state exported a second time."""
    from styx.app import failover, pricing
    from styx.app.session import now_utc
    from styx.model.config import parse_cluster

    session = engine.create_or_select(stack, cluster, base_dir, reuse=prior)
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
        session.set_meta("styx:launched_at", pricing.iso(now_utc()))
    place = failover.placement_of(cluster)
    session.set_meta("styx:placement", place)

    where = "/".join(str(x) for x in (place.get("cloud"), place.get("region"), place.get("zone")) if x)
    tracker = Tracker(cluster["name"], node_names(cluster))
    info(f"launching {cluster['name']} (stack {stack}) at {where}: "
         f"{len(node_names(cluster))} node(s), ${rec['per_hour']:.4f}/h" + ("" if rec["complete"] else
                                                                            " (some nodes unpriced)"))
    session.up_options = {"replace": _machines_gone(session, cluster, info)}
    try:
        result, interrupts = (run_update or _plain_update)(session, tracker, f"styx launch {stack}", "up")
    finally:
        session.up_options = {}
    failures = tracker.failures()
    text = "\n".join([result.error or ""] + [f["error"] + "\n" + "\n".join(f["tail"]) for f in failures])
    cancelled = (not result.ok) and bool(result.cancelled or interrupts)
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


# --------------------------------------------------------------------------- preview


def preview(config: Config = None, *, stack: str | None = None, backend: str | None = None,
            diff: bool = False, on_info: Callable[[str], None] | None = None,
            policy_packs: Sequence[str] = ()) -> PreviewResult:
    """What `launch` would do, per node and phase, changing nothing (`styx preview`).

    With a config, the preview is of that config (the stack's stored config is restored afterwards, and
    a stack made only for the preview is removed); without, of the stack's current config.
    `policy_packs`: folders of policy packs the engine runs on the preview; their findings are in the
    report, and a preview that only failed on mandatory findings still returns one (ok=False).
    """
    info = on_info or _default_info
    engine = make_engine(backend)
    created = False
    restore = before = None  # before: the launch record's price (styx:pricing), if launched
    if config is not None:
        if isinstance(config, dict):
            cluster, base_dir, implied = copy.deepcopy(config), Path.cwd(), None
            validate_cluster(cluster, base_dir)
        else:
            cluster, base_dir, implied = load_config_file(config, warn=False)
            validate_cluster(cluster, base_dir, source=(config, implied))
            cluster = resolve_secrets(cluster, config, engine)  # secure: values, decrypted by Pulumi
        name = stack or implied or cluster["name"]
        existed = engine.exists(name)
        if existed:
            stored = engine.open(name)
            # read before the config is written here: on a machine without the stack's settings (CI),
            # both come from the backend's record of the last update
            restore, before = stored.cluster(), stored.meta().get("styx:pricing")
        session = engine.create_or_select(name, cluster, base_dir)
        created = not existed
    else:
        name = pick_stack(engine, stack)
        session = open_stack(engine, name)
        before = session.meta().get("styx:pricing")
        cluster = session.cluster()
        if cluster is None:
            raise StyxError(f"stack {name} has no styx:cluster config; pass a CONFIG file", EXIT_FAILED)
        validate_cluster(cluster, session.base_dir())  # the stack's stored config: the same checks, exit 2
        session.bind_program()
    from styx.app import pricing
    from styx.app.preview_report import explain
    from styx.model.config import parse_cluster

    collector = PlanCollector(cluster["name"], node_names(cluster))
    packs = [str(Path(p).expanduser().resolve()) for p in policy_packs]
    try:
        result = session.preview(on_event=collector.handle, diff=diff, policy_packs=packs)
    finally:
        if restore is not None:
            session.set_cluster(restore)
        if created:
            session.remove()
    if not result.ok and not any(f.level == "mandatory" for f in collector.policy):
        for e in collector.errors[-10:]:
            info(e)
        raise StyxError(f"preview of {name} failed: {(result.error or '').strip()[-1500:]}", EXIT_FAILED)
    changes = result.changes or collector.summary
    error = None if result.ok else "mandatory policy findings"
    report = explain(name, collector, changes=changes, price_before=before if isinstance(before, dict) else None,
                     price_after=pricing.price_cluster(parse_cluster(cluster)),
                     policy_packs=[Path(p).name for p in packs], error=error)
    return PreviewResult(stack=name, changes=changes, nodes=collector.plan, rows=collector.compact(),
                         diff=result.stdout if diff else None, ok=result.ok, report=report,
                         redact=secret_values(cluster))


def secret_values(cluster: dict[str, Any]) -> list[str]:
    """The plaintext secret values a (resolved) cluster config holds: `setup.secret_env`'s."""
    env = ((cluster or {}).get("setup") or {}).get("secret_env") or {}
    return [str(v) for v in env.values() if isinstance(v, (str, int, float)) and str(v)]


# --------------------------------------------------------------------------- status


def _phase_status(line: str) -> str:
    parts = (line or "").split(": ", 2)
    if len(parts) >= 2 and parts[0].startswith("styx ") and parts[1] in ("ok", "skipped"):
        return parts[1]
    return "unknown"


def _launched_at(meta: dict[str, Any], last) -> datetime | None:
    from styx.app.pricing import parse_iso

    dt = parse_iso(meta.get("styx:launched_at")) if isinstance(meta.get("styx:launched_at"), str) else None
    if dt is None and last is not None:
        dt = last.start
    return dt


def cluster_record(session: Any, *, ray: bool, ray_timeout: int, at: datetime,
                   resource_count: int | None = None, check_spot: bool = True) -> dict[str, Any]:
    """Everything `status --json` says about one stack. `check_spot`: look for preempted spot nodes
    (`preempted`: a refresh of the spot machines on a cloud)."""
    from styx.app.pricing import cost_so_far, iso
    from styx.app.remote import ray_health

    cluster = session.cluster() or {}
    meta = session.meta()
    last = session.last_update()
    try:
        outputs = session.outputs()
    except Exception:
        outputs = {}
    results = outputs.get("phase_results") or {}
    from styx.app.power import reconcile_autostop, stopped_credit, stopped_nodes, stopped_seconds

    autostop_done = reconcile_autostop(session, cluster) if outputs.get("nodes") else None
    meta = session.meta() if autostop_done else meta
    stopped = stopped_nodes(meta)
    nodes = []
    for n in outputs.get("nodes") or []:
        phases = results.get(n.get("name"), {}) or {}
        nodes.append({
            "power": "stopped" if n.get("name") in stopped else "running",
            "stopped_since": stopped.get(n.get("name")),
            "name": n.get("name"),
            "role": n.get("role"),
            "host": n.get("host"),
            "private_ip": n.get("private_ip"),
            "zone": n.get("zone"),
            "instance_type": n.get("instance_type"),
            "phases": {p: {"status": _phase_status(line), "line": line} for p, line in phases.items()},
            "ready": bool(phases) and all(_phase_status(line) in ("ok", "skipped") for line in phases.values()),
        })
    launched = _launched_at(meta, last) if nodes else None
    pricing = meta.get("styx:pricing") if isinstance(meta.get("styx:pricing"), dict) else None
    per_hour = pricing.get("per_hour") if pricing else None
    rec: dict[str, Any] = {
        "stack": session.name,
        "cluster": cluster.get("name"),
        "cloud": cluster.get("cloud"),
        "placement": meta.get("styx:placement"),
        "state": "up" if nodes else ("partial" if resource_count else "empty"),
        "resource_count": resource_count,
        "head_ip": outputs.get("head_ip"),
        "ray_address": outputs.get("ray_address"),
        "ssh_user": outputs.get("ssh_user"),
        "nodes": nodes,
        "last_update": None if last is None else {
            "kind": last.kind, "result": last.result, "start": iso(last.start), "end": iso(last.end),
            "resource_changes": last.resource_changes},
        "launched_at": iso(launched),
        "uptime_s": round((at - launched).total_seconds()) if launched else None,
        "price_per_hour": per_hour,
        "cost_so_far": max(0.0, round(cost_so_far(pricing, launched, at) - stopped_credit(pricing, meta, at), 6))
        if launched else 0.0,
        "stopped_s": {k: round(v) for k, v in stopped_seconds(meta, at).items()},
        "ray": None,
        "autostop": _autostop_status(cluster, autostop_done) if nodes else None,
    }
    if nodes and last is not None and last.result not in ("succeeded",):
        rec["state"] = "degraded" if last.result == "failed" else last.result
    if nodes and stopped:
        rec["state"] = "stopped" if all(n["power"] == "stopped" for n in nodes) else "partly stopped"
    rec["preempted"] = preempted(session, cluster) if nodes and check_spot else []
    if rec["preempted"]:
        rec["state"] = "degraded"
    if ray and nodes and rec["state"] != "stopped":
        rec["ray"] = ray_health(outputs, cluster, timeout=ray_timeout)
    rec["drift"] = _drift_summary(session)
    return rec


def _autostop_status(cluster: dict[str, Any], done: dict[str, Any] | None) -> dict[str, Any] | None:
    """setup.autostop as configured, the head watcher's idle time (when the backend can read it), and the
    stop it made while the cluster stays stopped."""
    conf = (cluster.get("setup") or {}).get("autostop")
    if not conf and not done:
        return None
    out: dict[str, Any] = {"idle_minutes": (conf or {}).get("idle_minutes"), "down": bool((conf or {}).get("down")),
                           "idle_since": None, "checked_at": None, "busy": None,
                           "stopped_at": (done or {}).get("at"), "action": (done or {}).get("action")}
    if conf and not done:
        from styx.components.backends import backend_class

        try:
            st = backend_class(cluster.get("cloud"))().autostop_state(cluster)
        except (ValueError, ImportError):
            st = None
        if st:
            out.update(idle_since=st.get("idle_since"), checked_at=st.get("checked_at"), busy=st.get("busy"))
    return out


def _drift_summary(session: Any) -> dict[str, Any] | None:
    """The last `styx drift` of this stack on this machine (None: never checked)."""
    from styx.app import drift as dr

    engine = getattr(session, "engine", None)
    last = dr.last(session.name, engine.backend_url) if engine is not None else None
    if not last:
        return None
    return {"at": last.get("at"), "clean": last.get("clean"), "drifted": last.get("drifted") or [],
            "unreachable": last.get("unreachable") or []}


def _typed(rec: dict[str, Any]) -> ClusterStatus:
    nodes = [NodeStatus(name=n["name"], role=n["role"], host=n["host"], private_ip=n["private_ip"], ready=n["ready"],
                        phases={p: v["status"] for p, v in n["phases"].items()}, zone=n.get("zone"),
                        instance_type=n.get("instance_type")) for n in rec["nodes"]]
    return ClusterStatus(stack=rec["stack"], cluster=rec["cluster"], cloud=rec["cloud"], state=rec["state"],
                         nodes=nodes, head_ip=rec["head_ip"], ray_address=rec["ray_address"], ray=rec["ray"],
                         price_per_hour=rec["price_per_hour"], uptime_s=rec["uptime_s"], record=rec)


def status_records(stack: str | None = None, *, backend: str | None = None, ray: bool = True,
                   ray_timeout: int = 20, at: datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(backend URL, the `styx status --json` record of each stack: or of `stack` only)."""
    engine = make_engine(backend)
    listed = {s.name: s for s in engine.list_stacks()}
    names = [stack] if stack else sorted(listed)
    at = at or datetime.now(UTC)
    records = []
    for name in names:
        session = open_stack(engine, name)
        count = listed[name].resource_count if name in listed else None
        records.append(cluster_record(session, ray=ray, ray_timeout=ray_timeout, at=at, resource_count=count))
    return engine.backend_url, records


def status(stack: str | None = None, *, backend: str | None = None, ray: bool = True,
           ray_timeout: int = 20) -> list[ClusterStatus]:
    """Each cluster (or `stack`): nodes, roles, addresses, phases, Ray health, uptime and $/hour."""
    return [_typed(r) for r in status_records(stack, backend=backend, ray=ray, ray_timeout=ray_timeout)[1]]


# --------------------------------------------------------------------------- exec


def exec(stack: str | None, command: str | Sequence[str], *, node: str | None = None,
         backend: str | None = None, timeout: float | None = None) -> ExecResult:
    """Run `command` on `node` (default: the head) over SSH and capture its output (`styx exec --json`).

    A string is a shell command line as written; a list is quoted word by word. Raises StyxError when
    it times out.
    """
    from styx.app.remote import load, run_on, target_for

    _session, outputs, cluster = load(stack, backend)
    t = target_for(outputs, cluster, node)
    text = command if isinstance(command, str) else shlex.join(command)
    r = run_on(t, text, timeout=timeout)
    if r.timed_out:
        raise StyxError(f"timed out after {timeout}s: {text}", EXIT_FAILED)
    return r


def exec_all(stack: str | None, command: str | Sequence[str], *, nodes: Sequence[str] | None = None,
             role: str | None = None, backend: str | None = None, timeout: float | None = None,
             parallel: int = 16, on_line: Callable[[str, str, str], None] | None = None) -> list[ExecResult]:
    """Run `command` on every node (or those in `nodes`, or of `role`: head | worker) in parallel, at
    most `parallel` at a time, each bounded by `timeout` seconds; `on_line(node, "stdout"|"stderr",
    line)` sees each line as it comes. One result per node in the cluster's order; a failed or timed
    out node never stops the others (`styx exec --all`)."""
    from styx.app.remote import load, run_on_many, select_nodes, target_for

    _session, outputs, cluster = load(stack, backend)
    names = select_nodes(outputs, nodes=list(nodes) if nodes else None, role=role)
    text = command if isinstance(command, str) else shlex.join(command)
    runs = run_on_many([target_for(outputs, cluster, n) for n in names], text, timeout=timeout, parallel=parallel,
                       on_line=on_line)
    return runs


def cp(stack: str | None, src: str, dst: str, *, backend: str | None = None, timeout: float | None = None,
       parallel: int = 16) -> list[ExecResult]:
    """Copy files to or from nodes (`styx cp`): one side is `NODE:PATH`, NODE a node's name or `all`.

    To nodes: a local file or folder goes into PATH when that is a folder there (or ends with /), else
    becomes PATH, like `scp -r`. From one node: into a local folder, or as the local name. From `all`:
    into DST/<node>/. One result per node."""
    from concurrent.futures import ThreadPoolExecutor

    from styx.app.remote import copy_from, copy_to, load, select_nodes, target_for

    def split(arg: str) -> tuple[str | None, str]:
        head, sep, tail = arg.partition(":")
        if sep and head and "/" not in head and tail:
            return head, tail
        return None, arg

    (sn, sp), (dn, dp) = split(src), split(dst)
    if (sn is None) == (dn is None):
        raise StyxError("styx cp: exactly one of SRC and DST is NODE:PATH (NODE a node's name or all)", EXIT_USAGE)
    _session, outputs, cluster = load(stack, backend)
    node = sn or dn
    names = select_nodes(outputs) if node == "all" else select_nodes(outputs, nodes=[node])
    targets = [target_for(outputs, cluster, n) for n in names]
    if dn is not None:
        def one(t):
            return copy_to(t, Path(sp), dp, timeout=timeout)
    else:
        local = Path(dp).expanduser()
        if node == "all":
            local.mkdir(parents=True, exist_ok=True)

        def one(t):
            if node != "all":
                return copy_from(t, sp, local, timeout=timeout)
            (local / t.node).mkdir(parents=True, exist_ok=True)
            return copy_from(t, sp, local / t.node, timeout=timeout)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets)))) as pool:
        runs = list(pool.map(one, targets))
    return [replace(r, command=f"cp {src} {dst}") for r in runs]


# --------------------------------------------------------------------------- jobs


def job_submit(stack: str | None, entrypoint: str, *, backend: str | None = None, working_dir: str | Path | None = None,
               runtime_env: dict[str, Any] | None = None, submission_id: str | None = None, wait: bool = True,
               on_log: Callable[[str], None] | None = None) -> Any:
    """Submit a Ray job through Ray's JobSubmissionClient on the head (`styx job submit`); with `wait`,
    stream its logs to `on_log` and return when it ends. Returns a styx.app.jobs.JobResult (id, status,
    message, logs; `.ok` when SUCCEEDED)."""
    from styx.app import jobs

    args: dict[str, Any] = {"entrypoint": entrypoint, "wait": wait}
    if runtime_env:
        args["runtime_env"] = runtime_env
    if submission_id:
        args["id"] = submission_id
    if working_dir is not None:
        args["working_dir"] = str(working_dir)
    return jobs.run(stack, "submit", backend=backend, on_log=on_log, **args)


# --------------------------------------------------------------------------- drift and repair


@dataclass
class RepairResult:
    stack: str
    ok: bool
    replaced: list[dict[str, str]]  # {node, phase} (or {resource}) of each replaced resource
    changes: dict[str, int]
    phases: dict[str, Any]  # node -> phase -> engine status (what ran)
    before: Any = None  # the DriftReport that chose them


def _gone_nodes(cluster: dict[str, Any] | None, names: list[str]) -> list[str] | None:
    """Of `names`, the nodes whose machine the backend says is gone (None: it cannot tell)."""
    from styx.components.backends import backend_class

    if not names or not cluster:
        return []
    try:
        backend = backend_class(cluster.get("cloud"))()
        return backend.gone_machines(cluster, names)
    except Exception:  # an unknown cloud, a config the backend cannot read
        return None


def drift(stack: str | None = None, *, backend: str | None = None, nodes: Sequence[str] | None = None,
          parallel: int = 16, timeout: int = 120) -> Any:
    """Check, read-only, that every node (or those in `nodes`) still is as its phases left it
    (`styx drift`): a DriftReport (styx.app.drift) with each node and phase ok, drifted (what differs)
    or unreachable; a node whose machine is gone is marked `gone`. The report is kept for `styx status`."""
    from styx.app import drift as dr
    from styx.app.pricing import iso
    from styx.app.remote import load

    session, outputs, cluster = load(stack, backend)
    if not outputs.get("nodes"):
        raise StyxError(f"stack {session.name} has no nodes (not launched yet): nothing to check", EXIT_FAILED)
    if nodes:
        known = {n.get("name") for n in outputs.get("nodes") or []}
        unknown = [n for n in nodes if n not in known]
        if unknown:
            raise StyxError(f"--node {', '.join(unknown)}: no such node; nodes: {', '.join(sorted(known))}", EXIT_USAGE)
    from styx.app.power import stopped_nodes

    stopped = stopped_nodes(session.meta())
    if stopped:  # a stopped node is not dialled: it would only time out
        asked = list(nodes) if nodes else [n.get("name") for n in outputs.get("nodes") or []]
        skip = [n for n in asked if n in stopped]
        nodes = [n for n in asked if n not in stopped]
        if not nodes:
            raise StyxError(f"{', '.join(skip)} of {session.name} stopped (`styx stop`): nothing to check; "
                            "`styx start` runs them again", EXIT_FAILED)
        _default_info(f"not checked (stopped by `styx stop`): {', '.join(skip)}")
    report = dr.check(session.name, session.deployment(), outputs, cluster, nodes=list(nodes) if nodes else None,
                      parallel=parallel, timeout=timeout, at=iso(datetime.now(UTC)))
    gone = set(_gone_nodes(cluster, [n.node for n in report.nodes if n.status == dr.UNREACHABLE]) or [])
    for n in report.nodes:
        n.gone = n.node in gone
        if n.gone:
            n.phases = [dr.PhaseCheck("machine", dr.UNREACHABLE, "the machine is gone (removed outside Pulumi): "
                                      "`styx repair` or `styx launch` makes it again"), *n.phases]
    dr.save(report, session.engine.backend_url)
    return report


def repair(stack: str | None = None, *, backend: str | None = None, report: Any = None,
           on_info: Callable[[str], None] | None = None, run_update: RunUpdate | None = None) -> RepairResult:
    """Put back what `drift` found (`styx repair`): through the engine, replace exactly the drifted
    phases and those after them on their node (the workers' Ray too when the head's Ray restarts), and
    make a gone machine again with all its phases; nothing else runs (`up --target`). Uses the stack's
    last launched config. Run `drift` first or pass its `report`."""
    from styx.app import drift as dr
    from styx.app.remote import load

    info = on_info or _default_info
    session, outputs, cluster = load(stack, backend)
    report = report or drift(session.name, backend=backend)
    dep = session.deployment()
    head = next((n.get("name") for n in outputs.get("nodes") or [] if n.get("role") == "head"), "head")
    urns = dr.repair_targets(report, dep, head=head)
    unreach = [n.node for n in report.nodes if n.status == dr.UNREACHABLE and not n.gone]
    if unreach:
        info(f"not reachable (not repaired): {', '.join(unreach)}")
    if not urns:
        info(f"{session.name}: nothing drifted: nothing to repair")
        return RepairResult(session.name, True, [], {}, {}, report)
    what = dr.describe(urns, dep)
    info(f"repairing {session.name}: " + ", ".join(f"{w['node']}/{w['phase']}" if "node" in w else w["resource"]
                                                   for w in what))
    # the old instance of a create-first phase must not undo its same-generation replacement, and a gone
    # machine's phases have nothing left to undo (their old node cannot be dialled)
    gone = [n.node for n in report.nodes if n.gone]
    if hasattr(session, "edit_state"):
        session.edit_state(lambda d: dr.retire_undos(d, urns) + dr.drop_undos(d, dr.phases_on(d, gone)))
    # the head's Ray replaced with the same generation: its workers' Ray after it (beside it, a worker could
    # find the old GCS, with the same generation, still answering)
    session.bind_program(ray_workers_after_head=any(w.get("phase") == "ray" and w.get("node") == head for w in what))
    session.up_options = {"replace": urns, "target": urns}
    names = [n.get("name") for n in outputs.get("nodes") or []]
    tracker = Tracker((cluster or {}).get("name") or session.name, names)
    try:
        result, _ = (run_update or _plain_update)(session, tracker, f"styx repair {session.name}", "up")
    finally:
        session.up_options = {}
    if not result.ok:
        print_failure(tracker.failures(), result.error, info)
        raise StyxError(f"repair of {session.name} failed", EXIT_FAILED,
                        data={"replaced": what, "phases": tracker.to_dict()})
    return RepairResult(session.name, True, what, result.changes or tracker.summary or {}, tracker.to_dict(), report)


# --------------------------------------------------------------------------- down


def down(stack: str | None = None, *, backend: str | None = None, keep_stack: bool = False,
         on_info: Callable[[str], None] | None = None, run_update: RunUpdate | None = None) -> DownResult:
    """Destroy a cluster's machines and setup, then remove its stack (`styx down --yes`)."""
    info = on_info or _default_info
    engine = make_engine(backend)
    session = open_stack(engine, stack)
    name = session.name
    repair_pending(session, yes=True, on_info=info)
    cluster = session.cluster() or {"name": name}
    from styx.app.power import start_machines, stopped_nodes, through_program

    if stopped_nodes(session.meta()):
        if through_program(cluster):  # AWS/GCP: phases are deleted with their machine, nothing dials a node
            info(f"{name} is stopped: destroying its stopped machines as they are")
        else:  # the phases' undos dial their nodes: run the machines first
            info(f"{name} is stopped: starting its machines so that the setup can be undone")
            start_machines(session, session.outputs(), cluster, None, info)
    tracker = Tracker(cluster.get("name", name), node_names(cluster) if "cloud" in cluster else ["head"])
    info(f"destroying {name} ...")
    result, _ = (run_update or _plain_update)(session, tracker, f"styx down {name}", "destroy")
    if not result.ok:
        print_failure(tracker.failures(), result.error, info)
        raise StyxError(f"destroy of {name} failed" + (" (cancelled)" if result.cancelled else "")
                        + "; run `styx down` again", EXIT_FAILED)
    if not keep_stack:
        session.remove()
    return DownResult(stack=name, changes=result.changes or {}, removed=not keep_stack)


# --------------------------------------------------------------------------- stop / start


@dataclass
class PowerResult:
    stack: str
    stopped: list[str]  # nodes stopped now (all of them for `start`: none)
    started: list[str]  # nodes started by this call
    repaired: list[dict[str, str]] = field(default_factory=list)  # {node, phase} re-run after the start


def stop(stack: str | None = None, *, backend: str | None = None, nodes: Sequence[str] | None = None,
         on_info: Callable[[str], None] | None = None) -> PowerResult:
    """Stop a cluster's machines (or `nodes`), keeping their disks (`styx stop`; styx.app.power).
    Spot nodes are refused: they cannot be stopped, only terminated."""
    from styx.app import power
    from styx.app.remote import load

    info = on_info or _default_info
    session, outputs, cluster = load(stack, backend)
    power.stop(session, outputs, cluster or {}, nodes, info)
    return PowerResult(session.name, sorted(power.stopped_nodes(session.meta())), [], [])


def start(stack: str | None = None, *, backend: str | None = None, nodes: Sequence[str] | None = None,
          on_info: Callable[[str], None] | None = None, run_update: RunUpdate | None = None) -> PowerResult:
    """Start a stopped cluster (or `nodes`) again (`styx start`): the machines run, then `drift` on them
    finds what stopping lost (Ray) and `repair` re-runs exactly that through the engine."""
    from styx.app import power
    from styx.app.remote import load

    info = on_info or _default_info
    session, outputs, cluster = load(stack, backend)
    started = power.start_machines(session, outputs, cluster or {}, nodes, info)
    still = sorted(power.stopped_nodes(session.meta()))
    if not started:
        info(f"{session.name}: nothing stopped: nothing to start")
        return PowerResult(session.name, still, [], [])
    running = [n.get("name") for n in outputs.get("nodes") or [] if n.get("name") not in still]
    if power.through_program(cluster or {}):
        # a cloud machine started again without a static address (`static_ip: false`, a spot VM) may have a new
        # one that the stack's outputs do not show yet (they change with the next update): no drift over SSH;
        # what a stop loses is its processes: Ray and the autostop watcher (or follower), re-run on the started
        # nodes (the head's Ray restart restarts every worker's too: repair_targets)
        from styx.app import drift as dr

        dep = session.deployment()
        lost = [p for p in dr.phase_resources(dep) if p.node in set(started) and p.phase in ("ray", "autostop")]
        report = dr.DriftReport(session.name, "", [
            dr.NodeCheck(n, dr.DRIFTED, [dr.PhaseCheck(ph, dr.DRIFTED, "the machine was stopped")
                                         for ph in ("ray", "autostop") if ph == "ray" or
                                         any(p.node == n and p.phase == ph for p in lost)])
            for n in started])
        # the old resources' undos (delete-first) would dial the address in the state, which a start may
        # have changed; a stopped machine runs no Ray or watcher to stop, and the scripts rewrite what
        # the undos remove
        rays = [p.urn for p in lost]
        if rays and hasattr(session, "edit_state"):
            session.edit_state(lambda d: dr.drop_undos(d, rays))
    else:
        report = drift(session.name, backend=backend, nodes=running)
    fixed = repair(session.name, backend=backend, report=report, on_info=info, run_update=run_update)
    if power.through_program(cluster or {}) and (power.record(session.meta()).get("autostop") or {}):
        # stopped by autostop: the head's autostop phase just ran again and read when its watcher asked for the
        # stop (the state changed: a fresh session reads it)
        power.autostop_requested_time(load(session.name, backend)[0], power.head_of(outputs), info)
    return PowerResult(session.name, still, started, fixed.replaced)


# --------------------------------------------------------------------------- autostop


@dataclass
class AutostopResult:
    stack: str
    autostop: dict[str, Any] | None  # setup.autostop now (None: off)
    targets: list[str]  # the URNs the update touched
    changes: dict[str, Any] = field(default_factory=dict)


def autostop_targets(deployment: dict[str, Any], cluster: dict[str, Any], head: str = "head") -> list[str]:
    """The URNs `styx autostop` updates: the head's autostop phase (and, where the nodes stop themselves,
    every worker's follower) and the backend's helpers for it (children of the Cluster component),
    whether they exist yet or not (a new one is created, a removed one deleted)."""
    from styx.app import drift as dr
    from styx.components.backends import backend_class
    from styx.model.config import ClusterConfig

    phases = dr.phase_resources(deployment)
    if not [p for p in phases if p.node == head]:
        raise StyxError("the stack records no setup phase on the head: run `styx launch`", EXIT_FAILED)
    backend = backend_class(cluster.get("cloud"))()
    # where the nodes stop themselves, every worker's follower follows the setting too
    nodes = list(dict.fromkeys([head, *(p.node for p in phases)])) if backend.autostop_poweroff else [head]
    urns = []
    for n in nodes:
        first = next(p for p in phases if p.node == n)
        prefix, last = first.urn.rsplit("::", 1)
        urns.append(f"{prefix}::{last[: -len(first.phase) - 1]}-autostop")
    comp = next((r["urn"] for r in deployment.get("resources") or [] if r.get("type") == "styx:index:Cluster"), None)
    helpers = backend.autostop_helpers(ClusterConfig.model_validate(cluster))
    if helpers and comp is None:
        raise StyxError("the stack records no styx:index:Cluster component: run `styx launch`", EXIT_FAILED)
    for type_, name in helpers:
        base, _ = comp.rsplit("::", 1)
        urns.append(f"{base}${type_}::{name}")
    return urns


def autostop(stack: str | None = None, *, backend: str | None = None, idle_minutes: int | None = None,
             down: bool | None = None, off: bool = False, on_info: Callable[[str], None] | None = None,
             run_update: RunUpdate | None = None) -> AutostopResult:
    """Change setup.autostop of a running cluster (`styx autostop`): the stack's config gets the new
    value, then only the head's autostop phase (and the backend's helpers for it) run: `up --target`."""
    from styx.app.power import stopped_nodes
    from styx.app.remote import load

    info = on_info or _default_info
    session, outputs, cluster = load(stack, backend)
    if cluster is None:
        raise StyxError(f"stack {session.name} has no styx:cluster config readable here", EXIT_USAGE)
    if not outputs.get("nodes"):
        raise StyxError(f"stack {session.name} has no nodes (not launched yet): set setup.autostop in its "
                        "config and run `styx launch`", EXIT_FAILED)
    if stopped_nodes(session.meta()):
        raise StyxError(f"cluster {session.name} is stopped: run `styx start --stack {session.name}` first",
                        EXIT_FAILED)
    new = copy.deepcopy(cluster)
    setup = new.setdefault("setup", {})
    if off:
        if idle_minutes is not None or down is not None:
            raise StyxError("--off: give no --idle-minutes/--down with it", EXIT_USAGE)
        setup.pop("autostop", None)
    else:
        cur = dict(setup.get("autostop") or {})
        if idle_minutes is None and not cur:
            raise StyxError("--idle-minutes: required (autostop is off on this cluster)", EXIT_USAGE)
        if idle_minutes is not None:
            cur["idle_minutes"] = idle_minutes
        if down is not None:
            cur["down"] = down
        setup["autostop"] = cur
    base_dir = session.base_dir()
    validate_cluster(new, base_dir)
    head = next((n.get("name") for n in outputs.get("nodes") or [] if n.get("role") == "head"), "head")
    urns = autostop_targets(session.deployment(), new, head)
    session.set_cluster(new)
    session.bind_program(base_dir)
    session.up_options = {"target": urns}
    info(f"{session.name}: autostop " + ("off" if off else f"after {setup['autostop']['idle_minutes']} idle min"
                                         + (" (down)" if setup["autostop"].get("down") else "")))
    tracker = Tracker(new.get("name") or session.name, [head] + [n.get("name") for n in outputs.get("nodes") or []
                                                                 if n.get("name") != head])
    try:
        result, _ = (run_update or _plain_update)(session, tracker, f"styx autostop {session.name}", "up")
    finally:
        session.up_options = {}
    if not result.ok:
        print_failure(tracker.failures(), result.error, info)
        raise StyxError(f"styx autostop on {session.name} failed", EXIT_FAILED, data={"phases": tracker.to_dict()})
    return AutostopResult(session.name, setup.get("autostop"), urns, result.changes or tracker.summary or {})
