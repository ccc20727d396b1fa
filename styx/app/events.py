"""Engine events -> per-node phase progress (launch, down) and per-node change plans (preview).
Plain data, nothing printed: the CLI draws it (styx.app.cli.progress), the API returns it.

Resources of a cluster are named `<cluster>-<node>-<phase>` (components/node.py): the wait-for-SSH
gate and every setup phase are `command:remote:Command`s under a `styx:index:Node`; the machine
itself (`<cluster>-<node>-sandbox` for local, the instance for clouds) is shown as `provision`.
Cluster-wide resources (network, base image, key) are grouped under the pseudo-node `(cluster)`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

CLUSTER_ROW = "(cluster)"
MACHINE_SUFFIXES = ("sandbox", "instance", "vm", "pod", "host")
TAIL_LINES = 8


def split_urn(urn: str) -> tuple[str, str]:
    """(qualified type, name) of a URN `urn:pulumi:STACK::PROJECT::TYPE::NAME`."""
    parts = urn.split("::")
    if len(parts) < 4:
        return "", urn
    return parts[2], parts[-1]


class NameMap:
    """Maps resource names to (node, phase) for one cluster."""

    def __init__(self, cluster: str, nodes: Iterable[str]):
        self.cluster = cluster
        self.nodes = sorted(nodes, key=len, reverse=True)  # longest first: "gpu-1" before "gpu"

    def resolve(self, urn: str) -> tuple[str, str] | None:
        """(node, phase) for a resource of this cluster; None for stacks, providers and components."""
        typ, name = split_urn(urn)
        leaf = typ.rsplit("$", 1)[-1]
        if not typ or leaf.startswith("pulumi:") or leaf in ("styx:index:Cluster", "styx:index:Node"):
            return None
        prefix = f"{self.cluster}-"
        rest = name[len(prefix):] if name.startswith(prefix) else name
        in_node = "styx:index:Node" in typ
        for n in self.nodes:
            if rest == n:
                return n, "provision"
            if rest.startswith(n + "-"):
                phase = rest[len(n) + 1:]
                if not leaf.startswith("command:remote:") and (phase in MACHINE_SUFFIXES or in_node):
                    phase = "provision" if phase in MACHINE_SUFFIXES else f"provision:{phase}"
                return n, phase
        return CLUSTER_ROW, rest


@dataclass
class PhaseState:
    name: str
    op: str = "create"
    status: str = "running"  # running | done | unchanged | failed
    started: float = 0.0
    ended: float | None = None
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    error: str | None = None


@dataclass
class NodeState:
    name: str
    phases: dict[str, PhaseState] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None

    @property
    def current(self) -> PhaseState | None:
        running = [p for p in self.phases.values() if p.status == "running"]
        if running:
            return running[-1]
        failed = [p for p in self.phases.values() if p.status == "failed"]
        if failed:
            return failed[-1]
        return next(reversed(self.phases.values()), None)

    @property
    def failed(self) -> bool:
        return any(p.status == "failed" for p in self.phases.values())

    @property
    def status(self) -> str:
        if self.failed:
            return "failed"
        if any(p.status == "running" for p in self.phases.values()):
            return "running"
        return "done" if self.phases else "waiting"

    def elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None and self.status != "running" else now) - self.started


class Tracker:
    """Consumes Automation API engine events; keeps one NodeState per node (head first)."""

    def __init__(self, cluster: str, nodes: Iterable[str], clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[str, PhaseState], None] | None = None):
        nodes = list(nodes)
        self.names = NameMap(cluster, nodes)
        self.clock = clock
        self.on_change = on_change
        self.nodes: dict[str, NodeState] = {n: NodeState(n) for n in nodes}
        self.errors: list[tuple[str, str, str]] = []  # (node, phase, message)
        self.messages: deque = deque(maxlen=20)  # diagnostics without a resource
        self.started = clock()
        self.summary: dict[str, int] | None = None

    def _node(self, name: str) -> NodeState:
        if name not in self.nodes:
            self.nodes[name] = NodeState(name)
        return self.nodes[name]

    def _phase(self, urn: str, create: bool = True) -> tuple[NodeState, PhaseState] | None:
        hit = self.names.resolve(urn)
        if hit is None:
            return None
        node = self._node(hit[0])
        ph = node.phases.get(hit[1])
        if ph is None:
            if not create:
                return None
            ph = node.phases[hit[1]] = PhaseState(hit[1], started=self.clock())
        return node, ph

    def handle(self, ev: Any) -> None:
        now = self.clock()
        pre = getattr(ev, "resource_pre_event", None)
        if pre is not None:
            md = pre.metadata
            op = str(getattr(md.op, "value", md.op))
            got = self._phase(md.urn)
            if got is None:
                return
            node, ph = got
            if ph.status in ("done", "unchanged") and (op == "delete-replaced" or (
                    op == "replace" and ph.op == "create-replacement")):
                return  # the rest of a replacement whose new resource is already in place
            ph.op, ph.started, ph.ended, ph.error = op, now, None, None
            ph.status = "unchanged" if op in ("same", "read") else "running"
            if node.started is None:
                node.started = now
            self._changed(node.name, ph)
            return
        outs = getattr(ev, "res_outputs_event", None)
        if outs is not None:
            got = self._phase(outs.metadata.urn)
            if got is None:
                return
            node, ph = got
            ph.ended = now
            node.ended = now
            if ph.status == "running":
                ph.status = "done"
                self._changed(node.name, ph)
            return
        failed = getattr(ev, "res_op_failed_event", None)
        if failed is not None:
            got = self._phase(failed.metadata.urn)
            if got is None:
                return
            node, ph = got
            self._fail(node, ph, ph.error or "failed", now)
            return
        diag = getattr(ev, "diagnostic_event", None)
        if diag is not None:
            self._diag(diag, now)
            return
        summ = getattr(ev, "summary_event", None)
        if summ is not None:
            self.summary = {str(getattr(k, "value", k)): v for k, v in (summ.resource_changes or {}).items()}

    def _diag(self, d: Any, now: float) -> None:
        msg = (d.message or "").rstrip()
        if not msg:
            return
        got = self._phase(d.urn, create=False) if d.urn else None
        sev = str(d.severity or "")
        if got is None:
            if sev == "error" or (d.urn is None and sev in ("warning", "info#err")):
                self.messages.append(msg)
            if sev == "error" and d.urn:
                hit = self.names.resolve(d.urn)
                if hit is not None:
                    self.errors.append((hit[0], hit[1], msg))
            return
        node, ph = got
        for line in msg.splitlines():
            if line.strip():
                ph.tail.append(line.rstrip())
        if sev == "error":
            self._fail(node, ph, msg, now)

    def _fail(self, node: NodeState, ph: PhaseState, msg: str, now: float) -> None:
        first = ph.status != "failed"
        ph.status = "failed"
        ph.ended = now
        node.ended = now
        if msg and msg != "failed" and (ph.error is None or ph.error == "failed"):
            ph.error = msg
            self.errors.append((node.name, ph.name, msg))
        if first:
            self._changed(node.name, ph)

    def _changed(self, node: str, ph: PhaseState) -> None:
        if self.on_change is not None:
            self.on_change(node, ph)

    # -- views
    def failures(self) -> list[dict[str, Any]]:
        out = []
        for n in self.nodes.values():
            for p in n.phases.values():
                if p.status == "failed":
                    out.append({"node": n.name, "phase": p.name, "error": p.error or "",
                                "tail": list(p.tail)})
        if not out:
            out = [{"node": n, "phase": p, "error": m, "tail": []} for n, p, m in self.errors]
        return out

    def rows(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for n in self.nodes.values():
            cur = n.current
            done = sum(1 for p in n.phases.values() if p.status in ("done", "unchanged"))
            out.append({
                "node": n.name,
                "phase": cur.name if cur else "-",
                "status": n.status,
                "done": done,
                "elapsed_s": round(n.elapsed(now), 1),
                "tail": (list(cur.tail)[-1] if cur and cur.tail else ""),
            })
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            n.name: {p.name: p.status for p in n.phases.values()}
            for n in self.nodes.values() if n.phases
        }


# --------------------------------------------------------------------------- preview plans


@dataclass
class Step:
    """What the engine plans for one resource (a preview's ResourcePreEvents, merged): its operation,
    its inputs before and after (secret values arrive masked as `[secret]`), and the changed keys."""

    node: str
    phase: str
    type: str
    op: str
    order: int
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    diffs: list[str] = field(default_factory=list)  # property paths that differ (detailed diff, else diffs)


@dataclass(frozen=True)
class PolicyFinding:
    policy: str
    pack: str
    level: str  # "advisory" | "mandatory" | ...
    message: str
    urn: str | None


class PlanCollector:
    """ResourcePreEvents of a preview -> {node: {phase: op}}, with each step's inputs (`steps`), and
    the policy packs' findings."""

    def __init__(self, cluster: str, nodes: Iterable[str]):
        self.names = NameMap(cluster, nodes)
        self.plan: dict[str, dict[str, str]] = {}
        self.steps: dict[tuple[str, str], Step] = {}
        self.policy: list[PolicyFinding] = []
        self.summary: dict[str, int] = {}
        self.errors: list[str] = []

    def _step(self, hit: tuple[str, str], md: Any, op: str) -> None:
        st = self.steps.get(hit)
        if st is None:
            st = self.steps[hit] = Step(hit[0], hit[1], str(md.type or ""), op, len(self.steps))
        st.op = op
        old = getattr(md.old, "inputs", None) if md.old is not None else None
        new = getattr(md.new, "inputs", None) if md.new is not None else None
        if old is not None and st.old is None:
            st.old = dict(old)
        if new is not None and (st.new is None or op == "replace"):
            st.new = dict(new)
        keys = list((md.detailed_diff or {}).keys()) or list(md.diffs or []) or list(md.keys or [])
        for k in keys:
            if k not in st.diffs:
                st.diffs.append(k)

    def handle(self, ev: Any) -> None:
        pre = getattr(ev, "resource_pre_event", None)
        if pre is not None:
            md = pre.metadata
            hit = self.names.resolve(md.urn)
            if hit is None:
                return
            op = str(getattr(md.op, "value", md.op))
            cur = self.plan.setdefault(hit[0], {}).get(hit[1])
            # a replacement shows as create-replacement + replace + delete-replaced: keep "replace"
            if cur in ("replace", "create-replacement", "delete-replaced") or op in (
                    "create-replacement", "delete-replaced"):
                op = "replace"
            self.plan[hit[0]][hit[1]] = op
            self._step(hit, md, op)
            return
        pol = getattr(ev, "policy_event", None)
        if pol is not None:
            self.policy.append(PolicyFinding(pol.policy_name or "", pol.policy_pack_name or "",
                                             str(pol.enforcement_level or ""), (pol.message or "").strip(),
                                             pol.resource_urn))
            return
        diag = getattr(ev, "diagnostic_event", None)
        if diag is not None and str(diag.severity) == "error" and diag.message:
            self.errors.append(diag.message.rstrip())
            return
        summ = getattr(ev, "summary_event", None)
        if summ is not None:
            self.summary = {str(getattr(k, "value", k)): v for k, v in (summ.resource_changes or {}).items()}

    def compact(self) -> list[dict[str, Any]]:
        """One row per node: phases by action."""
        rows = []
        order = ["create", "update", "replace", "delete", "same"]
        for node, phases in self.plan.items():
            by: dict[str, list[str]] = {}
            for ph, op in phases.items():
                by.setdefault("same" if op in ("same", "read") else op, []).append(ph)
            rows.append({"node": node, **{k: by.get(k, []) for k in order},
                         **{k: v for k, v in by.items() if k not in order}})
        rows.sort(key=lambda r: (r["node"] == CLUSTER_ROW, r["node"] != "head", r["node"]))
        return rows


# --------------------------------------------------------------------------- terminal display
