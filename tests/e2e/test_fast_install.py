"""Faster installs on a real cluster (local backend, real engine, real PyPI, real Ray): with the defaults
(`setup.python.installer: uv`, `wheel_cache: auto`) the operator's machine fetches the wheels once and
serves them on the bridge; the head and the worker install Ray with uv from that cache and Ray comes up.
Then, with the cache server gone, a new worker still installs (uv, from the index) and joins.

The tests share one cluster and run in order.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from styx.components.backends.local import WHEEL_CACHE, WHEEL_CACHE_PORT, wheel_cache_key
from styx.model.config import parse_cluster
from tests.e2e.helpers import launched_cluster, ray_alive

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "fxinst"
SUBNET = "10.92.0.0/24"
GATEWAY = "10.92.0.1"
CLUSTER = {
    "name": NAME, "cloud": "local",
    "local": {"subnet": SUBNET, "shm_size": "1g"},
    "head": {}, "workers": [{"name": "worker", "count": 1}],
    # env_cache off: this tests the wheel cache itself (a ready environment of the same key would skip the install)
    "setup": {"python": {"env_cache": "off"}, "ray": {"version": "2.60.0"}},
}


def _pidfile() -> str:
    return f"{parse_cluster(CLUSTER).local.state_dir}/.wheel-cache-{NAME}.pid"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    yield from launched_cluster(NAME, CLUSTER, tmp_path_factory.mktemp(NAME), server_bind=GATEWAY)


def test_the_cache_serves_the_head_and_the_worker_uv_installs_a_working_ray(ctx):
    s, ips = ctx["stack"], ctx["ips"]
    key = wheel_cache_key(parse_cluster(CLUSTER))
    url = f"http://{GATEWAY}:{WHEEL_CACHE_PORT}/{key}/"
    results = s.outputs()["phase_results"]
    for node, ip in ips.items():
        line = results[node]["python_env"]
        assert "uv installed: ray[default]==2.60.0" in line and "installed uv 0.13.9" in line, line
        assert "wheel cache unavailable" not in line and "uv unavailable" not in line, line
        log = s.ssh(ip, "cat /var/log/styx/python_env.log").stdout
        assert f"--no-index --find-links {url} ray\\[default\\]==2.60.0" in log  # as logged: %q
        assert "/opt/styx/tools/uv/bin/uv pip install" in log
        # uv came straight from its wheel and made the environment, pip seeded from the cache: no ensurepip
        assert "uv-0.13.9-py3-none-manylinux" in log, log[-3000:]  # the wheel the stdlib fetcher took
        assert "/opt/styx/tools/uv/bin/uv venv --seed" in log and "python -m venv instead" not in log, log[-3000:]
        r = s.ssh(ip, "/opt/styx/venv/bin/pip --version")
        assert r.returncode == 0 and "/opt/styx/venv/" in r.stdout, r.stdout + r.stderr
        r = s.ssh(ip, "ray --version; /opt/styx/tools/uv/bin/uv --version; ls /opt/styx/venv/bin/uv || true")
        assert "2.60.0" in r.stdout and "uv 0.13.9" in r.stdout and "/opt/styx/venv/bin/uv" not in r.stdout
    # the server's log: every node fetched the ray wheel from it
    served = Path(_pidfile().removesuffix(".pid") + ".log").read_text()
    for ip in ips.values():
        assert any(ln.startswith(ip) and "/ray-2.60.0-" in ln and '" 200 ' in ln for ln in served.splitlines()), ip
    assert ray_alive(ctx) == 2


def test_a_worker_still_installs_when_the_cache_is_gone(ctx):
    s = ctx["stack"]
    subprocess.run([sys.executable, str(WHEEL_CACHE), "stop", _pidfile()], check=True, capture_output=True)
    grown = copy.deepcopy(CLUSTER)
    grown["workers"][0]["count"] = 2
    s.reconfigure(grown)
    _, ops = s.up()
    changed = ops.changed()
    assert f"{NAME}-wheels" not in changed and f"{NAME}-wheel-server" not in changed, changed
    line = s.outputs()["phase_results"]["worker-1"]["python_env"]
    assert "uv installed: ray[default]==2.60.0" in line and "wheel cache unavailable, from the index" in line, line
    assert "installed uv 0.13.9" in line and "uv unavailable" not in line, line  # uv's wheel from the index
    ctx["ips"] = {n["name"]: n["private_ip"] for n in s.outputs()["nodes"]}
    assert ray_alive(ctx) == 3
    print(json.dumps(s.outputs()["phase_results"]["worker-1"], indent=1))
