"""KubeRay mode on the real single-node Kubernetes of toolchain/run-k8s.sh: the KubeRay operator
(built from ray-project/kuberay/ray-operator v1.4.2, a Deployment there) turns the RayCluster styx
makes into running pods with 3 alive Ray nodes; a second `up` changes nothing; destroy leaves nothing."""

from __future__ import annotations

import json
import time

import pytest

from styx.app.remote import RAY_ALIVE_PY, ray_alive_count
from tests.e2e.helpers import Stack
from tests.e2e.test_k8s import k8s, kubectl  # noqa: F401  (the module fixture)

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "k8sray"
NS = f"styx-{NAME}"


@pytest.fixture(scope="module")
def stack(k8s):  # noqa: F811
    cluster = json.loads(json.dumps(k8s["cluster"]))
    cluster["name"] = NAME
    cluster["kubernetes"]["operator"] = "kuberay"
    s = Stack(NAME, cluster, k8s["tmp"])
    yield s
    try:
        s.destroy()
    except Exception as e:  # report; the test's own destroy already ran
        print(f"cleanup destroy: {e}")


def head_pod(k8s) -> str:  # noqa: F811
    return kubectl(k8s, "-n", NS, "get", "pods", "-l", f"ray.io/cluster={NAME},ray.io/node-type=head",
                   "-o", "jsonpath={.items[0].metadata.name}").stdout


def test_kuberay_three_alive_ray_nodes(k8s, stack):  # noqa: F811
    res, _ = stack.up()
    assert res.summary.result == "succeeded"
    pods = kubectl(k8s, "-n", NS, "get", "pods", "-l", f"ray.io/cluster={NAME}", "-o", "name").stdout.split()
    assert len(pods) == 3, pods
    deadline, n = time.monotonic() + 300, -1
    while time.monotonic() < deadline:
        r = kubectl(k8s, "-n", NS, "exec", head_pod(k8s), "-c", "ray", "--", "bash", "-c", RAY_ALIVE_PY,
                    check=False)
        if r.returncode == 0 and ray_alive_count(r.stdout) is not None:
            n = ray_alive_count(r.stdout)
            if n == 3:
                break
        time.sleep(5)
    assert n == 3


def test_kuberay_second_up_changes_nothing(stack):
    _, ops = stack.up()
    assert ops.changed() == {}


def test_kuberay_destroy_leaves_nothing(k8s, stack):  # noqa: F811
    res, _ = stack.destroy()
    assert res.summary.result == "succeeded"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and kubectl(k8s, "get", "namespace", NS, check=False).returncode == 0:
        time.sleep(2)
    assert kubectl(k8s, "get", "namespace", NS, check=False).returncode != 0
    assert kubectl(k8s, "get", "rayclusters", "-A", "-o", "name").stdout.strip() == ""
