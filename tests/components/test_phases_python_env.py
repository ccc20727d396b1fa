"""The python_env row's parameters: the installer (setup.python.installer) reaches the script."""

from __future__ import annotations

import pytest
from pulumi import Output

from styx.components.phases import PHASES, NodeInfo, PhaseContext
from styx.model.config import ConfigError, parse_cluster


def _env(python: dict | None = None) -> dict:
    cfg = parse_cluster({"name": "py", "cloud": "local", "setup": {"python": python or {}}})
    node = NodeInfo("head", "head", cfg.head, "10.0.0.2", "10.0.0.2")
    return dict(next(p for p in PHASES if p.name == "python_env").env(PhaseContext(cfg, node)))


def test_installer_defaults_to_uv():
    env = _env()
    assert env["STYX_PIP_INSTALLER"] == "uv"
    assert env["STYX_PIP_PACKAGES"] == "ray[default]==2.60.0"


def test_installer_pip_reaches_the_script_and_changes_only_that():
    uv, pip = _env(), _env({"installer": "pip"})
    assert pip["STYX_PIP_INSTALLER"] == "pip"
    assert {k for k in uv if uv[k] != pip[k]} == {"STYX_PIP_INSTALLER"}  # so the phase's hash changes


def test_installer_keeps_the_index_url_as_a_secret():
    # may hold credentials: an Output.secret (never plain in the state; its value on stdin, see
    # tests/components/backends/test_wheel_cache_head.py), "" when unset
    env = _env({"installer": "uv", "index_url": "https://mirror.example/simple"})
    assert isinstance(env["STYX_PIP_INDEX_URL"], Output)
    assert _env()["STYX_PIP_INDEX_URL"] == ""


def test_bad_installer_names_the_key_and_the_allowed_values():
    with pytest.raises(ConfigError, match=r"styx:cluster\.setup\.python\.installer: .*'uv' or 'pip'"):
        _env({"installer": "conda"})
