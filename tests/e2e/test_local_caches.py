"""The local backend's two caches on a real cluster (real engine, real Debian mirror and PyPI, real Ray):
`setup.apt_cache: auto` (this machine runs apt-get update once, the nodes unpack its lists instead of their
own update) and `setup.python.wheel_cache_fetch: copy` (not the default: each node copies the wheel cache
into a local folder in one fetch and uv installs from there). Then, with both servers gone, a new worker
still installs jq (its own apt-get update) and Ray (from the index) and joins.

The tests share one cluster and run in order.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest

from styx.components.backends.local import APT_CACHE_PORT, WHEEL_CACHE, WHEEL_CACHE_PORT, wheel_cache_key
from styx.model.config import parse_cluster
from tests.e2e.helpers import launched_cluster, ray_alive

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "wcache"
SUBNET = "10.114.0.0/24"
GATEWAY = "10.114.0.1"
CLUSTER = {
    "name": NAME, "cloud": "local",
    "local": {"subnet": SUBNET, "shm_size": "1g"},
    "head": {}, "workers": [{"name": "worker", "count": 1}],
    "setup": {"packages": ["jq"], "python": {"wheel_cache_fetch": "copy", "env_cache": "off"},
              "ray": {"version": "2.60.0"}},
}


def _pidfile(kind: str) -> str:
    return f"{parse_cluster(CLUSTER).local.state_dir}/.{kind}-cache-{NAME}.pid"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    yield from launched_cluster(NAME, CLUSTER, tmp_path_factory.mktemp(NAME), server_bind=GATEWAY)


def test_apt_lists_and_wheels_come_from_this_machine(ctx):
    s, ips = ctx["stack"], ctx["ips"]
    wheels = f"http://{GATEWAY}:{WHEEL_CACHE_PORT}/{wheel_cache_key(parse_cluster(CLUSTER))}/"
    results = s.outputs()["phase_results"]
    for node, ip in ips.items():
        assert results[node]["system_packages"].endswith("installed 1/1 packages: jq"), results[node]
        apt = s.ssh(ip, "cat /var/log/styx/system_packages.log; jq --version").stdout
        assert re.search(rf"\$ curl .* http://{re.escape(GATEWAY)}:{APT_CACHE_PORT}/\w+/lists\.tar\n=== done in ", apt)
        assert "apt-get -q -o DPkg::Lock::Timeout=300 update" not in apt, apt[-3000:]  # no update of its own
        assert "jq-1." in apt
        py = s.ssh(ip, "cat /var/log/styx/python_env.log").stdout
        assert f"(copy of the wheel cache {wheels} into /tmp/styx-python_env." in py, py[-3000:]
        assert re.search(r"--find-links /tmp/styx-python_env\.\w+ ray\\\[default\\\]==2\.60\.0\n", py), py[-3000:]
        assert "wheel cache unavailable" not in results[node]["python_env"]
        # every logged command says how long it took and the CPU it used
        assert re.search(r"\n=== done in [0-9.]+ s, [0-9.]+ CPU s\n", py)
    assert ray_alive(ctx) == 2


def test_a_worker_still_installs_when_both_caches_are_gone(ctx):
    s = ctx["stack"]
    for kind in ("apt", "wheel"):
        subprocess.run([sys.executable, str(WHEEL_CACHE), "stop", _pidfile(kind)], check=True, capture_output=True)
    grown = copy.deepcopy(CLUSTER)
    grown["workers"][0]["count"] = 2
    s.reconfigure(grown)
    _, ops = s.up()
    changed = ops.changed()
    assert not any(n.startswith(f"{NAME}-apt-") or n.startswith(f"{NAME}-wheel") for n in changed), changed
    res = s.outputs()["phase_results"]["worker-1"]
    assert res["system_packages"].endswith("installed 1/1 packages: jq"), res
    assert "wheel cache unavailable, from the index" in res["python_env"], res
    ctx["ips"] = {n["name"]: n["private_ip"] for n in s.outputs()["nodes"]}
    apt = s.ssh(ctx["ips"]["worker-1"], "cat /var/log/styx/system_packages.log; jq --version").stdout
    assert "apt-get -q -o DPkg::Lock::Timeout=300 update" in apt and "jq-1." in apt, apt[-3000:]
    assert ray_alive(ctx) == 3
