"""Run the styx program under Pulumi mocks and record what it registers (shared by tests and bench)."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))



@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    opts: Any = None
    raw: dict[str, Any] | None = None  # the inputs as the engine gets them (secrets still wrapped)


@dataclass
class Recorder:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, name: str) -> Registered:
        hits = [r for r in self.resources if r.name == name]
        assert hits, f"no resource named {name}; have {[r.name for r in self.resources]}"
        return hits[0]


SECRET_SIG = "4dabf18193072939515e22adb298388d"


def is_secret_input(v: Any) -> bool:
    """Whether a raw mock input value is a secret (wrapped in the secret signature)."""
    return isinstance(v, dict) and SECRET_SIG in v


def unwrap(v: Any) -> Any:
    """Mock inputs carry secrets as {sig: ..., value: v}; tests look at the values."""
    if isinstance(v, dict):
        if SECRET_SIG in v and "value" in v:
            return unwrap(v["value"])
        return {k: unwrap(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unwrap(x) for x in v]
    return v


def make_mocks(rec: Recorder):
    import pulumi

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            inputs = unwrap(dict(args.inputs))
            rec.resources.append(Registered(args.typ, args.name, inputs, raw=dict(args.inputs)))
            outs = dict(args.inputs)
            if args.typ in ("command:remote:Command", "command:local:Command"):
                create = str(args.inputs.get("create", ""))
                if "ssh-keygen" in create:
                    outs["stdout"] = ("-----BEGIN OPENSSH PRIVATE KEY-----\nMOCK\n-----END OPENSSH PRIVATE KEY-----\n"
                                      "ssh-ed25519 AAAAMOCK styx")
                elif "ssh-keyscan" in create:
                    outs["stdout"] = "# scanned\nhost ecdsa-sha2-nistp256 AAAAECDSA\nhost ssh-ed25519 AAAASCANNED\n"
                else:
                    outs["stdout"] = f"styx {args.name}: ok: mocked"
                outs["stderr"] = ""
            if args.typ == "pulumi:index:Stash":
                outs["output"] = outs.get("input")
            return [args.name + "_id", outs]

        def call(self, args: pulumi.runtime.MockCallArgs):
            return {}

    return Mocks()


def env_of(stdin: str, phase: str) -> dict[str, str]:
    """The parameters of a phase's program (its create part's export line)."""
    from styx.components.runner import parse_program

    env, _script = parse_program(stdin)
    assert env.get("STYX_PHASE") == phase, env.get("STYX_PHASE")
    return env


def run_program(cluster: dict[str, Any], base_dir: Path | None = None, *, preview: bool = False,
                extra_config: dict[str, str] | None = None, **build: Any) -> Recorder:
    """Evaluate the styx program once under mocks (`build`: keywords of `program.build`); return what was
    registered and exported."""
    import pulumi
    from pulumi.runtime import settings

    rec = Recorder()
    # a fresh event loop + mocks per run so tests are independent
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(make_mocks(rec), project="styx", stack="test", preview=preview)
    pulumi.runtime.set_all_config({"styx:cluster": json.dumps(cluster), **(extra_config or {})})
    exported: dict[str, Any] = {}
    orig_export = pulumi.export

    def capture(name, value):
        exported[name] = value
        orig_export(name, value)

    from styx.components import cluster as cluster_mod
    from styx.components import program

    pulumi.export = capture  # type: ignore[assignment]
    cluster_mod.pulumi.export = capture  # type: ignore[attr-defined]
    try:
        try:
            program.build(pulumi.Config("styx"), base_dir or ROOT, **build)
        except pulumi.RunError:
            _drain(asyncio.get_event_loop())  # nothing of this run may be left pending for the next one
            raise
        loop = asyncio.get_event_loop()
        rec.outputs = {k: _resolve(loop, v) for k, v in exported.items()}
        loop.run_until_complete(settings._get_rpc_manager().rpcs[-1] if False else asyncio.sleep(0))
        _drain(loop)
    finally:
        pulumi.export = orig_export  # type: ignore[assignment]
        cluster_mod.pulumi.export = orig_export  # type: ignore[attr-defined]
    return rec


def _drain(loop) -> None:
    from pulumi.runtime import settings

    async def wait_all():
        while True:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    loop.run_until_complete(wait_all())
    settings.reset_options  # noqa: B018 - keep the import used


def _resolve(loop, value):
    import pulumi

    if isinstance(value, pulumi.Output):
        async def get():
            return await value.future(), await value.is_secret()

        v, secret = loop.run_until_complete(get())
        return Secret(v) if secret else v
    return value


@dataclass
class Secret:
    value: Any


def local_cluster(**overrides) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "demo",
        "cloud": "local",
        "workers": [{"name": "worker", "count": 2}],
        "setup": {
            "packages": ["jq"],
            "env": {"GREETING": "hello"},
            "secret_env": {"API_TOKEN": "s3cr3t-token"},
            "custom_scripts": [{"name": "hello", "inline": "echo hi > /tmp/hello"}],
        },
    }
    base.update(overrides)
    return base


def local_with_python(**python) -> dict[str, Any]:
    """local_cluster() with `setup.python` set to `python`."""
    c = local_cluster()
    c["setup"] = {**copy.deepcopy(c["setup"]), "python": python}
    return c


def phase_exports(rec: Recorder, node: str, phase: str = "python_env", cluster: str = "demo") -> str:
    """A phase's parameters: the `export K=V ...` line of its stdin (the script follows it)."""
    stdin = rec.named(f"{cluster}-{node}-{phase}").inputs["stdin"]
    return next(ln for ln in stdin.splitlines() if ln.startswith("export "))


def spy_commands(monkeypatch) -> dict[str, dict]:
    """Every remote.Command the program makes from now on, by name: the keyword arguments it was
    given (the program still gets the real resource)."""
    import styx.components.transport as transport

    calls: dict[str, dict] = {}
    real = transport.remote.Command

    def spy(name, **kw):
        calls[name] = kw
        return real(name, **kw)

    monkeypatch.setattr(transport.remote, "Command", spy)
    return calls


def phase_triggers(cluster: dict[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """Each remote phase command's triggers, by name, for one run of the program under mocks."""
    rec = run_program(cluster, base_dir)
    return {r.name: r.inputs["triggers"] for r in rec.of_type("command:remote:Command")}


def changed_by_new_tarball(cluster_of, tmp_path: Path) -> set[str]:
    """The phase commands whose triggers change when the image tarball `img.tar` (in tmp_path) gets
    new content; `cluster_of(tarball)` builds the config that points at it."""
    (tmp_path / "img.tar").write_bytes(b"one")
    before = phase_triggers(cluster_of("img.tar"), tmp_path)
    (tmp_path / "img.tar").write_bytes(b"two")
    after = phase_triggers(cluster_of("img.tar"), tmp_path)
    return {n for n in before if before[n] != after[n]}
