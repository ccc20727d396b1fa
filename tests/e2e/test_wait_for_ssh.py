"""A host whose SSH refuses connections for a while (a booting VM) is waited for by the gate.

One sandbox host is made directly with sandboxctl, its port 22 is rejected with iptables, and an
`ssh`-backend stack adopts it; after 15 s the port opens and `up` completes.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from tests.e2e.helpers import SANDBOXCTL, Stack, require_engine_and_sandbox

pytestmark = [pytest.mark.engine, pytest.mark.sandbox]

CLUSTER = "e2ewait"
IP = "10.81.0.2"
NET = {"STYX_SB_CLUSTER": CLUSTER, "STYX_SB_SUBNET": "10.81.0.0/24", "STYX_SB_BRIDGE": "sxe2ewait",
       "STYX_SB_GATEWAY": "10.81.0.1", "STYX_SB_PREFIX": "24", "STYX_SB_MTU": "1400"}


def ctl(sub: str, **env) -> str:
    r = subprocess.run(["bash", str(SANDBOXCTL), sub], env={**os.environ, **NET, **env},
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.fixture
def host(tmp_path):
    require_engine_and_sandbox()
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ctl("base")
    ctl("net-up")
    ctl("node-up", STYX_SB_NODE="h", STYX_SB_IP=IP, STYX_SB_PUBKEY=(tmp_path / "id.pub").read_text().strip(),
        STYX_SB_HOSTS=f"{IP} h")
    try:
        yield key
    finally:
        ctl("node-down", STYX_SB_NODE="h")
        ctl("net-down")


def test_gate_waits_for_refused_ssh(host, tmp_path):
    cluster = {"name": "wait", "cloud": "ssh", "ssh": {"private_key_file": str(host), "connect_timeout_s": 120},
               "head": {"host": IP}, "setup": {"ray": {"enabled": False}, "workdir": "/opt/styx/w"}}
    s = Stack("wait", cluster, tmp_path)
    rule = ["OUTPUT", "-d", IP, "-p", "tcp", "--dport", "22", "-j", "REJECT", "--reject-with", "tcp-reset",
            "-m", "comment", "--comment", "styx-e2e-wait"]
    subprocess.run(["iptables", "-I", *rule], check=True)
    opened_at: list[float] = []

    def reopen():
        time.sleep(15)
        subprocess.run(["iptables", "-D", *rule], check=False)
        opened_at.append(time.monotonic())

    t0 = time.monotonic()
    th = threading.Thread(target=reopen)
    th.start()
    try:
        res, _ops = s.up()
    finally:
        th.join()
        subprocess.run(["iptables", "-D", *rule], check=False, capture_output=True)
    assert res.summary.result == "succeeded"
    assert opened_at and opened_at[0] - t0 >= 14
    assert s.outputs()["phase_results"]["head"]["workdir"].startswith("styx workdir: ok")
    s.destroy()
    s.stack.workspace.remove_stack("wait")
