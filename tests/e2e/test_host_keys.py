"""Pinned SSH host keys end to end: the local backend, the real engine and the `styx` CLI.

1 head + 1 worker (no Ray): each sandbox serves the host key styx made for it; `styx exec --all` works;
then the worker's key is swapped inside its sandbox (a new ssh-keygen, sshd reloaded) and both
`styx exec` and the next `styx launch` that has to reach it are refused with a message naming the node
and how to accept a legitimately new key. Subnet 10.91.0.0/24, cluster names `hk*`.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.e2e.test_cli_local import cli, teardown, tiny  # noqa: F401  (cli is a fixture)

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

SUBNET = "10.91.0.0/24"
REFUSED = "node worker-0 of cluster hk1 did not present its pinned SSH host key: refused"


def _scan(ip: str) -> str:
    r = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519", ip], capture_output=True, text=True,
                       timeout=30, check=False)
    line = next(ln for ln in r.stdout.splitlines() if not ln.startswith("#"))
    return " ".join(line.split()[1:3])


def test_host_keys_pinned_and_a_changed_key_refused(cli):  # noqa: F811
    name = "hk1"
    cluster = tiny(name, SUBNET)
    cfg = cli.config(cluster)
    try:
        t = time.monotonic()
        up = cli.json("launch", str(cfg))
        print(f"launch: {time.monotonic() - t:.1f}s")
        assert up["ok"], up
        nodes = {n["name"]: n for n in up["outputs"]["nodes"]}
        for n in nodes.values():
            assert n["host_key_source"] == "generated"
            assert n["host_key"].startswith("ssh-ed25519 ")
            assert _scan(n["host"]) == n["host_key"], f"{n['name']} serves the key styx made for it"
        known = (cli.tmp / "styx-home" / "known_hosts" / name)

        many = cli.json("exec", "--stack", name, "--all", "--", "hostname")
        assert [(r["node"], r["exit_code"], r["stdout"].strip()) for r in many["nodes"]] == [
            ("head", 0, "head"), ("worker-0", 0, "worker-0")]
        assert known.read_text().splitlines() == [f"styx-hk1-{k} {v['host_key']}" for k, v in nodes.items()]

        # the worker gets another host key (as an impersonator would have), sshd (PID 1) reloads it
        swap = cli.run("exec", "--stack", name, "worker-0", "--",
                       "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' "
                       "-f /etc/ssh/ssh_host_ed25519_key && kill -HUP 1")
        assert swap.returncode == 0, swap.stderr
        for _ in range(50):
            if _scan(nodes["worker-0"]["host"]) != nodes["worker-0"]["host_key"]:
                break
            time.sleep(0.2)
        assert _scan(nodes["worker-0"]["host"]) != nodes["worker-0"]["host_key"]

        many = cli.json("exec", "--stack", name, "--all", "--", "echo reached", expect=1)
        head, worker = many["nodes"]
        assert head["exit_code"] == 0 and head["stdout"] == "reached\n"
        assert worker["exit_code"] == 255 and worker["stdout"] == "", "nothing ran on the impostor"
        assert REFUSED in worker["stderr"] and "pulumi up -s hk1 --replace '" in worker["stderr"], worker["stderr"]
        assert "::hk1-worker-0-sandbox'" in worker["stderr"]

        # the next launch that has to reach the worker (its custom script changed) stops with the message
        cluster["setup"]["custom_scripts"][0]["inline"] = "echo changed > /tmp/hello"
        cfg = cli.config(cluster)
        t = time.monotonic()
        r = cli.run("launch", str(cfg))
        print(f"refused launch: {time.monotonic() - t:.1f}s")
        assert r.returncode != 0
        assert REFUSED in r.stderr, r.stderr[-3000:]
        assert "host key mismatch" in r.stderr
        head_hello = cli.json("exec", "--stack", name, "head", "--", "cat /tmp/hello")
        assert head_hello["stdout"] == "changed\n", "the head (its key unchanged) was updated"
    finally:
        teardown(cli, name, name)


def test_jump_head_workers_only_through_the_head(cli):  # noqa: F811
    import socket

    name = "hk2"
    cluster = tiny(name, SUBNET, ssh={"jump": "head"})
    cfg = cli.config(cluster)
    try:
        t = time.monotonic()
        up = cli.json("launch", str(cfg))
        print(f"launch (workers through the head): {time.monotonic() - t:.1f}s")
        assert up["ok"], up
        nodes = {n["name"]: n for n in up["outputs"]["nodes"]}
        assert nodes["worker-0"]["private"] is True and "private" not in nodes["head"]
        assert up["outputs"]["ssh_jump"]["name"] == "head"
        assert up["phases"]["worker-0"]["custom-hello"] == "done", "the phases reached the worker through the head"

        def dial(ip: str) -> str:
            try:
                socket.create_connection((ip, 22), timeout=3).close()
                return "open"
            except OSError as e:
                return type(e).__name__
        assert dial(nodes["head"]["host"]) == "open"
        assert dial(nodes["worker-0"]["host"]) != "open", "the worker is not reachable from this machine"

        many = cli.json("exec", "--stack", name, "--all", "--", "hostname; cat /tmp/hello")
        assert [(r["node"], r["exit_code"]) for r in many["nodes"]] == [("head", 0), ("worker-0", 0)], many
        assert many["nodes"][1]["stdout"].startswith("worker-0\nhello from worker-0")
        printed = cli.run("ssh", "--stack", name, "worker-0", "--print")
        assert "ProxyCommand=" in printed.stdout and "HostKeyAlias=styx-hk2-head" in printed.stdout
    finally:
        teardown(cli, name, name)
