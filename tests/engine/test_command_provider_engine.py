"""The official pulumi-resource-command plugin (v1.2.1) under the real engine, as styx uses it.

toolchain/install-pulumi.sh installs the official release, or builds the official source (see
../shared/vendor/SOURCE.md); these tests pin the behaviour styx relies on: local and remote
commands, no-op re-runs, triggers, the stderr tail of a failing command, secrets kept out of the
state, waiting for sshd, dialErrorLimit. They drive the Pulumi CLI through the Python Automation
API with inline programs (no language host needed) and a local file backend; no sandbox network.

Requirements (otherwise the tests skip):
  * the Pulumi CLI: $STYX_PULUMI_BIN_DIR/pulumi, else styx's toolchain, else `pulumi` on PATH;
  * the plugin registered under $PULUMI_HOME (default: styx's own, $STYX_HOME/pulumi) by
    `bash toolchain/install-pulumi.sh`;
  * for the remote test: root, /usr/sbin/sshd and ssh-keygen.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

automation = pytest.importorskip("pulumi.automation")
pulumi = pytest.importorskip("pulumi")
command = pytest.importorskip("pulumi_command")

pytestmark = [
    pytest.mark.engine,
    # Importing pulumi_command warns about its deprecated CopyFile resource.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PLUGIN_VERSION = "1.2.1"
PROJECT = "styx-command-provider-test"


def _pulumi_bin_dir() -> Path | None:
    configured = os.environ.get("STYX_PULUMI_BIN_DIR")
    if configured:
        return Path(configured) if (Path(configured) / "pulumi").exists() else None
    try:
        from styx.app import engine

        if (engine.toolchain_bin() / "pulumi").exists():
            return engine.toolchain_bin()
    except ImportError:
        pass
    found = shutil.which("pulumi")
    return Path(found).parent if found else None


def _pulumi_home() -> Path:
    if os.environ.get("PULUMI_HOME"):
        return Path(os.environ["PULUMI_HOME"])
    try:
        from styx.app import engine

        return engine.pulumi_home()
    except ImportError:
        return Path.home() / ".pulumi"


def _plugin_found(home: Path) -> bool:
    return (home / "plugins" / f"resource-command-v{PLUGIN_VERSION}" / "pulumi-resource-command").exists()


@pytest.fixture
def make_stack(tmp_path, monkeypatch):
    """Returns make(name, program) -> automation Stack on a throwaway backend."""
    bin_dir = _pulumi_bin_dir()
    if bin_dir is None:
        pytest.skip("pulumi CLI not found (set STYX_PULUMI_BIN_DIR or put pulumi on PATH)")
    home = _pulumi_home()
    if not _plugin_found(home):
        pytest.skip(f"command plugin {PLUGIN_VERSION} not registered in {home}: run bash toolchain/install-pulumi.sh")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    backend = tmp_path / "backend"
    backend.mkdir()
    env = {
        "PULUMI_HOME": str(home),
        "PULUMI_CONFIG_PASSPHRASE": "styx-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",  # the registered plugin, as styx runs it
    }

    def make(name, program):
        settings = automation.ProjectSettings(
            name=PROJECT,
            runtime="python",
            backend=automation.ProjectBackend(f"file://{backend}"),
        )
        opts = automation.LocalWorkspaceOptions(
            pulumi_home=str(home),
            env_vars=env,
            project_settings=settings,
            pulumi_command=automation.PulumiCommand(skip_version_check=True),
        )
        return automation.create_or_select_stack(stack_name=name, project_name=PROJECT, program=program, opts=opts)

    return make


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _changes(result) -> dict:
    return dict(result.summary.resource_changes or {})


def _command_resources(stack) -> list[dict]:
    deployment = stack.export_stack().deployment or {}
    return [r for r in deployment.get("resources", []) if r["type"].startswith("command:")]


def test_local_lifecycle(make_stack, tmp_path):
    log = tmp_path / "runs.log"
    knobs = {"env": "a", "trigger": "1"}

    def program():
        c = command.local.Command(
            "c",
            create=f"echo create >> {log}; echo out-$V",
            update=f"echo update-$PULUMI_COMMAND_STDOUT >> {log}; echo upd-$V",
            delete=f"echo delete >> {log}",
            environment={"V": knobs["env"]},
            triggers=[knobs["trigger"]],
        )
        pulumi.export("stdout", c.stdout)

    stack = make_stack("local", program)

    stack.preview()
    assert _lines(log) == [], "preview must not run commands"

    up = stack.up()
    assert _changes(up) == {"create": 2}
    assert up.outputs["stdout"].value == "out-a"
    assert _lines(log) == ["create"]

    up = stack.up()
    assert _changes(up) == {"same": 2}, "unchanged inputs must be a no-op"
    assert _lines(log) == ["create"]
    refreshed = stack.refresh()
    assert _changes(refreshed) == {"same": 2}, "refresh keeps the state as it is"
    assert _lines(log) == ["create"]

    knobs["env"] = "b"
    up = stack.up()
    assert _changes(up) == {"same": 1, "update": 1}
    assert up.outputs["stdout"].value == "upd-b"
    assert _lines(log) == ["create", "update-out-a"]

    knobs["trigger"] = "2"
    up = stack.up()
    assert _changes(up) == {"same": 1, "replace": 1}
    assert up.outputs["stdout"].value == "out-b"
    assert _lines(log) == ["create", "update-out-a", "create", "delete"]

    destroyed = stack.destroy()
    assert _changes(destroyed) == {"delete": 2}
    assert _lines(log)[-1] == "delete"


def test_failing_command_reports_stderr_tail_and_retries(make_stack, tmp_path):
    attempts, ok_flag = tmp_path / "attempts", tmp_path / "ok"
    knobs = {"version": "v1"}

    def program():
        create = (
            f"echo try >> {attempts}; echo out-{knobs['version']}; "
            "for i in $(seq 1 40); do echo boom-$i >&2; done; "
            f"test -e {ok_flag} || exit 7"
        )
        c = command.local.Command("flaky", create=create, logging=command.local.Logging.NONE)
        pulumi.export("stdout", c.stdout)

    stack = make_stack("failing", program)
    with pytest.raises(automation.errors.CommandError) as failed:
        stack.up()
    message = str(failed.value)
    assert "exit status 7" in message
    assert "boom-1\n" in message and "boom-40" in message, "the command's stderr is reported"
    assert _command_resources(stack) == [], "a failed create must not be recorded"

    ok_flag.touch()
    up = stack.up()
    assert _changes(up).get("create") == 1
    assert _lines(attempts) == ["try", "try"], "the next up runs create again"

    # A failed update keeps the old state, so the next up runs it again.
    ok_flag.unlink()
    knobs["version"] = "v2"
    with pytest.raises(automation.errors.CommandError, match="exit status 7"):
        stack.up()
    ok_flag.touch()
    up = stack.up()
    assert _changes(up) == {"same": 1, "update": 1}, "the failed update was not recorded"
    assert up.outputs["stdout"].value == "out-v2"
    assert len(_lines(attempts)) == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A throwaway sshd on 127.0.0.1; returns (start, stop, port, private_key, host_key)."""
    sshd_bin, keygen = "/usr/sbin/sshd", shutil.which("ssh-keygen")
    if os.geteuid() != 0 or not os.path.exists(sshd_bin) or not keygen:
        pytest.skip("needs root, /usr/sbin/sshd and ssh-keygen")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("hostkey", "id"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "id.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    port = _free_port()
    options = {
        "ListenAddress": "127.0.0.1",
        "AuthorizedKeysFile": d / "authorized_keys",
        "PidFile": d / "sshd.pid",
        "StrictModes": "no",
        "UsePAM": "no",
        "PasswordAuthentication": "no",
        "PermitRootLogin": "prohibit-password",
        "AcceptEnv": "STYX_*",
    }
    argv = [sshd_bin, "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(d / "hostkey")]
    for k, v in options.items():
        argv += ["-o", f"{k}={v}"]
    procs: list[subprocess.Popen] = []
    log = (d / "sshd.log").open("w")

    def start():
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log))

    def stop():
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        procs.clear()

    yield start, stop, port, (d / "id").read_text(), (d / "hostkey.pub").read_text()
    stop()
    log.close()


def test_remote_command_waits_for_sshd_and_keeps_secrets(make_stack, sshd, tmp_path):
    start_sshd, stop_sshd, port, key, host_key = sshd
    marker, remote_log = tmp_path / "remote-secret", tmp_path / "remote.log"
    secret = "styx-secret-" + secrets.token_hex(8)
    limit = {"dial": -1}

    def program():
        conn = command.remote.ConnectionArgs(
            host="127.0.0.1",
            port=port,
            user="root",
            private_key=key,
            dial_error_limit=limit["dial"],
            per_dial_timeout=2,
        )
        c = command.remote.Command(
            "r",
            connection=conn,
            create=pulumi.Output.secret(f"echo {secret} > {marker}; echo remote-ok-$STYX_X"),
            delete=f"rm -f {marker}; echo deleted >> {remote_log}",
            environment={"STYX_X": "env"},
        )
        pulumi.export("stdout", c.stdout)
        # The same sshd as a jump host, with the host key pinned.
        via = command.remote.Command(
            "via-proxy",
            connection=command.remote.ConnectionArgs(
                host="127.0.0.1",
                port=port,
                private_key=key,
                host_key=host_key,
                dial_error_limit=limit["dial"],
                proxy=command.remote.ProxyConnectionArgs(host="127.0.0.1", port=port, private_key=key),
            ),
            create="echo proxied",
        )
        pulumi.export("proxied", via.stdout)

    stack = make_stack("remote", program)
    delayed = threading.Timer(4.0, start_sshd)
    delayed.start()
    began = time.monotonic()
    try:
        up = stack.up()
    finally:
        delayed.join()
    assert time.monotonic() - began >= 4.0
    assert up.outputs["stdout"].value == "remote-ok-env"
    assert up.outputs["proxied"].value == "proxied"
    assert marker.read_text().strip() == secret

    # The Automation API exports with --show-secrets; run the plain export.
    exported = subprocess.run(
        ["pulumi", "stack", "export", "--stack", "remote"],
        cwd=stack.workspace.work_dir,
        env={**os.environ, **stack.workspace.env_vars},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert '"type": "command:remote:Command"' in exported
    assert secret not in exported, "a secret command stays secret in the state"
    assert "PRIVATE KEY" not in exported
    state_files = list((tmp_path / "backend").rglob("*.json"))
    assert state_files and all(secret not in f.read_text() for f in state_files)

    stack.destroy()
    assert not marker.exists() and _lines(remote_log) == ["deleted"]

    # An unreachable host must fail the delete after dialErrorLimit attempts
    # instead of hanging.
    limit["dial"] = 2
    stack.up()
    stop_sshd()
    began = time.monotonic()
    with pytest.raises(automation.errors.CommandError) as failed:
        stack.destroy()
    assert "after 2 failed attempts" in str(failed.value)
    assert time.monotonic() - began < 30
