"""Policy findings in `styx preview --markdown` under the real engine: the pack's PolicyEvents reach
the report (styx.app.preview_report) with their policy, level and resource, on the aws-gpu stack with
stub providers (see test_policy_engine.py: preview only, nothing is created, no cloud is contacted)."""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from styx.app.events import PlanCollector
from styx.app.preview_report import explain, render_markdown
from styx.app.project import node_names
from tests.policy.test_policy_engine import (  # noqa: F401  (stub_home: the session fixture)
    PACK,
    RAY,
    WORLD,
    make_stack,
    stack_cluster,
    stub_home,
    styx_program,
)

pytestmark = [pytest.mark.engine, pytest.mark.timeout(420)]


def _report(stack, cluster) -> tuple[dict, bool]:
    c = PlanCollector(cluster["name"], node_names(cluster))
    try:
        stack.preview(policy_packs=[str(PACK)], color="never", on_event=c.handle)
        ok = True
    except auto.errors.CommandError:
        ok = False
    return explain("t", c, policy_packs=[PACK.name], error=None if ok else "mandatory policy findings"), ok


def test_findings_of_a_world_open_ray_port(tmp_path, stub_home):  # noqa: F811
    def open_ray_gcs(cluster) -> None:
        import pulumi_aws as aws

        aws.vpc.SecurityGroupIngressRule(
            "ray-gcs-from-anywhere", security_group_id=cluster.extra_outputs["aws_security_group_id"],
            ip_protocol="tcp", from_port=6379, to_port=6379, cidr_ipv4="0.0.0.0/0",
        )

    cluster = stack_cluster("aws-gpu")
    rep, ok = _report(make_stack(tmp_path, stub_home, "styx", styx_program(open_ray_gcs), cluster), cluster)
    assert not ok
    found = {(f["policy"], f["level"], f["resource"]) for f in rep["policy"]}
    assert (RAY, "mandatory", "(cluster)/ray-gcs-from-anywhere") in found, rep["policy"]
    assert (WORLD, "mandatory", "(cluster)/ray-gcs-from-anywhere") in found, rep["policy"]
    md = render_markdown(rep)
    assert "> **preview failed:** mandatory policy findings" in md
    assert f"| mandatory | `{RAY}` | `(cluster)/ray-gcs-from-anywhere` |" in md


def test_no_findings_on_the_aws_gpu_stack(tmp_path, stub_home):  # noqa: F811
    cluster = stack_cluster("aws-gpu")
    rep, ok = _report(make_stack(tmp_path, stub_home, "styx", styx_program(), cluster), cluster)
    assert ok and rep["policy"] == []
    assert sum(len(n["rows"]) for n in rep["nodes"]) >= 3  # every node is new: one row each at least
    assert "**Policy** (`policy`): no findings." in render_markdown(rep)
