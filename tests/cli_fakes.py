"""A fake engine for CliRunner tests of the cluster commands (same methods as styx.app.session), + fixtures."""

from __future__ import annotations

import copy
import os
import stat
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation import events as ev

from styx.app.session import OpResult, StackInfo, StackNotFound, UpdateInfo

FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKEKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n"


# --------------------------------------------------------------------------- events


def urn(stack: str, typ: str, name: str) -> str:
    return f"urn:pulumi:{stack}::styx::{typ}::{name}"


NODE_T = "styx:index:Cluster$styx:index:Node"
REMOTE_T = f"{NODE_T}$command:remote:Command"
SANDBOX_T = f"{NODE_T}$command:local:Command"
CLUSTER_LOCAL_T = "styx:index:Cluster$command:local:Command"


def _md(u: str, op: str) -> ev.StepEventMetadata:
    return ev.StepEventMetadata(op=ev.OpType(op), urn=u, type=u.split("::")[2].rsplit("$", 1)[-1], provider="",
                                old=None, new=None)


def pre(u: str, op: str = "create") -> ev.EngineEvent:
    return ev.EngineEvent(0, 0, resource_pre_event=ev.ResourcePreEvent(_md(u, op)))


def outs(u: str, op: str = "create") -> ev.EngineEvent:
    return ev.EngineEvent(0, 0, res_outputs_event=ev.ResOutputsEvent(_md(u, op)))


def failed(u: str, op: str = "create") -> ev.EngineEvent:
    return ev.EngineEvent(0, 0, res_op_failed_event=ev.ResOpFailedEvent(_md(u, op), 1, 1))


def diag(u: str | None, message: str, severity: str = "info") -> ev.EngineEvent:
    return ev.EngineEvent(0, 0, diagnostic_event=ev.DiagnosticEvent(message=message, color="never",
                                                                   severity=severity, urn=u))


def summary(changes: dict[str, int]) -> ev.EngineEvent:
    return ev.EngineEvent(0, 0, summary_event=ev.SummaryEvent(maybe_corrupt=False, duration_seconds=1,
                                                              resource_changes={ev.OpType(k): v for k, v in
                                                                                changes.items()},
                                                              policy_packs={}))


def node_list(cluster: dict[str, Any]) -> list[tuple[str, str]]:
    from styx.model.config import parse_cluster

    return [(n, r) for n, r, _s, _i in parse_cluster(cluster).nodes()]


def phases_of(cluster: dict[str, Any]) -> list[str]:
    ph = ["wait_ssh"]
    setup = cluster.get("setup") or {}
    if setup.get("packages"):
        ph.append("system_packages")
    ph += [f"custom-{c['name']}" for c in setup.get("custom_scripts") or []]
    if (setup.get("ray") or {}).get("enabled", True):
        ph.append("ray")
    return ph


# --------------------------------------------------------------------------- fake stack + engine

UpFn = Callable[["FakeStack", Callable[[Any], None] | None], OpResult]


def default_up(st: FakeStack, on_event) -> OpResult:
    """Every node comes up: sandbox, then each phase (unchanged when already done)."""
    c = st._cluster
    name = c["name"]
    events: list[Any] = []
    changes = {"create": 0, "same": 0}
    zone = c.get("zone") or ((c.get("local") or {}).get("zones") or ["local-a"])[0]
    nodes = []
    results: dict[str, dict[str, str]] = {}
    for i, (n, role) in enumerate(node_list(c)):
        for suffix, typ in [("sandbox", SANDBOX_T)] + [(p, REMOTE_T) for p in phases_of(c)]:
            u = urn(st.name, typ, f"{name}-{n}-{suffix}")
            key = (n, suffix, zone)
            op = "same" if key in st.done else "create"
            st.done.add(key)
            changes[op] += 1
            events += [pre(u, op), diag(u, f"{suffix} output line") if op == "create" else None, outs(u, op)]
        ip = f"10.78.0.{2 + i}"
        nodes.append({"name": n, "role": role, "host": ip, "private_ip": ip, "zone": zone,
                      "instance_type": "sandbox", "host_key": f"ssh-ed25519 AAAAFAKE{i}",
                      "host_key_source": "generated"})
        results[n] = {p: f"styx {p}: ok: done" for p in phases_of(c)}
    events.append(summary({k: v for k, v in changes.items() if v}))
    for e in events:
        if e is not None and on_event:
            on_event(e)
    st._outputs = {"head_ip": nodes[0]["host"], "nodes": nodes, "ssh_user": "root", "ssh_private_key": FAKE_KEY,
                   "ray_address": f"{nodes[0]['host']}:6379", "phase_results": results,
                   "dashboard": "ssh -i <key file> ..."}
    return OpResult(True, changes={k: v for k, v in changes.items() if v})


def capacity_in(zones: set[str]) -> UpFn:
    """An up that fails on the head's sandbox with InsufficientCapacity when the cluster's zone is in `zones`."""

    def up(st: FakeStack, on_event) -> OpResult:
        c = st._cluster
        zone = c.get("zone") or ((c.get("local") or {}).get("zones") or ["local-a"])[0]
        if zone not in zones:
            return default_up(st, on_event)
        u = urn(st.name, SANDBOX_T, f"{c['name']}-head-sandbox")
        msg = f"error: InsufficientCapacity: zone {zone} has no capacity for head"
        for e in (pre(u), diag(u, f"sandbox node-up ERROR {msg}", "info#err"), diag(u, msg, "error"), failed(u)):
            if on_event:
                on_event(e)
        return OpResult(False, error=f"error: update failed\n{msg}")

    return up


class FakeStack:
    def __init__(self, engine: FakeEngine, name: str):
        self.engine = engine
        self.name = name
        self._cluster: dict[str, Any] | None = None
        self._meta: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        self.history: list[UpdateInfo] = []
        self.pending: list[dict[str, Any]] = []
        self.lock_list: list[dict[str, Any]] = []
        self.done: set[tuple] = set()
        self.ups: list[dict[str, Any]] = []  # the cluster config of every up
        self.interrupted = 0
        self.program_bound = False

    # config + meta
    def cluster(self):
        return copy.deepcopy(self._cluster)

    def set_cluster(self, cluster):
        self._cluster = copy.deepcopy(cluster)

    def meta(self):
        return copy.deepcopy(self._meta)

    def set_meta(self, key, value):
        self._meta[key] = copy.deepcopy(value)

    def base_dir(self):
        return Path(self._meta.get("styx:base_dir", "."))

    def bind_program(self, base_dir=None, *, ray_workers_after_head=False):
        self.program_bound = True
        self.ray_workers_after_head = ray_workers_after_head

    def outputs(self):
        return copy.deepcopy(self._outputs)

    def last_update(self):
        return self.history[-1] if self.history else None

    def interrupt(self):
        self.interrupted += 1
        return True

    def _record(self, kind: str, res: OpResult):
        t = self.engine.clock()
        self.history.append(UpdateInfo(kind, "succeeded" if res.ok else "failed", t - timedelta(seconds=5), t,
                                       res.changes))

    def up(self, on_event=None, on_output=None):
        self.ups.append(copy.deepcopy(self._cluster))
        fn = self.engine.up_fns.pop(0) if self.engine.up_fns else self.engine.default_up
        res = fn(self, on_event)
        self._record("update", res)
        return res

    def preview(self, on_event=None, diff=False, policy_packs=None):
        c = self._cluster
        for i, (n, _r) in enumerate(node_list(c)):
            for p in ["sandbox", *phases_of(c)]:
                typ = SANDBOX_T if p == "sandbox" else REMOTE_T
                op = "same" if i == 0 and p != phases_of(c)[-1] else ("replace" if i == 0 else "create")
                if on_event:
                    on_event(pre(urn(self.name, typ, f"{c['name']}-{n}-{p}"), op))
        if on_event:
            on_event(pre(urn(self.name, CLUSTER_LOCAL_T, f"{c['name']}-network"), "same"))
        return OpResult(True, changes={"same": 3, "replace": 1, "create": 4},
                        stdout="  ~ command:remote:Command demo-head-ray replace [diff: ~triggers]" if diff else "")

    def destroy(self, on_event=None):
        res = self.engine.destroy_result or OpResult(True, changes={"delete": 5})
        if res.ok:
            self._outputs = {}
            self.done.clear()
        self._record("destroy", res)
        return res

    def remove(self):
        self.engine.stacks.pop(self.name, None)

    def pending_operations(self):
        return list(self.pending)

    def locks(self):
        return list(self.lock_list)

    def unlock(self):
        self.lock_list = []

    def clear_pending_operations(self):
        n = len(self.pending)
        self.pending = []
        return n


class FakeEngine:
    def __init__(self):
        self.backend_url = "file:///fake/state"
        self.stacks: dict[str, FakeStack] = {}
        self.up_fns: list[UpFn] = []
        self.default_up: UpFn = default_up
        self.destroy_result: OpResult | None = None
        self.now = datetime.now(UTC).replace(microsecond=0)

    def clock(self):
        return self.now

    def list_stacks(self):
        return [StackInfo(n, self.now, False, 3) for n in sorted(self.stacks)]

    def exists(self, name):
        return name in self.stacks

    def open(self, name):
        if name not in self.stacks:
            raise StackNotFound(name)
        return self.stacks[name]

    def find(self, name):
        return self.stacks.get(name)

    def create_or_select(self, name, cluster, base_dir, reuse=None):
        st = self.stacks.get(name) or FakeStack(self, name)
        self.stacks[name] = st
        st.set_cluster(cluster)
        st.set_meta("styx:base_dir", str(base_dir))
        return st


@pytest.fixture
def fake_engine(monkeypatch, tmp_path):
    from styx.app import project

    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fe = FakeEngine()
    monkeypatch.setattr(project, "engine_factory", lambda backend: fe)
    return fe


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    """An `ssh` on PATH that checks the key file is 0600, logs its argv, and runs the command locally."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "ssh.log"
    script = bindir / "ssh"
    script.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        printf '%s\\n' "$*" >> {log}
        key=""
        prev=""
        for a in "$@"; do
          if [ "$prev" = "-i" ]; then key="$a"; fi
          prev="$a"
        done
        mode=$(stat -c %a "$key" 2>/dev/null || echo missing)
        echo "KEYMODE $mode $key" >> {log}
        if [ -f "$key" ]; then cat "$key" >> {log}.keys; fi
        last="${{@: -1}}"
        target="${{@: -2:1}}"
        export FAKE_HOST="${{target#*@}}"  # the node's address, so a command can tell the nodes apart
        case "$last" in *@*) echo "interactive" ; exit 0 ;; esac
        bash -c "$last"
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


def local_cluster(name: str = "demo", workers: int = 1, **extra) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "cloud": "local",
        "workers": [{"name": "worker", "count": workers}] if workers else [],
        "local": {"subnet": "10.78.0.0/24", "zones": ["zone-a", "zone-b"]},
        "setup": {"ray": {"enabled": False}, "custom_scripts": [{"name": "hello", "inline": "echo hi"}]},
    }
    c.update(extra)
    return c


@pytest.fixture
def cluster_file(tmp_path):
    import yaml

    def make(cluster: dict[str, Any] | None = None, *, stack_file: str | None = None) -> Path:
        c = cluster or local_cluster()
        if stack_file:
            p = tmp_path / f"Pulumi.{stack_file}.yaml"
            p.write_text(yaml.safe_dump({"config": {"styx:cluster": c}}))
        else:
            p = tmp_path / f"{c.get('name', 'cluster')}.yaml"
            p.write_text(yaml.safe_dump(c))
        return p

    return make
