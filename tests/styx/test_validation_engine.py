"""A real `pulumi preview` of styx's program (inline, Automation API, temp file backend) rejects invalid
configs of tests/validation_cases.py with the same lines as `styx validate`, and no traceback.

The program fails before it registers anything, so no plugin but the Python language host is needed.
Each preview costs ~3-5 s, so this runs the `REAL` subset (26 cases: every cloud, model types, backend
rules and catalog lookups); the full table runs through `styx validate` and the program under mocks
(tests/styx/cli/test_validate_cases.py, tests/components/test_program_validation.py), the same
`components.program.build` that this preview runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from validation_cases import CASES, CATALOG, REAL, line_for

from styx import engine as eng

BIN = Path.home() / ".styx" / "toolchain" / f"pulumi-v{eng.PULUMI_VERSION}-cmd-v{eng.COMMAND_VERSION}" / "bin"
ROOT = Path(__file__).resolve().parents[2]

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


@pytest.mark.parametrize("case_id", REAL)
def test_real_preview_fails_with_the_same_line(case_id, backend):
    from pulumi import automation as auto

    case = BY_ID[case_id]
    name = case_id.replace("_", "-")
    stack = eng.open_stack(name, case.config(), base_dir=ROOT, work_dir=backend / "ws" / name,
                           backend_url=f"file://{backend / 'state'}")
    with pytest.raises(auto.errors.CommandError) as e:
        stack.preview()
    text = str(e.value)
    lines = [ln.strip() for ln in text.splitlines()]
    assert line_for(case, lines), text
    assert "Traceback" not in text
    # once per error diagnostic: the Automation API's inline server logs a RunError and also returns it,
    # which the engine prints again as "an unhandled error occurred" (`pulumi preview` of __main__.py
    # prints it once); within each message the line is there once
    errors = sum(ln.startswith("error:") and ln.endswith("invalid styx:cluster:") for ln in lines)
    assert 1 <= errors <= 2 and sum(ln == line_for(case, lines) for ln in lines) == errors, text
