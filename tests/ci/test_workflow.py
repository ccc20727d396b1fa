""".github/workflows/preview.yml: actionlint (built by toolchain/install-actionlint.sh from the Go
module proxy, cached under ~/.styx/toolchain; its shellcheck pass on `run:` scripts uses the venv's
shellcheck) and what the workflow must say (triggers, permissions, the secrets README names)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"


def _actionlint() -> str:
    home = Path(os.environ.get("STYX_HOME", Path.home() / ".styx"))
    cached = list((home / "toolchain").glob("actionlint-v*/actionlint"))
    if not cached and shutil.which("go") is None:
        pytest.skip("actionlint not built and no Go to build it: run `bash toolchain/install-actionlint.sh`")
    r = subprocess.run(["bash", str(ROOT / "toolchain" / "install-actionlint.sh")], capture_output=True,
                       text=True, timeout=600, check=False)
    if r.returncode != 0:
        pytest.skip(f"actionlint could not be built: {r.stderr.strip()[-500:]}")
    return r.stdout.strip().splitlines()[-1]


def test_actionlint_clean():
    lint = _actionlint()
    args = [lint, "-no-color"]
    sc = Path(sys.executable).parent / "shellcheck"
    args += ["-shellcheck", str(sc)] if sc.exists() else ["-shellcheck="]
    r = subprocess.run([*args, str(WORKFLOW)], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The linter really runs: an unknown key and a missing `runs-on` are reported."""
    lint = _actionlint()
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: echo hi\n        wat: 1\n")
    r = subprocess.run([lint, "-no-color", "-shellcheck=", str(bad)], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 1 and "runs-on" in r.stdout and "wat" in r.stdout


def test_workflow_triggers_permissions_and_settings():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads `on:` as True
    paths = ["stacks/**", "setup_scripts/**", "components/**", "styx/**"]
    assert on["pull_request"]["paths"] == paths and on["push"]["paths"] == paths
    assert on["push"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read"}
    assert wf["jobs"]["preview"]["permissions"]["pull-requests"] == "write"
    assert "pull-requests" not in (wf["jobs"]["launch"].get("permissions") or {})
    text = WORKFLOW.read_text()
    readme = (ROOT / "README.md").read_text()
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL"):
        assert f"secrets.{name}" in text and name in readme
    assert "pull_request_target" not in text  # a fork's code never runs with the repository's secrets
    steps = " ".join(s.get("run", "") for s in wf["jobs"]["preview"]["steps"])
    assert "pr_preview.py affected" in steps and "--policy-pack policy" in steps and "pr_preview.py comment" in steps
    assert "pr_preview.py marked" in " ".join(s.get("run", "") for s in wf["jobs"]["launch"]["steps"])
