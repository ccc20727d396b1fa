"""`setup.python.installer: pip` on a real cluster (local backend, real engine, real PyPI, real Ray): pip,
not uv, installs Ray on the head and the worker (from the machine's wheel cache), the worker joins, and a
second `up` runs nothing. With test_fast_install (uv, the default) this is issue 17's "uv and pip both give a
working Ray".
"""

from __future__ import annotations

import pytest

from styx.components.backends.local import WHEEL_CACHE_PORT, wheel_cache_key
from styx.model.config import parse_cluster
from tests.e2e.helpers import launched_cluster, ray_alive

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "pipinst"
SUBNET = "10.141.0.0/24"
GATEWAY = "10.141.0.1"
CLUSTER = {
    "name": NAME, "cloud": "local",
    "local": {"subnet": SUBNET, "shm_size": "1g"},
    "head": {}, "workers": [{"name": "worker", "count": 1}],
    "setup": {"python": {"installer": "pip", "env_cache": "off"}, "ray": {"version": "2.60.0"}},
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    yield from launched_cluster(NAME, CLUSTER, tmp_path_factory.mktemp(NAME), server_bind=GATEWAY)


def test_pip_installs_a_working_ray_on_every_node(ctx):
    s, ips = ctx["stack"], ctx["ips"]
    url = f"http://{GATEWAY}:{WHEEL_CACHE_PORT}/{wheel_cache_key(parse_cluster(CLUSTER))}/"
    results = s.outputs()["phase_results"]
    for node, ip in ips.items():
        line = results[node]["python_env"]
        assert "pip installed: ray[default]==2.60.0" in line, line
        assert "uv" not in line and "wheel cache unavailable" not in line, line
        log = s.ssh(ip, "cat /var/log/styx/python_env.log").stdout
        assert "/opt/styx/venv/bin/python -m pip install" in log and f"--find-links {url}" in log, log[-3000:]
        assert "uv pip install" not in log, log[-3000:]
        r = s.ssh(ip, "ray --version; test -e /opt/styx/tools/uv && echo has-uv || echo no-uv")
        assert "2.60.0" in r.stdout and "no-uv" in r.stdout, r.stdout + r.stderr
    assert ray_alive(ctx) == 2


def test_a_second_up_runs_nothing(ctx):
    _, ops = ctx["stack"].up()
    assert ops.changed() == {}, ops.changed()
