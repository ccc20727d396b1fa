"""setup.ray.container end to end: a 3-node local cluster (`local.docker: true`, Debian's docker.io
installed by the docker phase) whose Ray runs in one `styx-ray` container per node, the image from a
tarball (`toolchain/build-image-tar.sh ray`, the Kubernetes tests' Ray image, built once and kept under
$STYX_HOME/images); the user's pip
package (tomli-w, not in the image) and a custom script installed/run inside the containers (not on the
hosts), a host script (run_in: host) on the hosts; 3 alive Ray nodes, a Ray task on every node that
imports the package; then a new image (the same layer, another image config) replaces exactly
ray_container, the in-container phases and ray on every node (the host script does not run again), and
Ray is back with 3 nodes in the new containers, the package and the script's file in them again.
Always `styx down` in a finally.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT
from tests.e2e.test_cli_local import cli, teardown  # noqa: F401 (the fixture)
from tests.e2e.test_drift import ran

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "rbox"
PIP_PACKAGE = "tomli-w==1.2.0"  # tiny, pure Python, not in the image
INSIDE = ("container_pip", "custom-marker")
NODES = ("head", "worker-0", "worker-1")
# on every node, inside the container and on the host: the package importable? the script's file?
WHERE = ("python -c 'import tomli_w; print(tomli_w.__name__)' 2>/dev/null || echo no-package; "
         "cat /tmp/styx-marker 2>/dev/null || echo no-marker")
IMAGE = "styx.local/ray:2.60.0"  # what `toolchain/build-image-tar.sh ray 2.60.0` builds

# one task pinned to every alive node: each answers with its node's address
EVERY_NODE_PY = """
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as A
ray.init(address="auto", logging_level="ERROR")
nodes = [n for n in ray.nodes() if n["Alive"]]
@ray.remote(num_cpus=0)
def where():
    import os, ray, tomli_w  # the pip package, in the Python of the container
    here = ray.util.get_node_ip_address() + " " + str(os.path.exists("/.dockerenv"))
    return here + " " + tomli_w.dumps({"a": 1}).strip()
print("\\n".join(sorted(ray.get([where.options(scheduling_strategy=A(n["NodeID"], soft=False)).remote()
                                  for n in nodes]))))
"""


def ray_image() -> Path:
    """The Ray image tarball: STYX_TEST_RAY_IMAGE, else built once into the cache."""
    given = os.environ.get("STYX_TEST_RAY_IMAGE")
    if given:
        return Path(given)
    out = subprocess.run(["bash", str(ROOT / "toolchain/build-image-tar.sh"), "ray", "2.60.0"], check=True,
                         capture_output=True, text=True).stdout.strip()  # cached: prints the tarball's path
    return Path(out)


def relabelled(src: Path, dst: Path, label: str) -> None:
    """`src` with the same layer and another image config (a label): a new image id, same tag."""
    with tarfile.open(src) as t:
        names = {m.name.removeprefix("./"): m for m in t.getmembers()}
        manifest = json.load(t.extractfile(names["manifest.json"]))
        cfg = json.load(t.extractfile(names[manifest[0]["Config"]]))
        cfg["config"]["Labels"] = {"styx.test": label}
        body = json.dumps(cfg).encode()
        import hashlib
        import io
        name = hashlib.sha256(body).hexdigest() + ".json"
        manifest[0]["Config"] = name
        mbody = json.dumps(manifest).encode()
        with tarfile.open(dst, "w") as out:
            for m in t.getmembers():
                if m.name.endswith(".json"):  # the old manifest and image config
                    continue
                out.addfile(m, t.extractfile(m) if m.isfile() else None)
            for n, b in ((name, body), ("manifest.json", mbody)):
                info = tarfile.TarInfo(n)
                info.size = len(b)
                out.addfile(info, io.BytesIO(b))


def assert_inside_not_on_hosts(c) -> None:
    """The pip package and the custom script's file are in every container, not on the hosts."""
    inside = c.json("exec", "--stack", NAME, "--all", "--container", "--", WHERE)
    got = {r["node"]: r["stdout"].split() for r in inside["nodes"]}
    assert got == {n: ["tomli_w", "yes", n, got[n][-1]] for n in NODES}, inside
    host = c.json("exec", "--stack", NAME, "--all", "--", WHERE.replace("python ", "python3 "))
    assert {r["node"]: r["stdout"].split() for r in host["nodes"]} == {n: ["no-package", "no-marker"]
                                                                       for n in NODES}, host


def host_markers(c) -> dict[str, str]:
    out = c.json("exec", "--stack", NAME, "--all", "--", "cat /tmp/styx-host-marker")
    return {r["node"]: r["stdout"].strip() for r in out["nodes"]}


def drift(c) -> dict:
    r = c.run("drift", "--json", "--stack", NAME)
    assert r.returncode in (0, 3), r.stderr
    return json.loads(r.stdout)


def cluster(tarball: Path) -> dict:
    return {
        "name": NAME,
        "cloud": "local",
        "workers": [{"name": "worker", "count": 2}],
        "local": {"subnet": "10.96.0.0/24", "docker": True, "shm_size": "1g"},
        "setup": {"docker": {"mode": "install", "method": "distro"},
                  "env": {"STYX_BOX": "yes"},
                  "python": {"pip_packages": [PIP_PACKAGE]},
                  "custom_scripts": [
                      # in the container (the default with setup.ray.container), with the cluster's env
                      {"name": "marker", "inline": 'echo "$STYX_BOX $STYX_NODE_NAME $(id -u)" > /tmp/styx-marker',
                       "check": "test -s /tmp/styx-marker"},
                      {"name": "hostside", "inline": "date +%s%N > /tmp/styx-host-marker", "run_in": "host"},
                  ],
                  "ray": {"version": "2.60.0", "container": {"image": IMAGE, "tarball": str(tarball)}}},
    }


def test_ray_in_containers_three_nodes_a_task_on_each_and_an_image_change_replaces_only_them(cli):  # noqa: F811
    image = ray_image()
    cfg = cli.config(cluster(image))
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"], up
        for node in NODES:
            for ph in ("ray_container", *INSIDE, "custom-hostside"):
                assert up["phases"][node][ph] == "done", up["phases"]
            assert "python_env" not in up["phases"][node], up["phases"]  # nothing pip-installed on the hosts
        assert_inside_not_on_hosts(cli)
        ex = cli.json("exec", "--stack", NAME, "--container", "--", f"python -c '{EVERY_NODE_PY}'")
        lines = ex["stdout"].strip().splitlines()
        assert len(lines) == 3 and all(ln.endswith(" True a = 1") for ln in lines), ex
        checked = drift(cli)
        statuses = {(n["node"], p["phase"]): p["status"] for n in checked["nodes"] for p in n["phases"]}
        assert {statuses[(n, p)] for n in NODES for p in INSIDE} == {"ok"}, checked
        host_before = host_markers(cli)
        env = cli.json("exec", "--stack", NAME, "worker-1", "--container", "--", "echo $STYX_BOX; command -v ray")
        assert env["stdout"].split() == ["yes", "/opt/styx/venv/bin/ray"], env
        st = cli.json("status", "--stack", NAME)["clusters"][0]
        assert st["ray"]["ok"] and st["ray"]["active_nodes"] == 3, st["ray"]

        new = cli.tmp / "ray-image-relabelled.tar"
        relabelled(image, new, "two")
        cfg2 = cli.config(cluster(new))
        again = cli.json("launch", str(cfg2))
        assert again["ok"], again
        replaced = ("ray_container-copy", "ray_container", *INSIDE, "ray")
        assert ran(again["phases"]) == {(n, p) for n in NODES for p in replaced}, again["phases"]
        assert host_markers(cli) == host_before  # the host script did not run again
        assert_inside_not_on_hosts(cli)
        label = cli.json("exec", "--stack", NAME, "--all", "--",
                         "docker inspect --format '{{index .Config.Labels \"styx.test\"}}' styx-ray")
        assert [r["stdout"].strip() for r in label["nodes"]] == ["two"] * 3, label
        ex = cli.json("exec", "--stack", NAME, "--container", "--", f"python -c '{EVERY_NODE_PY}'")
        assert len(ex["stdout"].strip().splitlines()) == 3 and "a = 1" in ex["stdout"], ex
    finally:
        teardown(cli, NAME, NAME)
