"""pytest setup: the repo and tests/ on sys.path, host-touching checks off for unit tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

os.environ.setdefault("STYX_LOCAL_PREFLIGHT", "0")  # unit tests never touch the host
os.environ.setdefault("STYX_K8S_PREFLIGHT", "0")

from mocking import run_program  # noqa: E402


@pytest.fixture
def program():
    return run_program


def pytest_collection_modifyitems(session, config, items):
    """The real-Kubernetes tests run last: toolchain/test.sh builds their cluster's parts in the
    background meanwhile (see tests/e2e/test_k8s.py: wait_for_prepare)."""
    last = [i for i in items if i.nodeid.startswith("tests/e2e/test_k8s")]
    if last:
        items[:] = [i for i in items if i not in last] + last
