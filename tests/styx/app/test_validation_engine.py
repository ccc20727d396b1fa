"""A real `pulumi preview` of styx's program (inline, Automation API, temp file backend) rejects invalid
configs of tests/validation_cases.py with the same lines as `styx validate`, and no traceback.

The program fails before it registers anything, so no plugin but the Python language host is needed.
Each preview runs in a child Python process, as a user's `styx preview` does: late in a long pytest
process that has run hundreds of inline programs, the Python SDK's gRPC channels to earlier engines
are still open and one preview failed with `_InactiveRpcError ... UNAVAILABLE ... Connection refused`
from its engine.Log call (CI, stop 19); one process per preview keeps that state out.

Each preview costs ~3-5 s, so this runs the `REAL` subset (26 cases: every cloud, model types, backend
rules and catalog lookups); the full table runs through `styx validate` and the program under mocks
(tests/styx/app/cli/test_validate_cases.py, tests/components/test_program_validation.py), the same
`styx.components.program.build` that this preview runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from validation_cases import CASES, CATALOG, REAL, line_for

from styx.app import engine as eng

BIN = Path.home() / ".styx" / "toolchain" / f"pulumi-v{eng.PULUMI_VERSION}-cmd-v{eng.COMMAND_VERSION}" / "bin"
ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(not (BIN / "pulumi").exists(),
                                 reason=f"Pulumi CLI not installed at {BIN} (bash toolchain/install-pulumi.sh)")]

BY_ID = {c.id: c for c in CASES}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    d = tmp_path_factory.mktemp("engine")
    mp = pytest.MonkeyPatch()
    mp.setenv("STYX_HOME", str(d / "home"))
    mp.setenv("STYX_PULUMI_BIN_DIR", str(BIN))
    mp.setenv("PULUMI_CONFIG_PASSPHRASE", "validation-test")
    mp.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    mp.setenv("STYX_CATALOG_DIR", str(CATALOG))
    mp.setenv("STYX_K8S_PREFLIGHT", "0")
    mp.setenv("STYX_LOCAL_PREFLIGHT", "0")
    yield d
    mp.undo()


def test_the_subset_covers_every_cloud():
    assert len(REAL) >= 25 and {BY_ID[i].cloud for i in REAL} == {c.cloud for c in CASES}


CHILD = """
import json, sys
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from pulumi import automation as auto
from validation_cases import CASES
from styx.app import engine as eng
case = {c.id: c for c in CASES}[sys.argv[2]]
name, backend = case.id.replace("_", "-"), sys.argv[3]
stack = eng.open_stack(name, case.config(), base_dir=Path(sys.argv[1]), work_dir=Path(backend) / "ws" / name,
                       backend_url="file://" + backend + "/state")
try:
    stack.preview()
except auto.errors.CommandError as e:
    print(json.dumps({"error": str(e)}))
else:
    print(json.dumps({"error": None}))
"""


def preview_error(case_id: str, backend: Path) -> str:
    """The CommandError text of a real `pulumi preview` of the case, run in a child process."""
    r = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), case_id, str(backend)],
                       capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert r.returncode == 0, r.stdout + r.stderr
    error = json.loads(r.stdout.strip().splitlines()[-1])["error"]
    assert error is not None, f"preview of {case_id} succeeded"
    return error


@pytest.mark.parametrize("case_id", REAL)
def test_real_preview_fails_with_the_same_line(case_id, backend):
    case = BY_ID[case_id]
    text = preview_error(case_id, backend)
    lines = [ln.strip() for ln in text.splitlines()]
    assert line_for(case, lines), text
    assert "Traceback" not in text
    # once per error diagnostic: the Automation API's inline server logs a RunError and also returns it,
    # which the engine prints again as "an unhandled error occurred" (`pulumi preview` of __main__.py
    # prints it once); within each message the line is there once
    errors = sum(ln.startswith("error:") and ln.endswith("invalid styx:cluster:") for ln in lines)
    assert 1 <= errors <= 2 and sum(ln == line_for(case, lines) for ln in lines) == errors, text
