"""The `styx` CLI end to end on the real engine and the local backend (sandbox hosts).

Each test runs `python -m styx.app.cli ...` (the same as `styx ...`) as a subprocess with its own
STYX_HOME (state, workspaces, passphrase) and its own subnet, and always runs `styx down` in a finally.
The engine binaries and plugins come from the installed toolchain (STYX_PULUMI_BIN_DIR / PULUMI_HOME of
the real home).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import ROOT, require_engine_and_sandbox, sandbox_status

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture
def cli(tmp_path):
    require_engine_and_sandbox()
    from styx.app import engine

    env = {
        **os.environ,
        "STYX_HOME": str(tmp_path / "styx-home"),
        "STYX_PULUMI_BIN_DIR": str(engine.toolchain_bin()),
        "PULUMI_HOME": str(engine.pulumi_home()),
        "PYTHONPATH": str(ROOT),
    }
    for k in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE",
              "STYX_SB_REFUSE_FILE", "STYX_LOCAL_PREFLIGHT"):
        env.pop(k, None)

    class Cli:
        def __init__(self):
            self.env = env
            self.tmp = tmp_path

        def argv(self, *args) -> list[str]:
            return [sys.executable, "-m", "styx.app.cli", *args]

        def run(self, *args, timeout: int = 900, extra_env: dict | None = None) -> subprocess.CompletedProcess:
            t = time.monotonic()
            r = subprocess.run(self.argv(*args), capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                               env={**self.env, **(extra_env or {})}, stdin=subprocess.DEVNULL, check=False)
            print(f"$ styx {' '.join(args)}  -> {r.returncode} in {time.monotonic() - t:.1f}s")
            print(r.stderr[-4000:])
            return r

        def json(self, *args, expect: int = 0, **kw) -> dict:
            r = self.run(args[0], "--json", *args[1:], **kw)
            assert r.returncode == expect, (
                f"exit {r.returncode}\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
            return json.loads(r.stdout)

        def config(self, cluster: dict) -> Path:
            p = self.tmp / f"{cluster['name']}.yaml"
            p.write_text(yaml.safe_dump(cluster))
            return p

    return Cli()


def tiny(name: str, subnet: str, **extra) -> dict:
    c = {
        "name": name,
        "cloud": "local",
        "workers": [{"name": "worker", "count": 1}],
        "local": {"subnet": subnet},
        "setup": {
            "ray": {"enabled": False},
            "custom_scripts": [{"name": "hello", "inline": "echo \"hello from $(hostname)\" > /tmp/hello"}],
        },
    }
    c.update(extra)
    return c


def teardown(cli, stack: str, cluster: str) -> None:
    r = cli.run("down", "--stack", stack, "--yes", timeout=600)
    if r.returncode != 0 and "no cluster (stack) named" not in r.stderr:
        print(f"styx down {stack} failed: {r.stderr[-2000:]}")
    status = sandbox_status(cluster)
    assert status.get("clean") is True, f"sandbox leftovers for {cluster}: {status}"


def test_launch_status_exec_preview_cost_down(cli):
    name = "clie2e"
    cfg = cli.config(tiny(name, "10.78.11.0/24"))
    try:
        t = time.monotonic()
        up = cli.json("launch", str(cfg))
        print(f"launch: {time.monotonic() - t:.1f}s")
        assert up["ok"] and up["stack"] == name and [a["result"] for a in up["attempts"]] == ["ok"]
        assert [n["name"] for n in up["outputs"]["nodes"]] == ["head", "worker-0"]
        assert "ssh_private_key" not in json.dumps(up)
        assert up["phases"]["worker-0"]["custom-hello"] == "done"

        st = cli.json("status", "--stack", name)
        [c] = st["clusters"]
        assert c["state"] == "up" and c["cloud"] == "local" and c["price_per_hour"] == 0.0
        assert c["ray"] == {"enabled": False, "ok": None}
        assert all(n["ready"] for n in c["nodes"]), c["nodes"]
        assert c["nodes"][1]["phases"]["custom-hello"]["status"] == "ok"
        assert c["uptime_s"] is not None and c["launched_at"]

        ex = cli.json("exec", "--stack", name, "worker-0", "--", "cat /tmp/hello")
        assert ex["exit_code"] == 0 and ex["stdout"].startswith("hello from ")
        r = cli.run("exec", "--stack", name, "--", "exit 3")
        assert r.returncode == 3

        # every node at once over real SSH: one fails, one times out, the rest is reported per node
        cli.json("exec", "--stack", name, "worker-0", "--", "touch /tmp/odd-one")
        many = cli.json("exec", "--stack", name, "--all", "--", "test ! -e /tmp/odd-one", expect=1)
        assert [(n["node"], n["exit_code"]) for n in many["nodes"]] == [("head", 0), ("worker-0", 1)]
        many = cli.json("exec", "--stack", name, "--all", "--timeout", "3", "--",
                        "test -e /tmp/odd-one && sleep 60; cat /tmp/hello", expect=1)
        head, worker = many["nodes"]
        assert head["exit_code"] == 0 and head["stdout"].startswith("hello from ") and not head["timed_out"]
        assert worker["timed_out"] and worker["exit_code"] is None
        r = cli.run("exec", "--stack", name, "--role", "worker", "--", "echo", "a  b")
        assert r.returncode == 0 and r.stdout == "[worker-0] a  b\n", r.stdout

        # files both ways: to every node, back from every node into a folder per node
        local = cli.tmp / "payload"
        (local / "sub").mkdir(parents=True)
        (local / "sub" / "data.txt").write_text("payload\n")
        cli.json("cp", "--stack", name, str(local), "all:/tmp/payload")
        back = cli.tmp / "back"
        cli.json("cp", "--stack", name, "all:/tmp/payload/sub/data.txt", str(back))
        assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*.txt")) == [
            "head/data.txt", "worker-0/data.txt"]
        assert (back / "worker-0" / "data.txt").read_text() == "payload\n"

        pv = cli.json("preview", "--stack", name)
        ops = {op for phases in pv["nodes"].values() for op in phases.values()}
        assert ops == {"same"}, pv["nodes"]

        cost = cli.json("cost-report")
        assert cost["clusters"][0]["price_per_hour"] == 0.0 and cost["clusters"][0]["stack"] == name

        t = time.monotonic()
        dn = cli.json("down", "--stack", name, "--yes")
        print(f"down: {time.monotonic() - t:.1f}s")
        assert dn["ok"] and dn["removed"]
        assert cli.json("status")["clusters"] == []
        assert sandbox_status(name)["clean"] is True
    finally:
        teardown(cli, name, name)


def test_capacity_failover_across_two_local_zones(cli):
    name = "clifo"
    refuse = cli.tmp / "refuse"
    refuse.write_text("zone-a\n")
    cfg = cli.config(tiny(name, "10.78.12.0/24", workers=[],
                          local={"subnet": "10.78.12.0/24", "zones": ["zone-a", "zone-b"]}))
    try:
        t = time.monotonic()
        up = cli.json("launch", str(cfg), extra_env={"STYX_SB_REFUSE_FILE": str(refuse)})
        print(f"launch with failover: {time.monotonic() - t:.1f}s")
        assert [a["result"] for a in up["attempts"]] == ["capacity", "ok"], up["attempts"]
        assert up["attempts"][0]["blocked"] == ["local/zone-a"]
        assert up["placement"]["zone"] == "zone-b"
        assert {n["zone"] for n in up["outputs"]["nodes"]} == {"zone-b"}
        st = cli.json("status", "--stack", name, "--no-ray")
        assert st["clusters"][0]["placement"]["zone"] == "zone-b"
    finally:
        teardown(cli, name, name)


def test_ctrl_c_during_launch_then_launch_again_completes(cli):
    name = "cliint"
    c = tiny(name, "10.78.13.0/24", workers=[])
    c["setup"]["custom_scripts"] = [
        {"name": "slow", "inline": "sleep 15; echo slow-done > /tmp/slow"},
        {"name": "after", "inline": "echo after > /tmp/after"},
    ]
    cfg = cli.config(c)
    try:
        p = subprocess.Popen(cli.argv("launch", str(cfg)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=cli.env, stdin=subprocess.DEVNULL)
        lines: list[str] = []
        sent = None
        assert p.stderr is not None
        for line in p.stderr:
            lines.append(line)
            if sent is None and "custom-slow" in line and "started" in line:
                time.sleep(1)
                p.send_signal(signal.SIGINT)
                sent = time.monotonic()
        rc = p.wait(timeout=600)
        err = "".join(lines)
        print(err[-4000:])
        assert sent is not None, "the slow phase never started"
        print(f"exit {rc} {time.monotonic() - sent:.1f}s after ^C")
        assert rc == 1, err
        assert "cancelling" in err and "again to resume" in err
        assert "custom-after" not in err  # nothing new was started after the ^C

        up = cli.json("launch", str(cfg))
        assert up["ok"]
        head = up["phases"]["head"]
        assert head["wait_ssh"] == "unchanged" and head["provision"] == "unchanged", head
        assert head["custom-after"] == "done"
        ex = cli.json("exec", "--stack", name, "--", "cat /tmp/after")
        assert ex["stdout"].strip() == "after"
    finally:
        teardown(cli, name, name)


def test_a_crashed_update_is_detected_and_repaired_with_consent(cli):
    name = "clicrash"
    c = tiny(name, "10.78.16.0/24", workers=[])
    c["setup"]["custom_scripts"] = [{"name": "slow", "inline": "sleep 20"}]
    cfg = cli.config(c)
    try:
        p = subprocess.Popen(cli.argv("launch", str(cfg)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=cli.env, stdin=subprocess.DEVNULL)
        assert p.stderr is not None
        killed = False
        for line in p.stderr:
            if not killed and "custom-slow" in line and "started" in line:
                time.sleep(1)
                # the engine dies mid-step (as in a crash or kill -9): its lock and pending operation stay
                kids = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "pulumi"], capture_output=True,
                                      text=True, check=False).stdout.split()
                assert kids, "no pulumi child found"
                plugins = [g for k in kids for g in subprocess.run(
                    ["pgrep", "-P", k], capture_output=True, text=True, check=False).stdout.split()]
                for k in kids:
                    os.kill(int(k), signal.SIGKILL)
                for g in plugins:  # the provider plugin would be orphaned: a crash test should not leak it
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(g), signal.SIGTERM)
                killed = True
        assert p.wait(timeout=300) == 1 and killed

        refused = cli.json("launch", str(cfg), expect=1)
        assert "needs repair" in refused["error"] and "--yes" in refused["error"]
        t = time.monotonic()
        up = cli.json("launch", "--yes", str(cfg))
        print(f"repair + launch: {time.monotonic() - t:.1f}s")
        assert up["ok"] and up["phases"]["head"]["custom-slow"] == "done"
        assert up["phases"]["head"]["wait_ssh"] == "unchanged"
    finally:
        teardown(cli, name, name)


def test_a_second_ctrl_c_stops_the_running_phase_on_the_node(cli):
    """The first ^C lets running phases finish; the second stops the engine and its plugins, and the
    node's phase with them (the wrapper's watchdog sees its SSH session go). The sandbox's processes
    are visible in this machine's process table."""
    name = "cliint2"
    marker = "sleep 300.5"
    c = tiny(name, "10.78.17.0/24", workers=[])
    c["setup"]["custom_scripts"] = [{"name": "slow", "inline": f"{marker}; echo slow-done > /tmp/slow"}]
    cfg = cli.config(c)
    try:
        p = subprocess.Popen(cli.argv("launch", str(cfg)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=cli.env, stdin=subprocess.DEVNULL)
        assert p.stderr is not None
        sent = 0
        for line in p.stderr:
            if sent == 0 and "custom-slow" in line and "started" in line:
                time.sleep(2)
                assert subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode == 0
                p.send_signal(signal.SIGINT)
                time.sleep(1)
                p.send_signal(signal.SIGINT)
                sent = 2
        assert p.wait(timeout=120) != 0 and sent == 2
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode != 0:
                break
            time.sleep(1)
        assert subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode != 0, \
            "the phase still runs on the node after the second ^C"
    finally:
        teardown(cli, name, name)


def test_styx_launch_and_plain_pulumi_are_interchangeable(cli):
    """A state made by `styx launch` and plain `pulumi up -s S` in the repo (same backend, same
    passphrase) show 0 changes when switching, a secret kept only encrypted in the stack file included."""
    from styx.app import engine

    name = "cliswap"
    stack_file = ROOT / "stacks" / f"Pulumi.e2e-{name}.yaml"
    stack = f"e2e-{name}"
    c = tiny(name, "10.78.18.0/24", workers=[])
    c["setup"]["env"] = {"GREETING": "hi"}
    c["setup"]["file_mounts"] = [{"local": "examples/local-files", "remote": "/opt/cliswap/files"}]
    stack_file.write_text(yaml.safe_dump({"config": {"styx:cluster": c}}, sort_keys=False))
    home = Path(cli.env["STYX_HOME"])
    plain = {**cli.env, "PATH": f"{engine.toolchain_bin()}:{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
             "PULUMI_BACKEND_URL": f"file://{home / 'state'}",
             "PULUMI_CONFIG_PASSPHRASE_FILE": str(home / "passphrase"),
             "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
             "PULUMI_IGNORE_AMBIENT_PLUGINS": "true", "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true"}

    def pulumi(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run(["pulumi", *args, "-s", stack, "--non-interactive"], cwd=ROOT, env=plain,
                           capture_output=True, text=True, timeout=900, check=False)
        print(f"$ pulumi {' '.join(args)} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    try:
        r = subprocess.run(cli.argv("secret", "set", "TOKEN", "--stack", stack), input="swap-secret-31c9\n",
                           capture_output=True, text=True, cwd=ROOT, env=cli.env, timeout=300, check=False)
        assert r.returncode == 0, r.stderr
        assert "swap-secret-31c9" not in stack_file.read_text() and "secure:" in stack_file.read_text()
        assert cli.json("launch", str(stack_file), "--stack", stack)["ok"]
        # plain Pulumi on the state styx made: nothing to do
        assert pulumi("preview", "--expect-no-changes").returncode == 0
        assert pulumi("up", "--yes", "--expect-no-changes").returncode == 0
        # and styx on the state plain Pulumi last wrote: nothing to do either
        pv = cli.json("preview", "--stack", stack, str(stack_file))
        assert not {k: v for k, v in (pv.get("changes") or {}).items() if k != "same" and v}, pv
        out = cli.json("exec", "--stack", stack, "--", ". /etc/styx/env.sh; echo $TOKEN; cat /opt/cliswap/files/*")
        assert "swap-secret-31c9" in out["stdout"]
    finally:
        teardown(cli, stack, name)
        stack_file.unlink(missing_ok=True)
