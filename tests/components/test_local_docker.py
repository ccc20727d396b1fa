"""local.docker: sandboxes that can run a Docker daemon (STYX_SB_DOCKER for node-up); off by default."""

from __future__ import annotations

from mocking import local_cluster, run_program


def test_local_docker_reaches_node_up_and_makes_new_sandboxes():
    off = run_program(local_cluster()).named("demo-head-sandbox").inputs
    on = run_program(local_cluster(local={"docker": True})).named("demo-head-sandbox").inputs
    assert "STYX_SB_DOCKER=0" in off["create"] and "STYX_SB_DOCKER=1" in on["create"]
    assert "docker" not in off["triggers"], "ordinary sandboxes keep their triggers"
    assert on["triggers"] == [*off["triggers"], "docker"]
