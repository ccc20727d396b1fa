"""Fixtures for the `local` backend's host scripts (sandbox/sandboxctl.sh)."""

from __future__ import annotations

import os

import pytest
from sbctl_helpers import sandboxctl


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sandbox: needs root and the host tools of sandbox/host-deps.sh; "
        "creates network namespaces, bridges, iptables rules and overlay mounts",
    )


@pytest.fixture(scope="session")
def sandbox_ready() -> None:
    """Skip (with the reason) unless this host can run sandboxes."""
    if os.geteuid() != 0:
        pytest.skip("sandbox tests need root (network namespaces, bridges, iptables, mounts)")
    proc = sandboxctl("preflight", check=False, timeout=60)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"sandbox prerequisites missing: {last}")
