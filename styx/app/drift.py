"""`styx drift` and `styx repair`: is every node still as its phases left it; put back what is not.

`pulumi refresh` cannot see a setup phase (`command.remote.Command` has no read). But every phase
program in the stack's state (the resource's stdin: exactly what ran, secrets included, decrypted only
here and only on a pipe) also answers the action `verify` (styx.components.runner): its script's
`check_drift()` looks, read-only, and prints one line, ok or drifted with what differs. So:

- `check` runs, over SSH, the same wrapper and the same stdin as the engine did, with `verify`, on
  every node in parallel (the phases of one node in their order; a node that does not answer its
  gate is `unreachable` and the rest of its phases are not tried). Nothing reaches a command line.
- `repair_targets` is what a repair replaces through the engine (`up --replace U --target U`): on
  each node, its first drifted phase and every phase after it (their state may rest on it); when
  the head's Ray is among them, every worker's Ray too (a restarted head is a new cluster they must
  rejoin); and a machine that is gone (the backend says so: `Backend.gone_machines`) with all of its
  phases.
  A create-first phase (file_sync) is replaced with the same parameters, so its generation guard
  cannot tell the old resource from the new: its undo is dropped from the state first
  (`retire_undos`), and the old one leaves without removing what the new one wrote.
- the last report of each stack is kept under STYX_HOME for `styx status`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from styx.app import engine as eng
from styx.app.remote import ExecResult, Target, run_on, target_for
from styx.app.session import SIG_KEY

SECRET_SIG = SIG_KEY  # Pulumi's marker of a secret value in an exported state (session.py)
PHASE_TYPE = "command:remote:Command"
COPY_TYPE = "command:remote:CopyToRemote"
OK, DRIFTED, UNREACHABLE, UNCHECKED, UNKNOWN = "ok", "drifted", "unreachable", "unchecked", "unknown"


@dataclass(frozen=True)
class PhaseResource:
    """One setup phase of one node, as the state records it."""

    urn: str
    node: str
    phase: str
    timeout_s: int
    program: str | None  # its stdin (None: not readable)
    machine: str | None  # URN of the machine it is deleted with (None: an adopted host)

    @property
    def verifiable(self) -> bool:
        """Programs written by a styx without `verify` would run their create: never send those."""
        p = self.program or ""
        return "styx_verifying" in p or '= verify ]' in p


@dataclass
class PhaseCheck:
    phase: str
    status: str  # ok | drifted | unreachable | unchecked | unknown
    detail: str
    urn: str = ""


@dataclass
class NodeCheck:
    node: str
    status: str  # ok | drifted | unreachable
    phases: list[PhaseCheck] = field(default_factory=list)
    gone: bool = False  # the machine no longer exists (the backend's check)

    @property
    def drifted(self) -> list[PhaseCheck]:
        return [p for p in self.phases if p.status == DRIFTED]


@dataclass
class DriftReport:
    stack: str
    at: str
    nodes: list[NodeCheck]

    @property
    def clean(self) -> bool:
        return all(n.status == OK for n in self.nodes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "at": self.at, "clean": self.clean,
            "nodes": [{**asdict(n), "phases": [asdict(p) for p in n.phases]} for n in self.nodes],
            "drifted": [{"node": n.node, "phase": p.phase, "detail": p.detail}
                        for n in self.nodes for p in n.drifted],
            "unreachable": [n.node for n in self.nodes if n.status == UNREACHABLE],
        }


# --------------------------------------------------------------------------- the state


def plain(v: Any) -> Any:
    """A value of an exported (--show-secrets) state: a secret's envelope opened."""
    if isinstance(v, dict) and v.get(SECRET_SIG) is not None:
        text = v.get("plaintext")
        return json.loads(text) if isinstance(text, str) else None
    return v


def _phase_of(create: Any) -> tuple[str, str, int] | None:
    """(phase, node, limit) from styx's wrapper command text (`exec bash -c WRAPPER styx PHASE NODE LIMIT
    create`)."""
    if not isinstance(create, str):
        return None
    try:
        words = shlex.split(create)
    except ValueError:
        return None
    if len(words) < 8 or words[-8:-6] != ["bash", "-c"] or words[-5] != "styx" or words[-1] != "create":
        return None
    try:
        return words[-4], words[-3], int(words[-2])
    except ValueError:
        return None


def phase_resources(deployment: Mapping[str, Any]) -> list[PhaseResource]:
    """Every styx phase in the state, in the state's order (a node's phases in their chain order)."""
    out = []
    for r in deployment.get("resources") or []:
        if r.get("type") != PHASE_TYPE or r.get("delete"):
            continue
        inputs = r.get("inputs") or {}
        hit = _phase_of(plain(inputs.get("create")))
        if hit is None:
            continue
        program = plain(inputs.get("stdin"))
        out.append(PhaseResource(r["urn"], hit[1], hit[0], hit[2], program if isinstance(program, str) else None,
                                 r.get("deletedWith") or None))
    return out


def copy_urns(deployment: Mapping[str, Any]) -> dict[str, str]:
    """URN of each phase's file copy (`<name>-<phase>-copy`, same parent), by the phase's URN."""
    out = {}
    for r in deployment.get("resources") or []:
        urn = r.get("urn", "")
        if r.get("type") == COPY_TYPE and urn.endswith("-copy") and f"${COPY_TYPE}::" in urn:
            out[urn.replace(f"${COPY_TYPE}::", f"${PHASE_TYPE}::")[:-len("-copy")]] = urn
    return out


def by_node(phases: Iterable[PhaseResource]) -> dict[str, list[PhaseResource]]:
    out: dict[str, list[PhaseResource]] = {}
    for p in phases:
        out.setdefault(p.node, []).append(p)
    return out


# --------------------------------------------------------------------------- checks


def _verdict(pr: PhaseResource, r: ExecResult) -> PhaseCheck:
    if r.timed_out:
        return PhaseCheck(pr.phase, DRIFTED, "its check timed out", pr.urn)
    mark = f"styx {pr.phase}: "
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(mark)]
    if lines:
        status, _, detail = lines[-1][len(mark):].partition(": ")
        if status == DRIFTED:
            return PhaseCheck(pr.phase, DRIFTED, detail, pr.urn)
        if status == "skipped" and pr.phase.startswith("custom-"):
            return PhaseCheck(pr.phase, UNCHECKED, detail, pr.urn)
        return PhaseCheck(pr.phase, OK, detail, pr.urn)
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    last = err[-1] if err else f"exit status {r.exit_code}"
    if r.exit_code == 255 and not r.stdout:
        return PhaseCheck(pr.phase, UNREACHABLE, last, pr.urn)
    return PhaseCheck(pr.phase, DRIFTED, f"its check failed: {last}", pr.urn)


def check_node(t: Target, phases: list[PhaseResource], *, timeout: int = 120,
               run: Callable[..., ExecResult] = run_on) -> NodeCheck:
    """The phases of one node, in order; stops at an unreachable gate."""
    from styx.components.runner import command_text

    node = NodeCheck(t.node, OK)
    for i, pr in enumerate(phases):
        if not pr.verifiable:
            node.phases.append(PhaseCheck(pr.phase, UNKNOWN, "written by an older styx: `styx launch` once to "
                                          "make it checkable", pr.urn))
            continue
        r = run(t, command_text(pr.phase, t.node, min(pr.timeout_s, timeout), "verify"), timeout=timeout + 15,
                stdin_text=pr.program)
        c = _verdict(pr, r)
        node.phases.append(c)
        if c.status == UNREACHABLE:
            node.status = UNREACHABLE
            node.phases += [PhaseCheck(p.phase, UNREACHABLE, "not checked", p.urn) for p in phases[i + 1:]]
            return node
    if node.drifted:
        node.status = DRIFTED
    return node


def check(stack: str, deployment: Mapping[str, Any], outputs: dict[str, Any], cluster: dict[str, Any] | None, *,
          nodes: list[str] | None = None, parallel: int = 16, timeout: int = 120, at: str = "",
          run: Callable[..., ExecResult] = run_on) -> DriftReport:
    """Every node's phases checked (or those of `nodes`), nodes in parallel."""
    phases = by_node(phase_resources(deployment))
    names = [n.get("name") for n in outputs.get("nodes") or [] if not nodes or n.get("name") in nodes]

    targets: dict[str, Any] = {}
    for name in names:  # one after the other: each may (re)write the cluster's known_hosts file
        try:
            targets[name] = target_for(outputs, cluster, name)
        except Exception as e:  # no address, no key, no pinned host key: the node cannot be dialled
            targets[name] = NodeCheck(name, UNREACHABLE, [PhaseCheck("wait_ssh", UNREACHABLE, str(e))])

    def one(name: str) -> NodeCheck:
        t = targets[name]
        return t if isinstance(t, NodeCheck) else check_node(t, phases.get(name, []), timeout=timeout, run=run)

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names) or 1))) as pool:
        results = list(pool.map(one, names))
    return DriftReport(stack, at, results)


# --------------------------------------------------------------------------- repair


def repair_targets(report: DriftReport, deployment: Mapping[str, Any], *, head: str = "head") -> list[str]:
    """URNs a repair replaces: per drifted node, its first drifted phase and all after it (with a
    file_sync its copy); for a node whose machine is gone, the machine and all its phases; every
    worker's Ray when the head's Ray is among them."""
    phases = by_node(phase_resources(deployment))
    copies = copy_urns(deployment)
    urns: list[str] = []
    for n in report.nodes:
        chain = phases.get(n.node, [])
        if n.gone:
            first: int | None = 0
            urns += [m for m in (machine_of(deployment, n.node),) if m]
        else:
            bad = {p.phase for p in n.drifted}
            first = next((i for i, p in enumerate(chain) if p.phase in bad), None)
        if first is None:
            continue
        for p in chain[first:]:
            urns.append(p.urn)
            if p.urn in copies:
                urns.append(copies[p.urn])
    head_ray = next((p.urn for p in phases.get(head, []) if p.phase == "ray"), None)
    if head_ray and head_ray in urns:
        urns += [p.urn for name, chain in phases.items() if name != head for p in chain if p.phase == "ray"]
    return list(dict.fromkeys(urns))


def retire_undos(deployment: dict[str, Any], urns: Iterable[str]) -> list[str]:
    """Drop the undo of each create-first phase among `urns` from the state (in place), so that its
    replacement (same parameters, so the same generation: the guard cannot tell them apart) is not
    undone by the old resource's delete, which runs after the new one's create. Returns their URNs."""
    from styx.components.phases import PHASES

    create_first = {ph.name for ph in PHASES if ph.undo and not ph.replace_delete_first}
    return drop_undos(deployment, [p.urn for p in phase_resources(deployment)
                                   if p.urn in set(urns) and p.phase in create_first])


def drop_undos(deployment: dict[str, Any], urns: Iterable[str]) -> list[str]:
    """Remove the delete command of each resource in `urns` from the state (in place): its delete then
    runs nothing. For a phase whose undo must not run (or cannot: its machine is gone)."""
    want, done = set(urns), []
    for r in deployment.get("resources") or []:
        if r.get("urn") in want and (r.get("inputs") or {}).get("delete"):
            for part in ("inputs", "outputs"):
                (r.get(part) or {}).pop("delete", None)
            done.append(r["urn"])
    return done


def phases_on(deployment: Mapping[str, Any], nodes: Iterable[str]) -> list[str]:
    """URNs of every phase of `nodes`."""
    want = set(nodes)
    return [p.urn for p in phase_resources(deployment) if p.node in want]


def describe(urns: Iterable[str], deployment: Mapping[str, Any]) -> list[dict[str, str]]:
    """`{node, phase}` (or `{resource}`) for each URN a repair replaces."""
    known = {p.urn: p for p in phase_resources(deployment)}
    out = []
    for u in urns:
        p = known.get(u)
        out.append({"node": p.node, "phase": p.phase} if p else {"resource": u.rsplit("::", 1)[-1]})
    return out


def machine_of(deployment: Mapping[str, Any], node: str) -> str | None:
    """URN of the machine a node's phases are deleted with (None: an adopted host)."""
    return next((p.machine for p in phase_resources(deployment) if p.node == node and p.machine), None)


# --------------------------------------------------------------------------- the last report


def report_path(stack: str, backend_url: str) -> Path:
    import hashlib

    key = hashlib.sha256(backend_url.encode()).hexdigest()[:10]
    return eng.styx_home() / "drift" / key / f"{stack}.json"


def save(report: DriftReport, backend_url: str) -> Path:
    p = report_path(report.stack, backend_url)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return p


def last(stack: str, backend_url: str) -> dict[str, Any] | None:
    try:
        return json.loads(report_path(stack, backend_url).read_text())
    except (OSError, ValueError):
        return None
