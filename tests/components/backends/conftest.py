"""Fixtures shared by the backend tests."""

from __future__ import annotations

import pytest
from test_aws_mocks import install

from styx.components import phases


@pytest.fixture
def aws_program(monkeypatch, tmp_path):
    """run(cluster_dict) -> AwsRun under AWS-aware mocks (see test_aws_mocks)."""
    yield install(monkeypatch, tmp_path)
    phases.script_text.cache_clear()
