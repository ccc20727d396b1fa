"""The gpu and ray phases read the GPU count with styx.model.grammar: a bare `A100` is one GPU."""

from __future__ import annotations

import pytest

from styx.components.phases import PHASES, NodeInfo, PhaseContext, script_text
from styx.model.config import parse_cluster


def _env(accelerators, phase, expected_count=None):
    raw = {"name": "demo", "cloud": "local",
           "workers": [{"count": 1, "resources": {"accelerators": accelerators} if accelerators else None}]}
    if expected_count:
        raw["setup"] = {"gpu": {"expected_count": expected_count}}
    cfg = parse_cluster(raw)
    node = NodeInfo("worker-0", "worker", cfg.workers[0], "10.0.0.3", "10.0.0.2")
    return next(p for p in PHASES if p.name == phase).env(PhaseContext(cfg, node))


@pytest.mark.parametrize(("accelerators", "gpus"), [("A100", "1"), ("a100", "1"), ("A100:1", "1"),
                                                    ("A100:8", "8"), ("H100:8.0", "8"), (None, "")])
def test_expected_gpus_and_ray_num_gpus(accelerators, gpus):
    assert _env(accelerators, "gpu")["STYX_GPU_EXPECTED_COUNT"] == gpus
    assert _env(accelerators, "ray")["STYX_RAY_NUM_GPUS"] == gpus


def test_bare_accelerator_is_one_gpu_regression():
    """`accelerators: A100` used to give no expected count (and Ray no --num-gpus): it is A100:1."""
    assert _env("A100", "gpu")["STYX_GPU_EXPECTED_COUNT"] == "1"
    assert _env("A100", "ray")["STYX_RAY_NUM_GPUS"] == "1"
    # ray.sh turns STYX_RAY_NUM_GPUS into `ray start --num-gpus=1`
    assert 'args+=(--num-gpus="$STYX_RAY_NUM_GPUS")' in script_text("ray.sh")


def test_setup_gpu_expected_count_wins():
    assert _env("A100", "gpu", expected_count=4)["STYX_GPU_EXPECTED_COUNT"] == "4"
