"""The docker phase installing for real on a local sandbox host (`local.docker: true`).

One head-only cluster: Debian's docker.io installed by the phase, dockerd started without systemd,
`docker info` answering, an image built here (`toolchain/build-test-image.sh`, no registry) loaded
and run; with STYX_TEST_RAY_IMAGE (a `toolchain/build-image-tar.sh ray` tarball) also `ray --version`
in the Ray image; a second launch leaves the phase unchanged. Always `styx down` in a finally.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e.helpers import ROOT
from tests.e2e.test_cli_local import cli, teardown  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]


def test_docker_installed_daemon_answers_and_a_loaded_image_runs(cli):  # noqa: F811
    name = "dkdock"
    cfg = cli.config({
        "name": name,
        "cloud": "local",
        "workers": [],
        "local": {"subnet": "10.95.0.0/24", "docker": True},
        "setup": {"ray": {"enabled": False}, "docker": {"mode": "install", "method": "distro"}},
    })
    image = cli.tmp / "styx-test.tar"
    subprocess.run(["bash", str(ROOT / "toolchain/build-test-image.sh"), str(image)], check=True)
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"], up
        assert up["phases"]["head"]["docker"] == "done", up["phases"]

        info = cli.json("exec", "--stack", name, "head", "--",
                        "docker info --format '{{.ServerVersion}} {{.Driver}} {{.CgroupVersion}}'")
        assert info["exit_code"] == 0, info
        version, driver, _ = info["stdout"].split()
        assert version.startswith("20.10") and driver == "overlay2", info["stdout"]

        cli.json("cp", "--stack", name, str(image), "head:/tmp/styx-test.tar")
        run = cli.json("exec", "--stack", name, "head", "--",
                       "docker load -i /tmp/styx-test.tar >/dev/null && docker run --rm styx-test:latest echo ok")
        assert run["exit_code"] == 0 and run["stdout"] == "ok\n", run

        ray_image = os.environ.get("STYX_TEST_RAY_IMAGE")  # a tarball of `toolchain/build-image-tar.sh ray`
        if ray_image:
            cli.json("cp", "--stack", name, ray_image, "head:/tmp/styx-ray.tar")
            ray = cli.json("exec", "--stack", name, "head", "--", "docker load -i /tmp/styx-ray.tar >/dev/null && "
                           "rm /tmp/styx-ray.tar && docker run --rm $(docker images styx.local/ray "
                           "--format '{{.Repository}}:{{.Tag}}' | head -n1) ray --version")
            assert ray["exit_code"] == 0 and ray["stdout"].startswith("ray, version "), ray

        again = cli.json("launch", str(cfg))
        assert again["ok"] and again["phases"]["head"]["docker"] == "unchanged", again["phases"]
    finally:
        teardown(cli, name, name)
