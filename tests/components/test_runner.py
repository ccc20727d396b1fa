"""styx.components.runner for real, in a local bash: the fixed command text, the program on stdin, the
library installed by the gate, the time limit, the SSH-session watchdog and the generation guard."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from styx.components import runner
from styx.components.phases import GATE, PHASES, body_of, script_text


@pytest.fixture
def lib_dir(tmp_path, monkeypatch):
    d = tmp_path / "lib"
    monkeypatch.setattr(runner, "LIB_DIR", str(d))
    return d


def _env(tmp_path: Path) -> dict[str, str]:
    return {"STYX_STATE_DIR": str(tmp_path / "state"), "STYX_LOG_DIR": str(tmp_path / "log"),
            "STYX_PROFILE_DIR": str(tmp_path / "profile.d")}


def run(command: str, program: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], input=program, capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_command_text_is_fixed_and_short():
    for p in PHASES:
        c = runner.command_text(p.name, "head", p.timeout_s, "create")
        assert len(c) < 700 and "STYX_PHASE" not in c and "export" not in c
    assert runner.command_text("ray", "w-0", 60, "create").endswith("styx ray w-0 60 create")


def _sourced(tmp_path: Path, text: str) -> str:
    """What bash holds after sourcing `text`: its functions, variables and options (the variables bash
    itself sets per process left out)."""
    f = tmp_path / "lib-under-test.sh"
    f.write_text(text)
    dump = ('. "$1"; declare -f; declare -p | grep -Ev "^declare -[-a-zA-Z]* (BASH|_|PPID|SHLVL|RANDOM|SECONDS|'
            'EPOCH|SRANDOM|LINENO|BASHPID|FUNCNAME|PIPESTATUS|BASH_[A-Z_]*)="; set -o; shopt')
    r = subprocess.run(["bash", "-c", dump, "dump", str(f)], capture_output=True, text=True, timeout=30, check=True,
                       env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    return r.stdout


def test_the_shipped_library_defines_what_lib_sh_defines(tmp_path):
    full, shipped = script_text("lib.sh"), runner.lib_text()
    assert len(shipped) < 0.7 * len(full)
    assert not any(ln.lstrip().startswith("#") or not ln.strip() for ln in shipped.splitlines())
    assert "styx_result" in shipped
    assert _sourced(tmp_path, shipped) == _sourced(tmp_path, full)


def test_gate_installs_the_library_then_phases_use_it(tmp_path, lib_dir):
    env = _env(tmp_path)
    gate = run(runner.command_text("wait_ssh", "head", 60, "create"), runner.gate_program(body_of(GATE), env))
    assert gate.returncode == 0, gate.stderr
    assert gate.stdout.strip().startswith("styx wait_ssh: ok:")
    installed = lib_dir / f"{runner.lib_hash()}.sh"
    assert installed.read_text() == runner.lib_text()
    secret = "s3cr3t-v4lue"
    body = 'styx_result ok "token has ${#TOKEN} chars"\n'
    prog = runner.program("custom-x", body, {**env, "TOKEN": secret})
    cmd = runner.command_text("custom-x", "head", 60, "create")
    assert secret not in cmd
    r = run(cmd, prog)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"styx custom-x: ok: token has {len(secret)} chars"
    # a second gate run with the same library does not rewrite it
    mtime = installed.stat().st_mtime_ns
    assert run(runner.command_text("wait_ssh", "head", 60, "create"),
               runner.gate_program(body_of(GATE), env)).returncode == 0
    assert installed.stat().st_mtime_ns == mtime


def test_missing_library_is_a_clear_error(tmp_path, lib_dir):
    r = run(runner.command_text("workdir", "w-1", 60, "create"), runner.program("workdir", "true\n", _env(tmp_path)))
    assert r.returncode == 1
    assert "styx library" in r.stderr and "missing on this node" in r.stderr


def test_a_phase_over_its_limit_is_stopped_with_a_message(tmp_path, lib_dir):
    env = _env(tmp_path)
    run(runner.command_text("wait_ssh", "n", 60, "create"), runner.gate_program(body_of(GATE), env))
    t = time.monotonic()
    prog = runner.program("custom-slow", "sleep 30\n", env)
    r = run(runner.command_text("custom-slow", "worker-3", 2, "create"), prog)
    assert time.monotonic() - t < 20
    assert r.returncode == 124
    assert "styx: phase custom-slow on node worker-3 stopped after its time limit of 2s (setup.timeouts.custom-slow)" \
        in r.stderr


def _alive(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode == 0


def test_the_phase_stops_when_its_session_goes(tmp_path, lib_dir):
    """The wrapper's parent stands in for sshd: killing it (a dropped connection) stops the phase."""
    env = _env(tmp_path)
    run(runner.command_text("wait_ssh", "n", 60, "create"), runner.gate_program(body_of(GATE), env))
    marker = "sleep 297.25"
    prog = runner.program("custom-long", f"{marker}\n", env)
    session = subprocess.Popen(["bash", "-c", runner.command_text("custom-long", "n", 600, "create") + " 0<&0 & wait"],
                               stdin=subprocess.PIPE, text=True, start_new_session=True)
    session.stdin.write(prog)
    session.stdin.close()
    deadline = time.monotonic() + 20
    while not _alive(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(marker)
    os.kill(session.pid, signal.SIGKILL)
    session.wait()
    deadline = time.monotonic() + 20
    while _alive(marker) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not _alive(marker), "the phase kept running after its session went away"


def test_an_old_generation_undo_never_removes_what_its_replacement_wrote(tmp_path, lib_dir):
    env = _env(tmp_path)
    run(runner.command_text("wait_ssh", "n", 60, "create"), runner.gate_program(body_of(GATE), env))
    target = tmp_path / "out.txt"
    body = f'echo "$V" > {target}\nstyx_result ok wrote\n'
    undo = runner.Undo(f"rm -f {target}\nstyx_result ok removed\n", env)
    a = runner.program("env_vars", body, {**env, "V": "a"}, undo=undo, generation="gen-a")
    b = runner.program("env_vars", body, {**env, "V": "b"}, undo=undo, generation="gen-b")
    create = runner.command_text("env_vars", "n", 60, "create")
    delete = runner.command_text("env_vars", "n", 60, "delete")
    assert run(create, a).returncode == 0
    assert run(create, b).returncode == 0  # the replacement, created before the old one is deleted
    old = run(delete, a)
    assert old.returncode == 0 and "skipped: a newer env_vars owns this node" in old.stdout
    assert target.read_text().strip() == "b"
    new = run(delete, b)
    assert new.returncode == 0 and new.stdout.strip() == "styx env_vars-undo: ok: removed"
    assert not target.exists()
    assert not (tmp_path / "state" / "generations" / "env_vars").exists()


def test_verify_runs_the_scripts_check_and_never_claims_or_writes(tmp_path, lib_dir):
    """`styx drift`: the same program with the action `verify` runs check_drift(), read-only."""
    env = _env(tmp_path)
    gate_cmd = runner.command_text("wait_ssh", "n", 60, "verify")
    # before the gate ran: the library is missing, and verify says so without installing it
    r = run(gate_cmd, runner.gate_program(body_of(GATE), env))
    assert r.returncode == 1 and "missing on this node" in r.stderr and not lib_dir.exists()
    create = runner.command_text("wait_ssh", "n", 60, "create")
    assert run(create, runner.gate_program(body_of(GATE), env)).returncode == 0
    r = run(gate_cmd, runner.gate_program(body_of(GATE), env))
    assert r.returncode == 0 and r.stdout.strip().startswith("styx wait_ssh: ok: reachable; styx library")

    envfile = tmp_path / "env.sh"
    penv = {**env, "STYX_ENV_FILE": str(envfile), "STYX_ENV_CONTENT": "export A='1'"}
    undo = runner.Undo(script_text("env_vars_delete.sh"), env)
    prog = runner.program("env_vars", script_text("env_vars.sh"), penv, undo=undo, generation="gen-a")
    assert run(runner.command_text("env_vars", "n", 60, "create"), prog).returncode == 0
    verify = runner.command_text("env_vars", "n", 60, "verify")
    r = run(verify, prog)
    assert r.returncode == 0 and r.stdout.startswith("styx env_vars: ok: "), r.stderr
    envfile.write_text("export A='2'\n")
    gen = tmp_path / "state" / "generations" / "env_vars"
    before = gen.read_text() if gen.exists() else None
    r = run(verify, runner.program("env_vars", script_text("env_vars.sh"), penv, undo=undo, generation="gen-b"))
    assert r.stdout.startswith("styx env_vars: drifted: ") and "content changed" in r.stdout
    assert envfile.read_text() == "export A='2'\n"  # nothing put back
    assert (gen.read_text() if gen.exists() else None) == before  # gen-b did not claim the node


def test_every_phase_has_a_read_only_check_beside_its_script():
    from styx.components.phases import _custom_phase
    from styx.model.config import CustomScript

    for p in (GATE, *PHASES):
        if p.name == "custom":
            continue
        assert p.verify, f"{p.name}: the phase table names what `styx drift` checks"
        if p is GATE:
            continue
        text = script_text(p.script)
        assert "\ncheck_drift() {" in text, p.script
        assert text.rstrip().endswith('if styx_verifying; then check_drift "$@"; else main "$@"; fi'), p.script
    with_check = _custom_phase(CustomScript(name="m", inline="echo v1 > /tmp/m", check="grep -qx v1 /tmp/m"), Path("."))
    assert with_check.script.startswith("if styx_verifying; then\nif ( grep -qx v1 /tmp/m\n) >&2; then")
    assert with_check.verify
    plain = _custom_phase(CustomScript(name="m", inline="true"), Path("."))
    assert "no check configured" in plain.script.split("fi\n", 1)[0]


def test_a_custom_check_decides_the_verdict(tmp_path, lib_dir):
    from styx.components.phases import _custom_phase
    from styx.model.config import CustomScript

    env = _env(tmp_path)
    run(runner.command_text("wait_ssh", "n", 60, "create"), runner.gate_program(body_of(GATE), env))
    mark = tmp_path / "mark"
    ph = _custom_phase(CustomScript(name="m", inline=f"echo v1 > {mark}", check=f"grep -qx v1 {mark}"), Path("."))
    prog = runner.program(ph.name, ph.script, env)
    assert run(runner.command_text(ph.name, "n", 60, "create"), prog).returncode == 0
    verify = runner.command_text(ph.name, "n", 60, "verify")
    assert run(verify, prog).stdout.strip() == "styx custom-m: ok: custom check passed"
    mark.write_text("v2\n")
    assert run(verify, prog).stdout.strip() == ("styx custom-m: drifted: custom check of m failed "
                                               "(custom_scripts.check)")
    assert mark.read_text() == "v2\n"  # the script itself did not run


def test_parse_program_reads_back_parameters_and_script():
    """The inverse of `program`'s export line (quotes, line breaks, `'` inside), with the undo part,
    the library lines and the generation hashes left out of the script (a chain change is not a
    script change)."""
    env = {"A": "x y", "B": "l1\nl2", "C": "it's", "D": "", "E": '$HOME "q"'}
    body = "echo hi\nstyx_result ok done\n"
    undo = runner.Undo("rm -f /x\n", {"STYX_VENV_DIR": "/v"})
    p1 = runner.program("ray", body, env, undo=undo, generation="0a1b2c")
    p2 = runner.program("ray", body, env, undo=undo, generation="9f8e7d")
    got_env, got_body = runner.parse_program(p1)
    assert got_env == {**env, "STYX_PHASE": "ray"}
    assert got_body.endswith(body) and "rm -f /x" in got_body and "0a1b2c" not in got_body
    assert "styx_generation_claim ray <generation>" in got_body
    assert runner.parse_program(p2) == (got_env, got_body)
    assert runner.parse_program(runner.program("x", body, {"K": "1"}))[1] == body
    assert runner.parse_program(runner.gate_program("true\n", {"STYX_NODE_NAME": "h"}))[0] == {
        "STYX_NODE_NAME": "h", "STYX_PHASE": "wait_ssh"}
    assert runner.parse_program("not a program") == ({}, "not a program")
