"""A cloud added with one module and one registry line (tests/components/backends/fake_cloud.py).

Everything below works with no edit outside that module: the config, the program under mocks, the
CLI's `--cloud`, failover, pricing and `styx ssh`'s port all ask the backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mocking import run_program

from styx.components import backends
from styx.model.config import ConfigError, parse_cluster

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake():
    """The documented hook: register the test-only backend, and take it away after the test."""
    backends.register_backend("fake", "fake_cloud:FakeBackend")
    yield "fake"
    backends.unregister_backend("fake")


def cluster(**overrides):
    return {"name": "fk", "cloud": "fake", "workers": [{"name": "gpu", "count": 2}], **overrides}


def test_unregistered_cloud_is_refused_with_the_registry_names():
    with pytest.raises(ConfigError) as e:
        parse_cluster(cluster())
    assert "styx:cluster.cloud" in str(e.value) and "'aws', 'gcp', 'kubernetes', 'ssh' or 'local'" in str(e.value)


def test_config_validates_with_its_own_rules(fake):
    cfg = backends.check_cluster(cluster())
    assert cfg.cloud == "fake" and [n for n, *_ in cfg.nodes()] == ["head", "gpu-0", "gpu-1"]
    with pytest.raises(ConfigError) as e:
        backends.check_cluster(cluster(head={"zone": "moon-1"}, workers=[{"hosts": ["10.0.0.1"]}]))
    assert any(p.startswith("styx:cluster.head.zone: 'moon-1' is not a fake zone") for p in e.value.problems)
    assert any(p.startswith("styx:cluster.workers[0].hosts: only allowed") for p in e.value.problems)


def test_program_builds_under_mocks(fake):
    rec = run_program(cluster())
    assert len(rec.of_type("styx:index:Node")) == 3
    vms = {r.name for r in rec.of_type("command:local:Command")}
    assert {"fk-head-vm", "fk-gpu-0-vm", "fk-gpu-1-vm"} <= vms
    phases = {r.name for r in rec.of_type("command:remote:Command")}
    assert {"fk-head-wait_ssh", "fk-gpu-1-ray"} <= phases


def test_cli_cloud_flag_accepts_it(fake, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(HERE.parents[1] / "styx" / "cli"))
    from cli_fakes import FakeEngine
    from click.testing import CliRunner

    from styx.app import project
    from styx.app.cli import main

    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fe = FakeEngine()
    monkeypatch.setattr(project, "engine_factory", lambda backend: fe)
    r = CliRunner().invoke(main, ["launch", "--cloud", "fake", "--name", "fk", "--workers", "1", "--stack", "fk",
                                  "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert fe.stacks["fk"].cluster()["cloud"] == "fake"
    bad = CliRunner().invoke(main, ["launch", "--cloud", "nope", "--stack", "x"])
    assert bad.exit_code == 2 and "fake" in bad.output  # the choices listed are the registry's


def test_failover_pricing_and_ssh_ask_the_backend(fake):
    import fake_cloud

    from styx.app import failover, pricing
    from styx.app.cli.remote import node_port

    c = cluster()
    assert failover.is_capacity_error("FAKE_OUT_OF_CAPACITY in fake-a", "fake")
    assert not failover.is_capacity_error("InsufficientInstanceCapacity", "fake")  # AWS's words are AWS's
    first = failover.next_placement(c, [])
    assert first["zone"] == "fake-a"
    place = failover.failed_place(first, "head", "FAKE_OUT_OF_CAPACITY")
    assert place == "fake/fake-a"
    assert failover.next_placement(c, [place])["zone"] == "fake-b"
    assert failover.next_placement(c, ["fake/fake-a", "fake/fake-b"]) is None
    rec = pricing.price_cluster(parse_cluster(c))
    assert rec["complete"] and rec["per_hour"] == 3 * fake_cloud.PRICE
    assert node_port(c, "gpu-0") == fake_cloud.PORT


def test_register_backend_refuses_a_taken_name_and_bad_targets():
    with pytest.raises(ValueError, match="already registered"):
        backends.register_backend("aws", "fake_cloud:FakeBackend")
    with pytest.raises(ValueError, match="module:Class"):
        backends.register_backend("other", "fake_cloud.FakeBackend")
    with pytest.raises(ValueError, match="unknown backend"):
        backends.get_backend("nope")
