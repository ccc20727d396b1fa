"""Helpers shared by the sandbox tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SANDBOXCTL = REPO / "sandbox" / "sandboxctl.sh"


def clean_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without any STYX_* variable, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYX_")}
    env.update(overrides)
    return env


def sandboxctl(sub: str, check: bool = True, timeout: float = 600, **env: str):
    proc = subprocess.run(
        [str(SANDBOXCTL), sub],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"sandboxctl {sub} failed rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc
