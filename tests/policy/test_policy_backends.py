"""The backends satisfy the pack: every resource the aws and gcp programs register (under mocks)
passes every policy, for a few representative configs. A backend change that breaks an invariant
fails here even before the engine runs the pack."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "policy", ROOT / "tests" / "components" / "backends"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from styx_policy.policies import check_all  # noqa: E402

from styx.components import phases  # noqa: E402


def _violations(resources) -> dict:
    out = {}
    for r in resources:
        v = check_all(r.typ, r.inputs)
        if v:
            out[(r.typ, r.name)] = v
    return out


AWS_CASES = {
    "example": {},
    "world-ssh": {"aws": {"ssh_cidrs": ["0.0.0.0/0", "::/0"]}},
    "existing-vpc-gpu-image": {"aws": {"ssh_cidrs": ["203.0.113.0/24"], "vpc_id": "vpc-0a", "image": "gpu",
                                       "placement_group": True}},
}


@pytest.mark.parametrize("case", sorted(AWS_CASES))
def test_aws_backend_passes_the_pack(monkeypatch, tmp_path, case):
    from test_aws_mocks import aws_cluster, install

    run = install(monkeypatch, tmp_path)(aws_cluster(**AWS_CASES[case]))
    phases.script_text.cache_clear()
    assert any(r.typ == "aws:ec2/instance:Instance" for r in run.rec.resources)
    assert _violations(run.rec.resources) == {}


GCP_CASES = {
    "example": {},
    "world-ssh": {"gcp": {"ssh_cidrs": ["0.0.0.0/0", "::/0"]}},
    "t4-on-n1": {"workers": [{"name": "t4", "count": 1, "instance_type": "n1-standard-8",
                              "resources": {"accelerators": "T4:1"}}]},
}


@pytest.mark.parametrize("case", sorted(GCP_CASES))
def test_gcp_backend_passes_the_pack(monkeypatch, tmp_path, case):
    try:
        from test_gcp_mocks import gcp_cluster, gcp_runner
    except ImportError as e:
        pytest.skip(f"gcp backend test helpers not available: {e}")
    runner = gcp_runner(monkeypatch, tmp_path)
    run = next(runner)
    try:
        rec = run(gcp_cluster(**GCP_CASES[case]))
    finally:
        runner.close()
        phases.script_text.cache_clear()
    assert any(r.typ == "gcp:compute/instance:Instance" for r in rec.resources)
    assert any(r.typ == "gcp:compute/firewall:Firewall" for r in rec.resources)
    assert _violations(rec.resources) == {}
