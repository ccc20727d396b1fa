"""Fixtures for the cluster-command tests (the fakes live in cli_fakes.py, imported by the tests)."""

from cli_fakes import cluster_file, fake_engine, fake_ssh  # noqa: F401
