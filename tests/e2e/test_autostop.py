"""Autostop end to end: a real 2-node cluster (local backend, official plugins, real Ray) with
`setup.autostop.idle_minutes: 1` (a check every 10 s) stops itself when idle: the head's watcher asks,
the host's reaper stops the sandboxes, `styx status` reports "stopped by autostop", the next `styx
launch` brings it back with Ray, and `styx autostop` changes the setting with only its phase run.
With `down: true` (subnet 10.99.0.0/24) the reaper destroys the cluster through the engine (`styx down`
of its stack): the stack is gone and nothing of it is left on this host.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.helpers import leftovers, sandbox_status
from tests.e2e.test_cli_local import cli as cli  # the fixture
from tests.e2e.test_cli_local import teardown
from tests.e2e.test_drift import RAY_NODES_PY
from tests.e2e.test_stop_start import alive_state

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "asx"


def cluster() -> dict:
    return {
        "name": NAME,
        "cloud": "local",
        "local": {"subnet": "10.97.0.0/24", "shm_size": "1g"},
        "workers": [{"name": "worker", "count": 1}],
        "setup": {"python": {"version": "system", "env_tool": "venv"}, "ray": {"version": "2.60.0"},
                  "autostop": {"idle_minutes": 1, "check_interval_s": 10}},
    }


def _state(cli) -> dict:
    return cli.json("status", "--stack", NAME, "--no-ray")["clusters"][0]


def test_an_idle_cluster_stops_itself_and_launch_brings_it_back(cli, monkeypatch):
    import tests.e2e.test_stop_start as ss

    monkeypatch.setattr(ss, "NAME", NAME)  # alive_state() of this cluster's sandboxes
    cfg = cli.config(cluster())
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"], up
        assert up["phases"]["head"]["autostop"] == "done", up["phases"]
        assert "autostop" not in up["phases"]["worker-0"]
        t0 = time.monotonic()
        st = _state(cli)
        assert st["autostop"]["idle_minutes"] == 1 and not st["autostop"]["stopped_at"], st["autostop"]
        idle_seen = []
        while time.monotonic() - t0 < 240:
            st = _state(cli)
            if st["state"] == "stopped":
                break
            idle_seen.append(st["autostop"]["idle_since"])
            time.sleep(10)
        assert any(idle_seen), idle_seen  # status reads the watcher's idle time from the head's root
        print(f"stopped by autostop {time.monotonic() - t0:.0f}s after launch: {st['autostop']}")
        assert st["state"] == "stopped", st
        assert st["autostop"]["stopped_at"] and st["autostop"]["action"] == "stop", st["autostop"]
        assert {n["power"] for n in st["nodes"]} == {"stopped"}
        assert alive_state("head") == "stopped" and alive_state("worker-0") == "stopped"
        text = cli.run("status", "--stack", NAME, "--no-ray")
        assert "stopped by autostop at" in text.stdout, text.stdout

        again = cli.run("launch", str(cfg), "--json")
        assert again.returncode == 0, again.stderr[-3000:]
        assert "was stopped by autostop" in again.stderr
        ex = cli.json("exec", "--stack", NAME, "--", f'python -c "{RAY_NODES_PY}"')
        assert int(ex["stdout"].strip().splitlines()[-1]) == 2, ex
        st = _state(cli)
        assert st["state"] == "up" and not st["autostop"]["stopped_at"] and set(st["stopped_s"]) == {"head", "worker-0"}

        # a new setting: only the head's autostop phase (and the reaper) run; the watcher has it
        ch = cli.json("autostop", "--stack", NAME, "--idle-minutes", "30")
        assert ch["ok"] and ch["autostop"]["idle_minutes"] == 30, ch
        w = cli.json("exec", "--stack", NAME, "--", "grep -c 'STYX_AUTOSTOP_IDLE_MINUTES=\"30\"' "
                     "/var/lib/styx/autostop/watch.sh")
        assert w["stdout"].strip() == "1", w
        assert _state(cli)["autostop"]["idle_minutes"] == 30
        # off: the phase and the reaper are deleted (their undos stop the watcher and the reaper)
        off = cli.json("autostop", "--stack", NAME, "--off")
        assert off["ok"] and off["autostop"] is None, off
        gone = cli.json("exec", "--stack", NAME, "--", "test -e /var/lib/styx/autostop && echo there || echo gone")
        assert gone["stdout"].strip() == "gone", gone
        assert _state(cli)["autostop"] is None
        assert not (Path("/var/lib/styx/sandbox") / NAME / ".autostop").exists()
    finally:
        teardown(cli, NAME, NAME)


DOWN = "asxdown"


def test_an_idle_cluster_with_down_true_is_destroyed_through_the_engine(cli):
    cfg = cli.config({
        "name": DOWN,
        "cloud": "local",
        "local": {"subnet": "10.99.0.0/24"},
        "workers": [{"name": "worker", "count": 1}],
        "setup": {"ray": {"enabled": False},  # only logins count: nothing to install, a quick launch
                  "autostop": {"idle_minutes": 1, "down": True, "check_interval_s": 10}},
    })
    log = Path("/var/lib/styx/sandbox/.autostop-down") / f"{DOWN}.log"
    log.unlink(missing_ok=True)
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"] and up["phases"]["head"]["autostop"] == "done", up
        t0 = time.monotonic()
        while time.monotonic() - t0 < 300:
            if log.exists() and ("destroyed by autostop" in log.read_text() or "styx down failed" in log.read_text()):
                break
            time.sleep(5)
        text = log.read_text() if log.exists() else ""
        print(f"autostop down finished {time.monotonic() - t0:.0f}s after launch:\n{text[-3000:]}")
        assert "destroyed by autostop (down)" in text, text[-3000:]
        gone = cli.run("status", "--stack", DOWN, "--json")
        assert gone.returncode != 0 and "no cluster (stack) named" in gone.stdout + gone.stderr, gone.stdout
        st = sandbox_status(DOWN)
        assert st.get("clean") is True, leftovers(st)
        assert not (Path("/var/lib/styx/sandbox") / DOWN).exists()
    finally:
        teardown(cli, DOWN, DOWN)
        log.unlink(missing_ok=True)
