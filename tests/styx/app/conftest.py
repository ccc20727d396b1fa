"""Fixtures for the application tests (API and CLI): the fakes live in cli/cli_fakes.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "cli"))

from cli_fakes import cluster_file, fake_engine, fake_ssh  # noqa: F401
