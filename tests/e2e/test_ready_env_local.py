"""`setup.python.env_cache: auto` on real clusters (real engine, real sandboxes, real Ray, the CLI): a 1-node
cluster captures its head's environment; a second cluster (head + 2 workers, the same python setup) takes it
on every node (no installer runs), Ray alive on 3, drift clean; a no-op launch runs nothing; a requirement
edit installs incrementally on the existing environments (and captures the new key); `env_cache: off` makes
the environment as before.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from styx.components.backends.local import ready_env_key
from styx.model.config import parse_cluster
from tests.e2e.test_cli_local import cli as cli  # the fixture
from tests.e2e.test_cli_local import teardown

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

RAY_NODES_PY = ("import ray; ray.init(address='auto', logging_level='ERROR'); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))")


def cluster(name: str, subnet: str, workers: int, **python) -> dict:
    return {"name": name, "cloud": "local", "local": {"subnet": subnet, "shm_size": "1g"},
            "workers": [{"name": "worker", "count": workers}] if workers else [],
            "setup": {"python": python, "ray": {"version": "2.60.0"}}}


def ran(phases: dict) -> set[tuple[str, str]]:
    return {(n, p) for n, ps in phases.items() for p, st in ps.items() if st not in ("unchanged", "pending")}


def envs_dir(c: dict) -> Path:
    return Path(parse_cluster(c).local.cache_dir) / "wheels" / "envs"


def alive(cli, stack: str) -> int:
    ex = cli.json("exec", "--stack", stack, "--", f'python -c "{RAY_NODES_PY}"')
    assert ex["exit_code"] == 0, ex
    return int(ex["stdout"].strip().splitlines()[-1])


def test_capture_then_a_second_cluster_from_it_edits_and_off(cli):
    a = cluster("renva", "10.129.0.0/24", 0)
    b = cluster("renvb", "10.130.0.0/24", 2)
    key = ready_env_key(parse_cluster(a))
    assert ready_env_key(parse_cluster(b)) == key  # the cluster's name and addresses are not in it
    tar = envs_dir(a) / f"{key}.tar"
    for f in (tar, tar.with_name(tar.name + ".sha256")):
        f.unlink(missing_ok=True)  # this test's capture, not an earlier one
    try:
        up = cli.json("launch", str(cli.config(a)))
        assert up["ok"], up
        res = up["outputs"]["phase_results"]["head"]["python_env"]
        assert "from the ready environment" not in res and "created venv" in res, res
        assert tar.is_file() and tar.with_name(tar.name + ".sha256").is_file()
        assert tar.with_name(tar.name + ".sha256").read_text().split()[1] == tar.name

        up = cli.json("launch", str(cli.config(b)))
        assert up["ok"], up
        results = up["outputs"]["phase_results"]
        for node in ("head", "worker-0", "worker-1"):
            assert f"from the ready environment {key}" in results[node]["python_env"], results[node]
            assert "installed" not in results[node]["python_env"], results[node]
            log = cli.json("exec", "--stack", "renvb", node, "--", "cat /var/log/styx/python_env.log")["stdout"]
            assert "ready environment: " in log and "pip install" not in log, log[-3000:]
        assert alive(cli, "renvb") == 3
        clean = cli.json("drift", "--stack", "renvb")
        assert clean["clean"] and not clean["drifted"] and not clean["unreachable"], clean

        again = cli.json("launch", str(cli.config(b)))  # no-op: nothing runs, the capture included
        assert again["ok"] and ran(again["phases"]) == set(), again["phases"]

        edited = copy.deepcopy(b)
        edited["setup"]["python"]["pip_packages"] = ["six==1.16.0"]
        key2 = ready_env_key(parse_cluster(edited))
        up = cli.json("launch", str(cli.config(edited)))
        assert up["ok"], up
        for node in ("head", "worker-0", "worker-1"):
            res = up["outputs"]["phase_results"][node]["python_env"]
            assert "installed: six==1.16.0" in res and "from the ready environment" not in res, res
            assert "created venv" not in res, res  # the existing environment, incrementally
        assert (envs_dir(b) / f"{key2}.tar").is_file()  # the head's environment is still python_env's
        assert alive(cli, "renvb") == 3
        assert cli.json("drift", "--stack", "renvb")["clean"]

        teardown(cli, "renva", "renva")
        off = cluster("renva", "10.129.0.0/24", 0, env_cache="off")
        up = cli.json("launch", str(cli.config(off)))
        assert up["ok"], up
        res = up["outputs"]["phase_results"]["head"]["python_env"]
        assert "from the ready environment" not in res and "created venv" in res and "installed" in res, res
    finally:
        teardown(cli, "renvb", "renvb")
        teardown(cli, "renva", "renva")
