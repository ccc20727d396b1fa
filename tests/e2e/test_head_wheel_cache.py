"""The head's wheel cache for real (`cloud: ssh` over sandbox hosts made with sandboxctl, the real engine, real
PyPI, real Ray; `setup.python.wheel_cache: auto`, the default): the head fetches the cluster's wheels once and
serves them on its private address; the head and the worker install Ray from it (their logs say so) and Ray
comes up; a no-op up runs nothing; with the head's server stopped, a new worker still installs from the index
and joins; `down` stops the server.

The tests share one cluster and run in order.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from styx.components.phases import HEAD_WHEEL_CACHE_DIR, HEAD_WHEEL_CACHE_PORT, wheel_cache_key
from styx.model.config import parse_cluster
from tests.e2e.helpers import RAY_ENV, SANDBOXCTL, Stack, require_engine_and_sandbox

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "hwcache"
HEAD, W0, W1 = "10.121.0.2", "10.121.0.10", "10.121.0.11"
NET = {"STYX_SB_CLUSTER": NAME, "STYX_SB_SUBNET": "10.121.0.0/24", "STYX_SB_BRIDGE": "sxhwcache",
       "STYX_SB_GATEWAY": "10.121.0.1", "STYX_SB_PREFIX": "24", "STYX_SB_MTU": "1400"}
HOSTS = {"head": HEAD, "worker-0": W0, "worker-1": W1}
SERVER = f"http.server --bind {HEAD} --directory {HEAD_WHEEL_CACHE_DIR}/wheels {HEAD_WHEEL_CACHE_PORT}"


def ctl(sub: str, **env) -> str:
    r = subprocess.run(["bash", str(SANDBOXCTL), sub], env={**os.environ, **NET, **env},
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def cluster(key, workers: int) -> dict:
    return {"name": NAME, "cloud": "ssh", "ssh": {"private_key_file": str(key)},
            "head": {"host": HEAD}, "workers": [{"name": "worker", "hosts": [W0, W1][:workers]}],
            "setup": {"ray": {"version": "2.60.0"}}}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    require_engine_and_sandbox()
    tmp = tmp_path_factory.mktemp(NAME)
    key = tmp / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = (tmp / "id.pub").read_text().strip()
    ctl("base")
    ctl("net-up")
    s = None
    try:
        for node, ip in HOSTS.items():
            ctl("node-up", STYX_SB_NODE=node, STYX_SB_IP=ip, STYX_SB_PUBKEY=pub, STYX_SB_HOSTS=f"{ip} {node}")
        s = Stack(NAME, cluster(key, 1), tmp)
        s._key = key  # an adopted host's key is the user's (no ssh_private_key output)
        s.up()
        yield {"stack": s, "key": key}
    finally:
        try:
            if s is not None:
                s.destroy()
                s.stack.workspace.remove_stack(s.name)
        finally:
            for node in HOSTS:
                ctl("node-down", STYX_SB_NODE=node)
            ctl("net-down")


def _alive(s: Stack) -> int:
    r = s.ssh(HEAD, RAY_ENV + "python -c 'import ray; ray.init(); print(sum(n[\"Alive\"] for n in ray.nodes()))'",
              timeout=180)
    return int(r.stdout.strip().splitlines()[-1])


def test_the_head_fills_once_and_the_head_and_worker_install_ray_from_it(ctx):
    s = ctx["stack"]
    key = wheel_cache_key(parse_cluster(cluster(ctx["key"], 1)), "system")
    url = f"http://{HEAD}:{HEAD_WHEEL_CACHE_PORT}/{key}/"
    results = s.outputs()["phase_results"]
    line = results["head"]["wheel_cache"]
    assert line.startswith(f"styx wheel_cache: ok: {key}: ") and " filled in " in line, line
    assert f"server on {HEAD}:{HEAD_WHEEL_CACHE_PORT}: started" in line, line
    assert "wheel_cache" not in results["worker-0"]
    for node in ("head", "worker-0"):
        line = results[node]["python_env"]
        assert "uv installed: ray[default]==2.60.0" in line and "installed uv 0.13.9" in line, line
        assert "wheel cache unavailable" not in line and "uv unavailable" not in line, line
        log = s.ssh(HOSTS[node], "cat /var/log/styx/python_env.log").stdout
        # one install, from the head's cache alone (--no-index: nothing else was asked)
        installs = [ln for ln in log.splitlines() if "/uv pip install " in ln]
        assert len(installs) == 1 and f"--no-index --find-links {url} ray\\[default\\]==2.60.0" in installs[0], \
            log[-3000:]
    # the head's server log: both nodes fetched the ray wheel from it, over the private network
    served = s.ssh(HEAD, f"cat {HEAD_WHEEL_CACHE_DIR}/server.log").stdout
    for ip in (HEAD, W0):
        assert any(ln.startswith(ip) and "/ray-2.60.0-" in ln and '" 200 ' in ln for ln in served.splitlines()), ip
    # bound to the private address only
    assert s.ssh(HEAD, f"pgrep -f '{SERVER}'").returncode == 0
    assert _alive(s) == 2


def test_a_noop_up_runs_nothing(ctx):
    _, ops = ctx["stack"].up()
    assert not ops.changed(), ops.changed()


def test_a_worker_still_installs_from_the_index_with_the_heads_server_stopped(ctx):
    s = ctx["stack"]
    r = s.ssh(HEAD, f"python3 {HEAD_WHEEL_CACHE_DIR}/wheel_cache.py stop {HEAD_WHEEL_CACHE_DIR}/server.pid")
    assert "stopped" in r.stdout, r.stdout + r.stderr
    s.reconfigure(cluster(ctx["key"], 2))
    _, ops = s.up()
    changed = ops.changed()
    assert f"{NAME}-head-wheel_cache" not in changed and f"{NAME}-worker-0-python_env" not in changed, changed
    line = s.outputs()["phase_results"]["worker-1"]["python_env"]
    assert "uv installed: ray[default]==2.60.0" in line and "wheel cache unavailable, from the index" in line, line
    log = s.ssh(W1, "cat /var/log/styx/python_env.log").stdout
    installs = [ln for ln in log.splitlines() if "/uv pip install " in ln]
    # the cache first (refused: its server is gone), then the index
    assert len(installs) == 2 and "--no-index --find-links http://" in installs[0], log[-3000:]
    assert "--no-index" not in installs[1], log[-3000:]
    assert _alive(s) == 3


def test_drift_sees_the_stopped_server_and_down_stops_a_running_one(ctx):
    from styx.app import drift

    s = ctx["stack"]
    # `styx drift`'s check of the head: the phase's own verify reports the stopped server
    dep = s.stack.export_stack().deployment
    report = drift.check(NAME, dep, s.outputs(), s.cluster, nodes=["head"])
    [head] = report.nodes
    [wc] = [p for p in head.phases if p.phase == "wheel_cache"]
    assert wc.status == "drifted" and "the wheel cache server is not running" in wc.detail, wc
    # the server started again (as the phase does on `styx repair`), then `down` (the phase's undo) stops it
    s.ssh(HEAD, f"python3 {HEAD_WHEEL_CACHE_DIR}/wheel_cache.py serve {HEAD_WHEEL_CACHE_DIR}/wheels {HEAD} "
                f"{HEAD_WHEEL_CACHE_PORT} {HEAD_WHEEL_CACHE_DIR}/server.pid")
    assert s.ssh(HEAD, f"pgrep -f '{SERVER}'").returncode == 0
    pins = s.pins()  # the outputs go with the stack
    s.destroy()

    def on_head(command: str) -> int:
        return subprocess.run(["ssh", "-i", str(ctx["key"]), *pins.options(HEAD), "-o", "BatchMode=yes",
                               "-o", "LogLevel=ERROR", f"root@{HEAD}", command], capture_output=True,
                              timeout=60, check=False).returncode

    assert on_head(f"pgrep -f '{SERVER}'") == 1
    # the wheels stay on the adopted host (a later cluster with these requirements finds them complete)
    assert on_head(f"ls {HEAD_WHEEL_CACHE_DIR}/wheels/*/.complete") == 0
