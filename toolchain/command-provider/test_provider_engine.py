"""End-to-end tests of styx's pulumi-resource-command plugin with the real engine.

They drive the Pulumi CLI through the Python Automation API with inline
programs (no language host needed) and a local file backend.

Requirements (otherwise the tests skip):
  * the Pulumi CLI: directory from $STYX_PULUMI_BIN_DIR, else `pulumi` on PATH;
  * the plugin installed under $PULUMI_HOME (default ~/.pulumi), e.g.
      pulumi plugin install resource command 1.2.1 --file <pulumi-resource-command>
  * for the remote test: root, /usr/sbin/sshd and ssh-keygen.
"""

from __future__ import annotations

import json
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

PLUGIN_VERSION = "1.2.1"
PROJECT = "styx-command-provider-test"


def _pulumi_bin_dir() -> Path | None:
    configured = os.environ.get("STYX_PULUMI_BIN_DIR")
    if configured:
        return Path(configured) if (Path(configured) / "pulumi").exists() else None
    found = shutil.which("pulumi")
    return Path(found).parent if found else None


def _pulumi_home() -> Path:
    return Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")


@pytest.fixture
def make_stack(tmp_path, monkeypatch):
    """Returns make(name, program) -> automation Stack on a throwaway backend."""
    bin_dir = _pulumi_bin_dir()
    if bin_dir is None:
        pytest.skip("pulumi CLI not found (set STYX_PULUMI_BIN_DIR or put pulumi on PATH)")
    home = _pulumi_home()
    plugin = home / "plugins" / f"resource-command-v{PLUGIN_VERSION}" / "pulumi-resource-command"
    if not plugin.exists():
        pytest.skip(f"command plugin {PLUGIN_VERSION} not installed under {home}")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    backend = tmp_path / "backend"
    backend.mkdir()
    env = {
        "PULUMI_HOME": str(home),
        "PULUMI_CONFIG_PASSPHRASE": "styx-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
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
        return automation.create_or_select_stack(
            stack_name=name, project_name=PROJECT, program=program, opts=opts
        )

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

    stack.destroy()
    assert _lines(log)[-1] == "delete"
    assert _command_resources(stack) == []


def test_failing_create_reports_stderr_tail_and_retries(make_stack, tmp_path):
    attempts, ok_flag = tmp_path / "attempts", tmp_path / "ok"
    create = (
        f"echo try >> {attempts}; echo to-stdout; "
        "for i in $(seq 1 40); do echo boom-$i >&2; done; "
        f"test -e {ok_flag} || exit 7"
    )

    def program():
        command.local.Command("flaky", create=create, logging=command.local.Logging.NONE)

    stack = make_stack("failing", program)
    with pytest.raises(automation.errors.CommandError) as failed:
        stack.up()
    message = str(failed.value)
    assert "exit status 7" in message
    assert "boom-40" in message and "boom-11" in message
    assert "boom-10\n" not in message, "only the stderr tail is reported"
    assert _command_resources(stack) == [], "a failed create must not be recorded"

    ok_flag.touch()
    up = stack.up()
    assert _changes(up).get("create") == 1
    assert _lines(attempts) == ["try", "try"], "the next up runs create again"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A throwaway sshd on 127.0.0.1; returns (start, stop, port, private_key)."""
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
    argv = [
        sshd_bin, "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(d / "hostkey"),
        "-o", "ListenAddress=127.0.0.1",
        "-o", f"AuthorizedKeysFile={d / 'authorized_keys'}",
        "-o", f"PidFile={d / 'sshd.pid'}",
        "-o", "StrictModes=no", "-o", "UsePAM=no", "-o", "PasswordAuthentication=no",
        "-o", "PermitRootLogin=prohibit-password", "-o", "AcceptEnv=STYX_*",
    ]
    procs: list[subprocess.Popen] = []

    def start():
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w")))

    def stop():
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        procs.clear()

    yield start, stop, port, (d / "id").read_text()
    stop()


def test_remote_command_waits_for_sshd_and_keeps_secrets(make_stack, sshd, tmp_path):
    start_sshd, stop_sshd, port, key = sshd
    marker, remote_log = tmp_path / "remote-secret", tmp_path / "remote.log"
    secret = "styx-secret-" + secrets.token_hex(8)
    limit = {"dial": -1}

    def program():
        conn = command.remote.ConnectionArgs(
            host="127.0.0.1", port=port, user="root", private_key=key,
            dial_error_limit=limit["dial"], per_dial_timeout=2,
        )
        c = command.remote.Command(
            "r",
            connection=conn,
            create=pulumi.Output.secret(f"echo {secret} > {marker}; echo remote-ok-$STYX_X"),
            delete=f"rm -f {marker}; echo deleted >> {remote_log}",
            environment={"STYX_X": "env"},
        )
        pulumi.export("stdout", c.stdout)

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
    assert up.outputs["stdout"].secret, "output of a secret command must be secret"
    assert marker.read_text().strip() == secret

    exported = json.dumps(stack.export_stack().deployment)
    assert "remote-ok-env" not in exported and secret not in exported
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
    assert "after 2 attempt(s)" in str(failed.value)
    assert time.monotonic() - began < 30
