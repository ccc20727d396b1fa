"""Fixtures for the application tests (API and CLI): the fakes live in tests/cli_fakes.py."""

from cli_fakes import cluster_file, fake_engine, fake_ssh  # noqa: F401
