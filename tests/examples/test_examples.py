"""The examples run for real: the API script launches, execs, re-launches (no changes), reads status and
tears down a local cluster; the Pulumi program with a styx Cluster next to a `command.local.Command`
goes through `pulumi up` and `pulumi destroy` on the official Python language host and plugins.

Each has its own subnet and cluster name, and checks that no sandbox is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.e2e.helpers import ROOT, require_engine_and_sandbox, sandbox_status

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture
def env(tmp_path):
    require_engine_and_sandbox()
    from styx.app import engine

    e = {**os.environ, "STYX_HOME": str(tmp_path / "styx-home"), "PULUMI_HOME": str(engine.pulumi_home()),
         "STYX_PULUMI_BIN_DIR": str(engine.toolchain_bin()), "RAY_USAGE_STATS_ENABLED": "0"}
    for k in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE",
              "STYX_LOCAL_PREFLIGHT"):
        e.pop(k, None)
    return e


def test_api_script(env, tmp_path):
    name = "apiex"
    try:
        r = subprocess.run([sys.executable, str(ROOT / "examples" / "api" / "cluster_script.py"), "--name", name,
                            "--subnet", "10.87.0.0/24"], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=1200, stdin=subprocess.DEVNULL, check=False)
        print(r.stdout, r.stderr[-4000:])
        assert r.returncode == 0, r.stderr[-3000:]
        out = r.stdout.splitlines()
        assert out[0].startswith(f"launched {name}: 2 nodes in ")
        assert sorted(ln.split(":")[0] for ln in out if ln.startswith("exec ")) == ["exec head", "exec worker-0"]
        assert all(": exit 0: hello from " in ln for ln in out if ln.startswith("exec "))
        [again] = [ln for ln in out if ln.startswith("second launch changes: ")]
        assert again.startswith("second launch changes: [('same', ") and "create" not in again, again
        assert f"status {name}: up; head ready=True, worker-0 ready=True" in out
        assert f"down {name}: removed=True" in out
    finally:
        assert sandbox_status(name).get("clean") is True


def test_pulumi_program_with_a_styx_cluster(env, tmp_path):
    from pulumi import automation as auto

    from styx.app import engine

    work = tmp_path / "program"
    shutil.copytree(ROOT / "examples" / "pulumi-program", work)
    proj = yaml.safe_load((work / "Pulumi.yaml").read_text())
    proj["runtime"]["options"]["virtualenv"] = sys.prefix  # the venv running the tests (styx installed)
    (work / "Pulumi.yaml").write_text(yaml.safe_dump(proj))
    ws_env = {**engine.engine_env("example-passphrase"), "STYX_HOME": env["STYX_HOME"],
              "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}"}
    (tmp_path / "state").mkdir()
    ws = auto.LocalWorkspace(work_dir=str(work), pulumi_home=str(engine.pulumi_home()), env_vars=ws_env,
                             pulumi_command=auto.PulumiCommand(root=str(engine.toolchain_bin().parent),
                                                               skip_version_check=True))
    stack = auto.Stack.create("dev", ws)
    stack.set_config("name", auto.ConfigValue("progex"))
    stack.set_config("subnet", auto.ConfigValue("10.88.0.0/24"))
    try:
        up = stack.up(color="never", on_output=print)
        outs = {k: v.value for k, v in up.outputs.items()}
        assert outs["announce"] == f"the head is at {outs['head_ip']}"
        assert [n["name"] for n in outs["nodes"]] == ["head"]
        types = {r["type"] for r in json.loads(json.dumps(stack.export_stack().deployment))["resources"]}
        assert {"styx:index:Cluster", "command:local:Command", "command:remote:Command"} <= types
        again = stack.preview(color="never")
        assert set(again.change_summary) == {"same"}, again.change_summary
    finally:
        stack.destroy(color="never", on_output=print)
        stack.workspace.remove_stack("dev")
        assert sandbox_status("progex").get("clean") is True
