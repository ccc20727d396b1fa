"""The engine facade the `styx` CLI is written against: stacks, config, outputs, up/preview/destroy.

`Engine` (list/open stacks on one backend) and `StackSession` (one stack) wrap the Pulumi Automation
API (`styx.app.engine`) and return plain Python data, so the CLI can be tested against a fake with the
same methods (tests/styx/app/cli/fakes.py). Nothing here prints.

Ctrl-C: every pulumi CLI call runs in its own session (not in the terminal's process group), and
`interrupt()` forwards exactly one SIGINT per Ctrl-C to it. The first asks the engine to cancel:
running steps finish, the state is saved, `up` returns `cancelled`. The second stops it at once.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from styx.app import engine as eng

# Stack config keys styx writes next to `styx:cluster` (read back by status and cost-report).
META_KEYS = ("styx:launched_at", "styx:pricing", "styx:base_dir", "styx:placement", "styx:power")
CANCEL_MARKERS = ("update canceled", "canceled", "cancelled", "interrupt")


class StackNotFound(LookupError):
    pass


@dataclass
class StackInfo:
    name: str
    last_update: datetime | None = None
    update_in_progress: bool = False
    resource_count: int | None = None


@dataclass
class UpdateInfo:
    kind: str
    result: str
    start: datetime | None
    end: datetime | None
    resource_changes: dict[str, int] = field(default_factory=dict)


@dataclass
class OpResult:
    """The outcome of up / destroy / preview. `error` holds the engine's message when not ok."""

    ok: bool
    changes: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    cancelled: bool = False
    stdout: str = ""
    stderr: str = ""


OnEvent = Callable[[Any], None]


# --------------------------------------------------------------------------- Ctrl-C aware pulumi CLI


class _Runner:
    """A PulumiCommand replacement: same `run`, but the child lives in its own session and is tracked."""

    def __init__(self, base: Any):
        self.command = base.command
        self.version = base.version
        self.proc: subprocess.Popen | None = None
        self.interrupts = 0
        self._lock = threading.Lock()

    def interrupt(self) -> bool:
        """Forward one SIGINT to the running pulumi process. False when none is running."""
        with self._lock:
            p = self.proc
        if p is None or p.poll() is not None:
            return False
        self.interrupts += 1
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGINT)
        return True

    def run(self, args, cwd, additional_env, on_output=None, on_error=None):
        from pulumi.automation._cmd import CommandResult, _fixup_path
        from pulumi.automation.errors import create_command_error

        sep = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:sep]:
            args.insert(0, "--non-interactive")
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        if os.path.isabs(self.command):
            env = _fixup_path(env, os.path.dirname(self.command))
        out: list[str] = []
        err: list[str] = []

        def consume(stream, cb, chunks):
            for line in iter(stream.readline, ""):
                s = line.rstrip()
                if cb:
                    cb(s)
                chunks.append(s)
            stream.close()

        with subprocess.Popen([self.command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                              env=env, encoding="utf-8", errors="replace", start_new_session=True) as p:
            with self._lock:
                self.proc = p
            try:
                threads = [threading.Thread(target=consume, args=(p.stdout, on_output, out), daemon=True),
                           threading.Thread(target=consume, args=(p.stderr, on_error, err), daemon=True)]
                for t in threads:
                    t.start()
                for t in threads:
                    while t.is_alive():
                        t.join(0.2)
                p.wait()
            finally:
                with self._lock:
                    self.proc = None
        result = CommandResult(stdout="\n".join(out), stderr="\n".join(err), code=p.returncode)
        if p.returncode != 0:
            err = create_command_error(result)
            err.result = result  # type: ignore[attr-defined]  # stdout/stderr for styx's messages
            raise err
        return result


# --------------------------------------------------------------------------- engine + stack


def _backend_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:10]


class Engine:
    """Stacks of the `styx` project on one Pulumi backend."""

    def __init__(self, backend_url: str | None = None, *, extra_env: dict[str, str] | None = None,
                 project: str = eng.PROJECT):
        self.backend_url = backend_url or eng.default_backend_url()
        self.project = project  # the Pulumi project of its stacks: styx's clusters, or styx.app.images'
        self.extra_env = dict(extra_env or {})
        self._passphrase: eng.Passphrase | None = None

    # -- shared pieces
    @property
    def passphrase(self) -> eng.Passphrase:
        if self._passphrase is None:
            self._passphrase = eng.ensure_passphrase()
            if self._passphrase.created:  # the one thing this module says: where the new secret lives
                sys.stderr.write(f"styx: generated a secrets passphrase in {self._passphrase.source} (mode 0600); "
                                 "keep it: it decrypts this machine's stack secrets "
                                 "(or set PULUMI_CONFIG_PASSPHRASE)\n")
        return self._passphrase

    def work_dir(self, stack: str) -> Path:
        base = eng.styx_home() / "workspaces"
        if self.backend_url != f"file://{eng.styx_home() / 'state'}":
            base = base / _backend_key(self.backend_url)
        if self.project != eng.PROJECT:
            base = base / self.project
        return base / stack

    def _workspace(self, stack: str | None, program=None):
        from pulumi import automation as auto

        eng.check_toolchain()
        if self.backend_url.startswith("file://"):
            Path(self.backend_url[len("file://"):]).mkdir(parents=True, exist_ok=True)
        wd = self.work_dir(stack or "_list")
        wd.mkdir(parents=True, exist_ok=True)
        # STYX_BACKEND_URL as styx.app.engine.open_stack sets it: an update may run from this workspace
        env = {**eng.engine_env(self.passphrase.value), "STYX_BACKEND_URL": self.backend_url, **self.extra_env}
        return auto.LocalWorkspace(
            work_dir=str(wd),
            pulumi_home=env["PULUMI_HOME"],
            pulumi_command=eng.pulumi_command(),
            env_vars=env,
            project_settings=auto.ProjectSettings(
                name=self.project, runtime="python", backend=auto.ProjectBackend(url=self.backend_url)
            ),
            secrets_provider="passphrase",
            program=program,
        )

    # -- API used by the CLI
    def list_stacks(self) -> list[StackInfo]:
        ws = self._workspace(None)
        out = []
        for s in ws.list_stacks():
            out.append(StackInfo(s.name, _aware(s.last_update), bool(s.update_in_progress), s.resource_count))
        return sorted(out, key=lambda s: s.name)

    def exists(self, name: str) -> bool:
        return any(s.name == name for s in self.list_stacks())

    def open(self, name: str) -> StackSession:
        """An existing stack (read it, destroy it, re-run it with its stored config)."""
        from pulumi import automation as auto

        ws = self._workspace(name, program=None)
        try:
            stack = auto.Stack.select(name, ws)
        except auto.StackNotFoundError:
            raise StackNotFound(name) from None
        return StackSession(self, stack)

    def find(self, name: str) -> StackSession | None:
        """`open(name)`, or None when there is no such stack: one `pulumi stack select` where `exists`
        and `open` are two CLI calls (a work dir made only for the look-up is removed again)."""
        wd = self.work_dir(name)
        fresh = not wd.exists()
        try:
            return self.open(name)
        except StackNotFound:
            if fresh:
                import shutil

                shutil.rmtree(wd, ignore_errors=True)
            return None

    def create_or_select(self, name: str, cluster: dict[str, Any], base_dir: Path,
                         reuse: StackSession | None = None) -> StackSession:
        """Create or select `name` and write `styx:cluster` (via styx.app.engine.open_stack). `reuse`: a
        session of this engine on that stack, opened just before: it is configured instead (the same
        program, config and settings, without a second `stack select` and config read)."""
        if reuse is not None and reuse.engine is self and reuse.name == name:
            reuse.configure(cluster, base_dir)
            return reuse
        _ = self.passphrase
        stack = eng.open_stack(name, cluster, base_dir=base_dir, work_dir=self.work_dir(name),
                               backend_url=self.backend_url, extra_env=self.extra_env or None)
        s = StackSession(self, stack)
        s.set_meta("styx:base_dir", str(base_dir))
        return s


class StackSession:
    """One stack. Every method is one or a few pulumi CLI calls."""

    def __init__(self, engine: Engine, stack: Any):
        self.engine = engine
        self.stack = stack
        self.name: str = stack.name
        self.runner = _Runner(stack.workspace.pulumi_command)
        stack.workspace.pulumi_command = self.runner
        self._config_cache: dict[str, str] | None = None
        self._config_local = False
        self._cluster_stale = False  # styx:cluster written since the config was read (see _cluster_written)
        # the state's outputs and export, read once per session and dropped by whatever changes the
        # state through this session (an update, refresh, destroy, import, removal): a `styx launch`
        # reads them several times (5 s of pulumi CLI calls on a 16-node no-op before this cache)
        self._state_cache: dict[str, Any] = {}
        # extra options of the next `up` (`replace`/`target` URNs: styx repair, a machine gone outside Pulumi)
        self.up_options: dict[str, list[str]] = {}

    # -- config + metadata
    def cluster(self) -> dict[str, Any] | None:
        """`styx:cluster` with its secrets decrypted; None when this machine cannot read it (no stack
        settings here and the backend's record of the last update masks it as "[secret]": callers fall
        back to the stack's outputs and the defaults)."""
        if self._cluster_stale:
            self._config_cache, self._cluster_stale = None, False
        cfg = self._config()
        raw = cfg.get("styx:cluster")
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def _config(self) -> dict[str, str]:
        if self._config_cache is None:
            self._config_cache = self._read_config()
        return self._config_cache

    def _read_config(self) -> dict[str, str]:
        try:
            allc = self.stack.get_all_config()
        except Exception:
            allc = {}
        vals = {k: v.value for k, v in allc.items()}
        self._config_local = "styx:cluster" in vals  # the stack's settings here (not the last update's)
        if "styx:cluster" not in vals:  # a shared backend used from another machine: the last update's config
            info = self._last_summary()
            if info is not None:
                vals = {k: v.value for k, v in (info.config or {}).items()}
        return vals

    def set_cluster(self, cluster: dict[str, Any]) -> None:
        eng.set_cluster_config(self.stack, cluster)
        self._cluster_written()

    def _cluster_written(self) -> None:
        """`styx:cluster` was just written: the next cluster() reads the config again (its secrets come
        back as Pulumi decrypts them); the other keys, read before and not written, stay cached."""
        if self._config_cache is not None and self._config_local:
            self._config_cache.pop("styx:cluster", None)
            self._cluster_stale = True
        else:
            self._config_cache = None

    def configure(self, cluster: dict[str, Any], base_dir: Path) -> None:
        """Make this session (from `Engine.open`) the one an update of `cluster` runs from, as
        `Engine.create_or_select` would: styx's program bound, `styx:cluster` written, the base dir kept."""
        self.bind_program(base_dir)
        self.set_cluster(cluster)
        self.set_meta("styx:base_dir", str(base_dir))

    def meta(self) -> dict[str, Any]:
        vals = self._config()
        out: dict[str, Any] = {}
        for k in META_KEYS:
            if k in vals:
                try:
                    out[k] = json.loads(vals[k])
                except (TypeError, ValueError):
                    out[k] = vals[k]
        return out

    def set_meta(self, key: str, value: Any) -> None:
        from pulumi import automation as auto

        text = json.dumps(value)
        if self._config_cache is not None and self._config_local and self._config_cache.get(key) == text:
            return  # already so: a no-op `launch` writes no config
        self.stack.set_config(key, auto.ConfigValue(value=text))
        if self._config_cache is not None:
            self._config_cache[key] = text

    def base_dir(self) -> Path:
        v = self.meta().get("styx:base_dir")
        return Path(v) if v else eng.REPO

    def bind_program(self, base_dir: Path | None = None, *, ray_workers_after_head: bool = False) -> None:
        """Give the workspace styx's inline program (for up/preview on a stack opened with `open`);
        `ray_workers_after_head`: see `styx.components.program.define`."""
        import pulumi

        from styx.components.program import build

        bd = base_dir or self.base_dir()

        def program() -> None:
            build(pulumi.Config("styx"), bd, ray_workers_after_head=ray_workers_after_head)

        self.stack.workspace.program = program

    # -- outputs + history
    def outputs(self) -> dict[str, Any]:
        """The stack's outputs, secrets in plain text: read from the state export (one CLI call, shared
        with deployment(); the Automation API's `outputs()` is two), as `pulumi stack output --json
        --show-secrets` prints them."""
        if "outputs" not in self._state_cache and "update_outputs" in self._state_cache:
            with contextlib.suppress(_StillEncrypted):  # a secret among them: the export has it in plain text
                self._state_cache["outputs"] = _plain(self._state_cache["update_outputs"])
        if "outputs" not in self._state_cache:
            outs = stack_outputs(self._export_view().deployment)
            if outs is None:  # a secret the export left encrypted: the CLI's own reading
                outs = {k: v.value for k, v in self.stack.outputs().items()}
            self._state_cache["outputs"] = outs
        return copy.deepcopy(self._state_cache["outputs"])

    def public_outputs(self) -> dict[str, Any]:
        """The outputs without those Pulumi keeps secret (what `launch` returns), read without decrypting:
        right after an update through this session from its events (no CLI call), else from the state
        without secrets (_public_view); a secret nested in a public output is read from the export."""
        upd = self._state_cache.get("update_outputs")
        if upd is not None:
            with contextlib.suppress(_StillEncrypted):
                return {k: _plain(v) for k, v in copy.deepcopy(upd).items() if not _is_secret(v)}
        else:
            with contextlib.suppress(_StillEncrypted):
                return _public_of_root(self._public_view().deployment)
        return _public_of_root(self._export_view().deployment)

    def _export_view(self) -> Any:
        """`pulumi stack export --show-secrets`, this session's one read (not a copy: never edit it)."""
        if "export" not in self._state_cache:
            self._state_cache["export"] = self.stack.export_stack()
        return self._state_cache["export"]

    def _public_view(self) -> Any:
        """The state for reading its structure: the export with secrets when this session has read it,
        else `pulumi stack export` without --show-secrets (the passphrase's key is not derived: ~0.35 CPU s
        less on a 16-node state, bench/README.md §12). Not a copy: never edit it."""
        if "export" in self._state_cache:
            return self._state_cache["export"]
        return self._public_export()

    def _public_export(self) -> Any:
        """`pulumi stack export` without --show-secrets: every secret in its encrypted envelope (not a copy)."""
        if "export_public" not in self._state_cache:
            ws = self.stack.workspace
            res = ws._run_pulumi_cmd_sync(["stack", "export", "--stack", self.name])
            state = json.loads(res.stdout)
            self._state_cache["export_public"] = SimpleNamespace(version=state.get("version"),
                                                                 deployment=state.get("deployment"))
        return self._state_cache["export_public"]

    def public_deployment(self) -> dict[str, Any]:
        """The state for reading its structure (resources, URNs, phase commands, pending operations),
        secrets encrypted (a copy). What is edited and imported back comes from deployment()."""
        try:
            return copy.deepcopy(self._public_view().deployment or {})
        except Exception:  # no state yet
            return {}

    def _export(self) -> Any:
        """A copy of the state export (callers edit it)."""
        return copy.deepcopy(self._export_view())

    def _state_changed(self) -> None:
        self._state_cache.clear()

    def _last_summary(self):
        try:
            return self.stack.info(show_secrets=False)
        except Exception:
            return None

    def last_update(self) -> UpdateInfo | None:
        s = self._last_summary()
        if s is None:
            return None
        return UpdateInfo(str(s.kind), str(s.result), _aware(s.start_time), _aware(s.end_time),
                          {str(getattr(k, "value", k)): v for k, v in (s.resource_changes or {}).items()})

    # -- operations
    def interrupt(self) -> bool:
        return self.runner.interrupt()

    def up(self, on_event: OnEvent | None = None, on_output: Callable[[str], None] | None = None) -> OpResult:
        opts = {k: v for k, v in self.up_options.items() if v}
        return self._op(lambda ev: self.stack.up(on_event=ev, on_output=on_output or _drop, color="never",
                                                 suppress_progress=True, parallel=eng.PARALLEL, show_secrets=False,
                                                 **opts), "up", on_event)

    def refresh(self, target: list[str] | None = None) -> OpResult:
        """`pulumi refresh` (of `target` only): the providers read their resources back."""
        return self._op(lambda ev: self.stack.refresh(target=target, color="never", on_output=_drop, on_event=ev,
                                                      suppress_progress=True, parallel=eng.PARALLEL,
                                                      show_secrets=False), "refresh")

    def deployment(self) -> dict[str, Any]:
        """The state, secrets decrypted (`pulumi stack export --show-secrets`: on a pipe, never printed)."""
        try:
            return self._export().deployment or {}
        except Exception:  # no state yet
            return {}

    def preview(self, on_event: OnEvent | None = None, diff: bool = False,
                policy_packs: list[str] | None = None) -> OpResult:
        return self._op(lambda ev: self.stack.preview(on_event=ev, diff=diff, color="never",
                                                      on_output=_drop, suppress_progress=True,
                                                      policy_packs=policy_packs or None), "preview", on_event)

    def destroy(self, on_event: OnEvent | None = None) -> OpResult:
        return self._op(lambda ev: self.stack.destroy(on_event=ev, color="never", on_output=_drop,
                                                      suppress_progress=True, parallel=eng.PARALLEL,
                                                      show_secrets=False), "destroy", on_event)

    def _op(self, fn, kind: str, on_event: OnEvent | None = None) -> OpResult:
        """Run `fn(on_event)` (an update, refresh or destroy of the Automation API) with its closing reads
        taken from the update's own events (UpdateEvents): no `stack output` x2 / `stack history` after it."""
        from pulumi import automation as auto

        self.runner.interrupts = 0
        self._state_changed()
        events = UpdateEvents(on_event)
        try:
            with events.reads_of(self.stack):
                r = fn(events.handle)
        except auto.CommandError as e:
            self._state_changed()
            text = _error_text(e)
            cancelled = self.runner.interrupts > 0
            res = getattr(e, "result", None)
            return OpResult(False, error=text, cancelled=cancelled, stdout=getattr(res, "stdout", "") or "",
                            stderr=getattr(res, "stderr", "") or "")
        self._state_changed()
        if kind == "preview":
            changes = _changes(r.change_summary)
        else:
            summary = events.summary or (None if r.summary is NOT_READ else r.summary) or self._last_summary()
            changes = _changes(getattr(summary, "resource_changes", None))
        if kind == "up" and events.outputs is not None:
            self._state_cache["update_outputs"] = events.outputs
        elif kind == "up" and isinstance(getattr(r, "outputs", None), dict) and r.outputs is not NOT_READ:
            self._state_cache["outputs"] = {k: getattr(v, "value", v) for k, v in r.outputs.items()}
        return OpResult(True, changes=changes, stdout=r.stdout or "", stderr=r.stderr or "",
                        cancelled=self.runner.interrupts > 0)

    def remove(self) -> None:
        import shutil

        self._state_changed()
        self.stack.workspace.remove_stack(self.name)
        shutil.rmtree(self.engine.work_dir(self.name), ignore_errors=True)

    # -- what an older styx left (its phases ran their scripts inline, in the command text)
    def outdated_phases(self) -> int:
        """Setup phases in the state written by a styx before programs went on stdin (0 when none)."""
        try:
            dep = self._public_view().deployment or {}
        except Exception:  # no state yet
            return 0
        return sum(1 for r in dep.get("resources") or []
                   if r.get("type") == "command:remote:Command" and "stdin" not in (r.get("inputs") or {}))

    def edit_state(self, edit: Callable[[dict[str, Any]], Any]) -> Any:
        """`edit(deployment)`, in place, on a copy of the state, imported back (`pulumi stack import`) when it
        returns something true; returns what it returned. The copy is the export without --show-secrets:
        the secrets stay in their encrypted envelopes, so the file the import reads holds none of them in
        plain text (the Automation API's import_stack would write the deployment it is given to a temp
        file, left behind when the import fails)."""
        dep = copy.deepcopy(self._public_export().deployment or {})
        done = edit(dep)
        if done:
            self._import(dep)
        return done

    def _import(self, deployment: dict[str, Any]) -> None:
        import shutil
        import tempfile

        self._state_changed()
        d = tempfile.mkdtemp(prefix="styx-import-")  # 0700
        try:
            path = os.path.join(d, "state.json")
            with open(path, "w") as f:
                json.dump({"version": 3, "deployment": deployment}, f)
            self.stack.workspace._run_pulumi_cmd_sync(["stack", "import", "--file", path, "--stack", self.name])
        finally:
            shutil.rmtree(d, ignore_errors=True)
            self._state_changed()

    # -- pending operations (left by a crash or a hard stop)
    def pending_operations(self) -> list[dict[str, Any]]:
        dep = self._public_view()
        return copy.deepcopy(list((dep.deployment or {}).get("pending_operations") or []))

    def clear_pending_operations(self) -> int:
        """Drop pending operations from the state (export, edit, import). Returns how many were dropped."""
        def clear(dep: dict[str, Any]) -> int:
            n = len(dep.get("pending_operations") or [])
            dep["pending_operations"] = []
            return n

        return self.edit_state(clear)

    # -- state locks (file backends; a killed `pulumi` leaves its lock behind)
    def locks(self) -> list[dict[str, Any]]:
        """Lock files of this stack on a file:// backend, each with `stale` (same host, process gone)."""
        import socket

        url = self.engine.backend_url
        if not url.startswith("file://"):
            return []
        root = Path(url[len("file://"):].split("?", 1)[0]) / ".pulumi" / "locks"
        out = []
        for f in sorted(root.rglob("*.json")) if root.is_dir() else []:
            if f.parent.name != self.name:
                continue
            try:
                info = json.loads(f.read_text())
            except (OSError, ValueError):
                info = {}
            pid = info.get("pid")
            same_host = info.get("hostname") == socket.gethostname()
            info.update(path=str(f), stale=bool(same_host and isinstance(pid, int) and not _pulumi_alive(pid)))
            out.append(info)
        return out

    def unlock(self) -> None:
        """`pulumi cancel`: on a file backend, deletes the stack's lock files."""
        self.stack.cancel()

    def ssh_target(self) -> dict[str, Any]:
        """Outputs with the private key (for styx ssh/exec); never printed by the CLI."""
        return self.outputs()


# how the engine's serialised state marks a secret: {SIG_KEY: SECRET_SIG, "plaintext": json} ("ciphertext"
# instead when the export was not asked to show secrets); styx.app.drift reads phases with the same key
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class _StillEncrypted(Exception):
    pass


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            if "plaintext" not in value:
                raise _StillEncrypted
            return _plain(json.loads(value["plaintext"]))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def _public_of_root(deployment: dict[str, Any] | None) -> dict[str, Any]:
    """The root stack's outputs in a state export, without the secret ones (_StillEncrypted: a secret
    nested in one of them is encrypted in this export)."""
    return {k: _plain(v) for k, v in copy.deepcopy(_root_outputs(deployment)).items() if not _is_secret(v)}


def _changes(op_map: Any) -> dict[str, int]:
    return {str(getattr(k, "value", k)): v for k, v in (op_map or {}).items()}


class _NotRead(dict):
    """What Stack.up()/refresh()/destroy() get for their closing reads under UpdateEvents.reads_of."""


NOT_READ = _NotRead()


class UpdateEvents:
    """An update's engine events, forwarded to `on_event`, with what its closing reads would say.

    The Automation API's `Stack.up()` ends with `pulumi stack output --json` twice (with and without
    --show-secrets) and `pulumi stack history`, refresh and destroy with the history: three and one CLI
    processes (0.3-1.1 s at the load of this machine, bench/README.md §9). The update's own events say
    the same: the summary event holds the resource changes that the history's last entry holds (as
    `Stack.preview()` reads them), and the root stack's outputs event holds its outputs (secrets in
    their encrypted envelope: outputs() then reads the export). `reads_of(stack)` makes those calls
    return NOT_READ while the update runs."""

    def __init__(self, on_event: OnEvent | None = None):
        self.on_event = on_event
        self.summary: Any = None
        self.outputs: dict[str, Any] | None = None

    def handle(self, ev: Any) -> None:
        if getattr(ev, "summary_event", None) is not None:
            self.summary = ev.summary_event
        out = getattr(ev, "res_outputs_event", None)
        md = getattr(out, "metadata", None)
        if md is not None and md.type == "pulumi:pulumi:Stack" and md.new is not None and not md.new.parent:
            self.outputs = dict(md.new.outputs or {})
        if self.on_event is not None:
            self.on_event(ev)

    @contextlib.contextmanager
    def reads_of(self, stack: Any) -> Iterator[None]:
        before = {k: vars(stack)[k] for k in ("outputs", "info") if k in vars(stack)}
        stack.outputs = lambda: NOT_READ
        stack.info = lambda show_secrets=True: NOT_READ
        try:
            yield
        finally:
            for k in ("outputs", "info"):
                if k in before:
                    setattr(stack, k, before[k])
                else:
                    delattr(stack, k)


def stack_outputs(deployment: dict[str, Any] | None) -> dict[str, Any] | None:
    """The root stack resource's outputs in a state export (`pulumi stack export --show-secrets`), secrets
    unwrapped: what `pulumi stack output --json --show-secrets` prints ({} before the first update).
    None when a secret in them is still encrypted."""
    try:
        return _plain(_root_outputs(deployment))
    except _StillEncrypted:
        return None


def _root_outputs(deployment: dict[str, Any] | None) -> dict[str, Any]:
    """The root stack resource's outputs in a state export, as stored ({} before the first update)."""
    root = next((r for r in (deployment or {}).get("resources") or []
                 if r.get("type") == "pulumi:pulumi:Stack" and not r.get("parent")), {})
    return root.get("outputs") or {}


def _pulumi_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "pulumi" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return True


def _drop(_line: str) -> None:
    return None


def _aware(dt: Any) -> datetime | None:
    if dt is None:
        return None
    if isinstance(dt, str):
        try:
            dt = datetime.fromisoformat(dt.replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _error_text(e: Exception) -> str:
    """The useful part of a failed pulumi command: its error lines, without the usage noise."""
    res = getattr(e, "result", None)
    stderr = getattr(res, "stderr", "") or ""
    stdout = getattr(res, "stdout", "") or ""
    if res is None:
        stderr = str(e)
    lines = [ln for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()]
    keep = [ln for ln in lines if "error" in ln.lower() or "Insufficient" in ln or "canceled" in ln.lower()]
    return "\n".join(keep[-20:] or lines[-20:]) or str(e)


@contextlib.contextmanager
def sigint_forwarding(session: Any, on_interrupt: Callable[[int, bool], None]) -> Iterator[dict[str, int]]:
    """While active, Ctrl-C is not a KeyboardInterrupt: it is forwarded to the running pulumi process.

    `on_interrupt(n, forwarded)` is called for each one (n counts from 1). The third Ctrl-C raises
    KeyboardInterrupt (the user really wants out). Yields a dict whose "count" is the number seen.
    """
    state = {"count": 0}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        state["count"] += 1
        if state["count"] >= 3:
            raise KeyboardInterrupt
        forwarded = session.interrupt()
        on_interrupt(state["count"], forwarded)

    prev = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, prev)


def now_utc() -> datetime:
    return datetime.now(UTC)
