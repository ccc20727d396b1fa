"""Images on cloud local, for real (real engine, real sandboxes, real apt/PyPI, real Ray): launch a cluster,
make an image of its head (`styx.app.images.create`, what `styx image create` runs), launch a 3-node cluster
whose nodes boot from it, and check that the phases find the installs done (system_packages and python_env
`skipped`: Ray is not installed again), Ray is alive on the 3 nodes, nothing of the first cluster (its key,
its host keys, its secret env, its Ray session, its logs) is on them, and a config that differs from the
image (another package, another env var) still converges. The image cannot be deleted while nodes sit on
it; after the cluster is down it can.

The tests share both clusters and run in order.
"""

from __future__ import annotations

import contextlib
import copy
import shutil

import pytest

from styx.app import api, images
from styx.app.project import StyxError, make_engine
from tests.e2e.helpers import RAY_ENV, leftovers, require_engine_and_sandbox, sandbox_status

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

IMAGE = "iimg-e2e"
SETUP = {"packages": ["jq"], "python": {"pip_packages": ["six==1.16.0"]}, "ray": {"version": "2.60.0"}}
SOURCE = {
    "name": "iimgsrc", "cloud": "local", "local": {"subnet": "10.125.0.0/24", "shm_size": "1g"},
    "head": {}, "workers": [],
    "setup": {**SETUP, "env": {"FROM_SOURCE": "1"}, "secret_env": {"SOURCE_TOKEN": "src-secret-0c1d"}},
}
FROM_IMAGE = {
    "name": "iimgnew", "cloud": "local", "local": {"subnet": "10.126.0.0/24", "shm_size": "1g"},
    "head": {"image": IMAGE}, "workers": [{"name": "worker", "count": 2, "image": IMAGE}],
    "setup": {**SETUP, "env": {"FROM_IMAGE": "1"}},
}


def _launch(cluster: dict, backend: str):
    return api.launch(copy.deepcopy(cluster), stack=cluster["name"], backend=backend, failover=False,
                      on_info=lambda _m: None)


def _outputs(name: str, backend: str) -> dict:
    return make_engine(backend).open(name).outputs()


def _sh(name: str, backend: str, node: str, command: str) -> str:
    r = api.exec(name, command, node=node, backend=backend, timeout=180)
    assert r.exit_code == 0, (node, command, r.stdout, r.stderr)
    return r.stdout


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    require_engine_and_sandbox()
    backend = f"file://{tmp_path_factory.mktemp('iimg') / 'state'}"
    launched = []
    try:
        _launch(SOURCE, backend)
        launched.append(SOURCE["name"])
        made = images.create(IMAGE, "head", stack=SOURCE["name"], backend=backend)
        launched.append(FROM_IMAGE["name"])
        new = _launch(FROM_IMAGE, backend)
        yield {"backend": backend, "made": made, "new": new}
    finally:
        try:
            for name in reversed(launched):
                with contextlib.suppress(StyxError):
                    api.down(name, backend=backend, on_info=lambda _m: None)
        finally:
            with contextlib.suppress(StyxError):
                images.delete(IMAGE, backend=backend)
    for name in (SOURCE["name"], FROM_IMAGE["name"]):
        assert not leftovers(sandbox_status(name)), name
    assert not images.list_images(backend)
    shutil.rmtree(make_engine(backend).work_dir("_").parent, ignore_errors=True)  # this backend's workspaces


def test_the_image_is_listed_and_named_as_a_nodes_image(ctx):
    made = ctx["made"]
    assert made["image"] == IMAGE and made["cloud"] == "local" and made["node"] == "head"
    listed = {r["name"]: r for r in images.list_images(ctx["backend"])}
    assert listed[IMAGE]["stack"] == SOURCE["name"] and listed[IMAGE]["cluster"] == SOURCE["name"]


def test_nodes_from_the_image_skip_the_installs_and_ray_is_alive(ctx):
    results = _outputs(FROM_IMAGE["name"], ctx["backend"])["phase_results"]
    assert set(results) == {"head", "worker-0", "worker-1"}
    for phases in results.values():
        assert phases["system_packages"].startswith("styx system_packages: skipped: all 1 packages"), phases
        assert phases["python_env"].startswith("styx python_env: skipped:"), phases
        assert "up to date" in phases["python_env"], phases
        assert phases["ray"].startswith("styx ray: ok:"), phases
        assert phases["env_vars"].startswith("styx env_vars: ok"), phases
    out = _sh(FROM_IMAGE["name"], ctx["backend"], "head",
              RAY_ENV + "python -c 'import ray; ray.init(); print(sum(n[\"Alive\"] for n in ray.nodes()))'")
    assert int(out.strip().splitlines()[-1]) == 3


def test_nothing_of_the_source_cluster_is_on_the_new_nodes(ctx):
    b = ctx["backend"]
    src_key = _sh(SOURCE["name"], b, "head", "cat /root/.ssh/authorized_keys").strip()
    assert src_key
    for node in ("head", "worker-0", "worker-1"):
        out = _sh(FROM_IMAGE["name"], b, node, "cat /root/.ssh/authorized_keys /etc/styx/env.sh; "
                  "grep -rl src-secret-0c1d /etc /var/log /tmp /root /var/lib/styx 2>/dev/null; ls /tmp/ray; true")
        assert src_key not in out, out
        assert "FROM_IMAGE" in out and "FROM_SOURCE" not in out, out
        assert "src-secret-0c1d" not in out, out
    # each node has the host key its own stack made and pinned (api.exec checked it), not the source's
    src_hk = {n["host_key"] for n in _outputs(SOURCE["name"], b)["nodes"]}
    assert not src_hk & {n["host_key"] for n in _outputs(FROM_IMAGE["name"], b)["nodes"]}


def test_a_config_that_differs_from_the_image_converges(ctx):
    b = ctx["backend"]
    changed = copy.deepcopy(FROM_IMAGE)
    changed["setup"]["packages"] = ["jq", "tree"]
    changed["setup"]["env"] = {"FROM_IMAGE": "2", "EXTRA": "x"}
    _launch(changed, b)
    results = _outputs(FROM_IMAGE["name"], b)["phase_results"]
    for node in ("head", "worker-0", "worker-1"):
        assert results[node]["system_packages"].startswith("styx system_packages: ok"), results[node]
        out = _sh(FROM_IMAGE["name"], b, node, "command -v tree jq; grep -c EXTRA /etc/styx/env.sh")
        assert "/usr/bin/tree" in out and "/usr/bin/jq" in out, out


def test_the_image_cannot_go_while_nodes_sit_on_it(ctx):
    with pytest.raises(StyxError, match="is the root of running nodes"):
        images.delete(IMAGE, backend=ctx["backend"])
    assert IMAGE in {r["name"] for r in images.list_images(ctx["backend"])}
