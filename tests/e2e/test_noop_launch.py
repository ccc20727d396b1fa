"""`styx launch` (styx.app.api.launch) on the local backend with the fewer CLI calls of a no-op launch:
the update's summary and outputs from its own events, the reads before it without --show-secrets, and
Pulumi's automatic log off. A no-op still changes nothing and returns the CLI's outputs; a config
change, a machine gone outside Pulumi and a new worker are still seen and acted on."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e.helpers import SANDBOXCTL, require_engine_and_sandbox, sandbox_status

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "nnoope2e"
SUBNET = "10.118.0.0/24"


def cluster(workers: int = 1, env: str = "1") -> dict:
    return {"name": NAME, "cloud": "local", "local": {"subnet": SUBNET},
            "workers": [{"name": "worker", "count": workers}],
            "setup": {"ray": {"enabled": False}, "docker": {"mode": "skip"}, "gpu": {"mode": "skip"},
                      "env": {"A": env},
                      "custom_scripts": [{"name": "hello", "inline": "hostname > /tmp/hello\n"}]}}


def cli_outputs(stack: str) -> dict:
    from styx.app.session import Engine

    s = Engine().open(stack)
    return {k: v.value for k, v in s.stack.outputs().items()}  # `pulumi stack output --json [--show-secrets]`


def changed(res) -> dict:
    return {k: v for k, v in res.changes.items() if k != "same" and v}


@pytest.fixture
def home(tmp_path, monkeypatch):
    require_engine_and_sandbox()
    from styx.app import engine

    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(engine.toolchain_bin()))
    monkeypatch.setenv("PULUMI_HOME", str(engine.pulumi_home()))
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx-home"))
    for k in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "STYX_PULUMI_LOG"):
        monkeypatch.delenv(k, raising=False)
    yield tmp_path
    from styx.app import api

    try:
        api.down(NAME, on_info=print)
    finally:
        assert sandbox_status(NAME).get("clean") is True


def test_a_no_op_launch_changes_nothing_and_edits_drift_and_new_nodes_are_still_acted_on(home):
    from styx.app import api, engine
    from styx.app.api import public_outputs

    first = api.launch(cluster(), stack=NAME, on_info=print)
    assert first.changes.get("create") and not {k for k in changed(first) if k != "create"}

    noop = api.launch(cluster(), stack=NAME, on_info=print)
    assert changed(noop) == {} and noop.changes["same"] == sum(first.changes.values())
    cli = cli_outputs(NAME)
    assert "ssh_private_key" in cli
    assert noop.outputs == public_outputs(cli)  # from the update's events: the CLI's, without secrets
    assert not (engine.pulumi_home() / "logs").exists() or not any(
        NAME in p.name for p in (engine.pulumi_home() / "logs").iterdir())  # no automatic log of this stack

    edit = api.launch(cluster(env="2"), stack=NAME, on_info=print)
    assert changed(edit), edit.changes  # the env phase (and what follows it) on both nodes
    assert changed(api.launch(cluster(env="2"), stack=NAME, on_info=print)) == {}

    # a worker's sandbox removed outside Pulumi: found gone before the update and made again
    env = {**os.environ, "STYX_SB_CLUSTER": NAME, "STYX_SB_NODE": "worker-0"}
    subprocess.run(["bash", str(SANDBOXCTL), "node-down"], env=env, check=True, capture_output=True)
    again = api.launch(cluster(env="2"), stack=NAME, on_info=print)
    assert changed(again), again.changes
    assert {n["name"] for n in again.outputs["nodes"]} == {"head", "worker-0"}

    grown = api.launch(cluster(workers=2, env="2"), stack=NAME, on_info=print)
    assert grown.changes.get("create"), grown.changes
    assert {n["name"] for n in grown.outputs["nodes"]} == {"head", "worker-0", "worker-1"}
    assert grown.outputs == public_outputs(cli_outputs(NAME))
