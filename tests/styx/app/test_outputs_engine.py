"""The stack's outputs read from its state export (styx.app.session.stack_outputs) are what the Automation
API's `outputs()` (`pulumi stack output --json [--show-secrets]`) gives, through the real Pulumi CLI on
a temp file backend: plain values, numbers, booleans, null, lists, nested objects and secrets at any
depth (skipped when the toolchain is missing)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from styx.app import engine as eng
from styx.app.session import stack_outputs

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(not (eng.toolchain_bin() / "pulumi").exists(),
                                 reason=f"Pulumi CLI not installed at {eng.toolchain_bin()} "
                                        "(bash toolchain/install-pulumi.sh)")]


def test_outputs_from_the_export_equal_the_cli_outputs(tmp_path, monkeypatch):
    import pulumi
    from pulumi import automation as auto

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "outputs-test")

    def program() -> None:
        pulumi.export("ip", "10.0.0.2")
        pulumi.export("n", 3)
        pulumi.export("ratio", 0.5)
        pulumi.export("ok", True)
        pulumi.export("none", None)
        pulumi.export("key", pulumi.Output.secret("-----BEGIN KEY-----\nabc\n"))
        pulumi.export("nodes", {"head": {"ip": "10.0.0.2", "token": pulumi.Output.secret("t0k")},
                                "workers": [{"ip": "10.0.0.10"}, pulumi.Output.secret({"ip": "10.0.0.11"})]})

    (tmp_path / "ws").mkdir()
    (tmp_path / "state").mkdir()
    ws = auto.LocalWorkspace(
        work_dir=str(tmp_path / "ws"), pulumi_home=str(eng.pulumi_home()), pulumi_command=eng.pulumi_command(),
        env_vars={**eng.engine_env("outputs-test")}, secrets_provider="passphrase", program=program,
        project_settings=auto.ProjectSettings(name="styx-outputs-test", runtime="python",
                                              backend=auto.ProjectBackend(url=f"file://{tmp_path / 'state'}")))
    stack = auto.Stack.create("t", ws)
    assert stack_outputs(stack.export_stack().deployment) == {}  # no update yet
    stack.up(on_output=lambda _line: None)
    cli = {k: v.value for k, v in stack.outputs().items()}
    assert cli["nodes"]["head"]["token"] == "t0k"  # the CLI's reading shows the secrets
    assert stack_outputs(stack.export_stack().deployment) == cli


def _stack(tmp_path, program, name="t"):
    from pulumi import automation as auto

    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "state").mkdir(exist_ok=True)
    env = eng.engine_env("outputs-test")
    ws = auto.LocalWorkspace(
        work_dir=str(tmp_path / "ws"), pulumi_home=env["PULUMI_HOME"], pulumi_command=eng.pulumi_command(),
        env_vars=env, secrets_provider="passphrase", program=program,
        project_settings=auto.ProjectSettings(name="styx-outputs-test", runtime="python",
                                              backend=auto.ProjectBackend(url=f"file://{tmp_path / 'state'}")))
    return auto.Stack.create(name, ws)


def test_a_session_update_takes_its_summary_and_outputs_from_its_events(tmp_path, monkeypatch):
    """StackSession.up runs no `stack output` / `stack history` after `pulumi up`: its counts equal the
    history's, its public outputs the CLI's without the secret ones, its outputs (export) the CLI's."""
    import pulumi

    from styx.app.session import StackSession

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "outputs-test")
    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(eng.toolchain_bin()))  # before STYX_HOME moves
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx"))

    def program() -> None:
        pulumi.export("ip", "10.0.0.2")
        pulumi.export("nodes", [{"name": "head", "ip": "10.0.0.2"}, {"name": "w", "n": 1}])
        pulumi.export("key", pulumi.Output.secret("-----BEGIN KEY-----\nabc\n"))

    session = StackSession(object(), _stack(tmp_path, program))
    runs: list[str] = []
    run0 = session.runner.run

    def run(args, *a, **kw):
        runs.append(" ".join(w for w in args if not w.startswith("-"))[:40])
        return run0(args, *a, **kw)

    session.runner.run = run
    for _ in range(2):  # a create, then a no-op
        runs.clear()
        res = session.up()
        assert res.ok, res.error
        assert [r.split()[0] for r in runs] == ["up"], runs
        public = session.public_outputs()
        assert runs[1:] == []  # still no CLI call
        hist = session.stack.info(show_secrets=False)
        assert res.changes == {str(getattr(k, "value", k)): v for k, v in hist.resource_changes.items()}
        cli = {k: v.value for k, v in session.stack.outputs().items()}
        assert public == {k: v for k, v in cli.items() if k != "key"}
        assert session.outputs() == cli
    assert res.changes == {"same": 1}
    # a session that ran no update reads them from `pulumi stack export` without --show-secrets
    fresh = StackSession(object(), session.stack)
    args_seen: list[list[str]] = []
    run1 = fresh.runner.run
    fresh.runner.run = lambda args, *a, **kw: args_seen.append(list(args)) or run1(args, *a, **kw)
    assert fresh.public_outputs() == public
    assert fresh.pending_operations() == [] and fresh.outdated_phases() == 0
    assert len(args_seen) == 1 and "export" in args_seen[0] and "--show-secrets" not in args_seen[0]
    assert fresh.outputs() == cli and "--show-secrets" in args_seen[-1]


@pytest.mark.parametrize("mode", ["off", "on"])
def test_pulumi_automatic_log_follows_styx_pulumi_log(tmp_path, monkeypatch, mode):
    """STYX_PULUMI_LOG=off: a pulumi process styx starts writes nothing into $PULUMI_HOME/logs and works
    as before (the CLI goes on without its log); on: Pulumi writes its log there as it does alone."""
    import pulumi

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "outputs-test")
    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(eng.toolchain_bin()))  # before STYX_HOME moves
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx"))
    home = tmp_path / "pulumi-home"
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.setenv("STYX_PULUMI_LOG", mode)
    stack = _stack(tmp_path, lambda: pulumi.export("ip", "10.0.0.2"))
    res = stack.up(on_output=lambda _line: None)
    assert res.outputs["ip"].value == "10.0.0.2"
    logs = sorted(p.name for p in (home / "logs").iterdir()) if (home / "logs").is_dir() else []
    if mode == "off":
        assert logs == []
        assert (eng.process_pulumi_home() / "logs").is_file()
        assert (home / "workspaces").is_dir()  # what the CLI keeps in its home still lands there
    else:
        assert any(n.endswith("up.log") or "styx-outputs-test" in n for n in logs), logs


def test_an_edit_of_the_state_keeps_its_secrets_and_writes_none_in_plain_text(tmp_path, monkeypatch):
    """StackSession.edit_state (a gone machine's undos dropped, pending operations cleared) imports the
    export without --show-secrets: the file `pulumi stack import` reads holds only ciphertext, and the
    secrets decrypt as before afterwards; the next update sees nothing to do."""
    import pulumi
    from pulumi_command import local

    from styx.app.session import StackSession

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "outputs-test")
    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(eng.toolchain_bin()))  # before STYX_HOME moves
    plugins = eng.pulumi_home() / "plugins"  # the command provider, registered by the toolchain
    if not list(plugins.glob("resource-command-*")):
        pytest.skip(f"the command provider is not registered in {plugins} (bash toolchain/setup.sh)")
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx"))
    (tmp_path / "pulumi-home").mkdir()
    (tmp_path / "pulumi-home" / "plugins").symlink_to(plugins)
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    plain = "sk-5e1f-never-on-disk"

    def program() -> None:
        c = local.Command("phase", create="true", delete="echo undo",
                          environment={"TOKEN": pulumi.Output.secret(plain)})
        pulumi.export("key", pulumi.Output.secret(plain))
        pulumi.export("id", c.id)

    session = StackSession(object(), _stack(tmp_path, program))
    assert session.up().ok
    files: list[str] = []
    run0 = session.runner.run

    def run(args, *a, **kw):
        if "import" in args:
            files.append(Path(args[args.index("--file") + 1]).read_text())
        return run0(args, *a, **kw)

    session.runner.run = run

    def drop(dep):
        (r,) = [r for r in dep["resources"] if r["type"] == "command:local:Command"]
        return [r["inputs"].pop("delete"), r["outputs"].pop("delete")]

    assert session.edit_state(drop) == ["echo undo", "echo undo"]
    assert len(files) == 1 and plain not in files[0] and "ciphertext" in files[0]
    assert not list(Path(tempfile.gettempdir()).glob("styx-import-*"))  # the file is gone
    (r,) = [r for r in session.deployment()["resources"] if r["type"] == "command:local:Command"]
    assert "delete" not in r["inputs"] and r["inputs"]["environment"]["TOKEN"]["plaintext"] == f'"{plain}"'
    assert session.outputs()["key"] == plain
    assert session.clear_pending_operations() == 0
