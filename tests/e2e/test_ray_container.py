"""setup.ray.container end to end: a 3-node local cluster (`local.docker: true`, Debian's docker.io
installed by the docker phase) whose Ray runs in one `styx-ray` container per node, the image from a
tarball (toolchain/build-ray-image.sh, built once and kept under /var/cache/styx/images); 3 alive Ray
nodes, a Ray task on every node, then a new image (the same layer, another image config) replaces
exactly ray_container and ray on every node, and Ray is back with 3 nodes in the new containers.
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
IMAGE_DIR = Path(os.environ.get("STYX_CACHE_DIR", "/var/cache/styx")) / "images"

# one task pinned to every alive node: each answers with its node's address
EVERY_NODE_PY = """
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as A
ray.init(address="auto", logging_level="ERROR")
nodes = [n for n in ray.nodes() if n["Alive"]]
@ray.remote(num_cpus=0)
def where():
    import os, ray
    return ray.util.get_node_ip_address() + " " + str(os.path.exists("/.dockerenv"))
print("\\n".join(sorted(ray.get([where.options(scheduling_strategy=A(n["NodeID"], soft=False)).remote()
                                  for n in nodes]))))
"""


def ray_image() -> Path:
    """The Ray image tarball: STYX_TEST_RAY_IMAGE, else built once into the cache."""
    given = os.environ.get("STYX_TEST_RAY_IMAGE")
    if given:
        return Path(given)
    out = IMAGE_DIR / "ray-image-2.60.0.tar"
    if not out.is_file():
        IMAGE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["bash", str(ROOT / "toolchain/build-ray-image.sh"), str(out)], check=True,
                       env={**os.environ, "STYX_RAY_VERSION": "2.60.0"})
    return out


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


def cluster(tarball: Path) -> dict:
    return {
        "name": NAME,
        "cloud": "local",
        "workers": [{"name": "worker", "count": 2}],
        "local": {"subnet": "10.96.0.0/24", "docker": True, "shm_size": "1g"},
        "setup": {"docker": {"mode": "install", "method": "distro"},
                  "env": {"STYX_BOX": "yes"},
                  "ray": {"version": "2.60.0", "container": {"image": "styx-ray:2.60.0", "tarball": str(tarball)}}},
    }


def test_ray_in_containers_three_nodes_a_task_on_each_and_an_image_change_replaces_only_them(cli):  # noqa: F811
    image = ray_image()
    cfg = cli.config(cluster(image))
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"], up
        for node in ("head", "worker-0", "worker-1"):
            assert up["phases"][node]["ray_container"] == "done", up["phases"]
        ex = cli.json("exec", "--stack", NAME, "--container", "--", f"python -c '{EVERY_NODE_PY}'")
        lines = ex["stdout"].strip().splitlines()
        assert len(lines) == 3 and all(ln.endswith(" True") for ln in lines), ex
        env = cli.json("exec", "--stack", NAME, "worker-1", "--container", "--", "echo $STYX_BOX; command -v ray")
        assert env["stdout"].split() == ["yes", "/opt/ray/bin/ray"], env
        st = cli.json("status", "--stack", NAME)["clusters"][0]
        assert st["ray"]["ok"] and st["ray"]["active_nodes"] == 3, st["ray"]

        new = cli.tmp / "ray-image-relabelled.tar"
        relabelled(image, new, "two")
        cfg2 = cli.config(cluster(new))
        again = cli.json("launch", str(cfg2))
        assert again["ok"], again
        assert ran(again["phases"]) == {(n, p) for n in ("head", "worker-0", "worker-1")
                                        for p in ("ray_container-copy", "ray_container", "ray")}, again["phases"]
        label = cli.json("exec", "--stack", NAME, "--all", "--",
                         "docker inspect --format '{{index .Config.Labels \"styx.test\"}}' styx-ray")
        assert [r["stdout"].strip() for r in label["nodes"]] == ["two"] * 3, label
        ex = cli.json("exec", "--stack", NAME, "--container", "--", f"python -c '{EVERY_NODE_PY}'")
        assert len(ex["stdout"].strip().splitlines()) == 3, ex
    finally:
        teardown(cli, NAME, NAME)
