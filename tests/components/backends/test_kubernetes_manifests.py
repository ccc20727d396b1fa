"""The kubernetes backend without Pulumi: quantities, pod templates, names, config checks, transports."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styx.components.backends import kubernetes as kb
from styx.components.backends import kubernetes_manifests as m
from styx.components.backends.base import NodeRequest
from styx.model.config import NodeSpec, Resources, parse_cluster

QUANTITY = re.compile(r"^[0-9]+(m|Ki|Mi|Gi|Ti)?$")


def cfg_of(**kw: Any):
    base: dict[str, Any] = {
        "name": "demo",
        "cloud": "kubernetes",
        "head": {"resources": {"cpus": "8", "memory": "32"}},
        "workers": [{"name": "gpu", "count": 2, "resources": {"cpus": "48", "memory": "400",
                                                               "accelerators": "A100:8"}}],
    }
    for k, v in kw.items():
        base[k] = v
    return parse_cluster(base)


def problems(monkeypatch, preflight: bool = False, **kw: Any) -> str:
    monkeypatch.setenv("STYX_K8S_PREFLIGHT", "1" if preflight else "0")
    cfg, backend = cfg_of(**kw), kb.KubernetesBackend()
    return "\n".join(backend.config_problems(cfg) + backend.check(cfg))  # the config rules, then the host


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize(("cpus", "want"), [("8", "8"), ("8+", "8"), ("0.5", "500m"), ("1.25", "1250m"),
                                            ("96", "96")])
def test_cpu_quantity(cpus, want):
    assert m.cpu_quantity(cpus) == want


@pytest.mark.parametrize(("mem", "want"), [("32", "32Gi"), ("32+", "32Gi"), ("1.5", "1536Mi"), ("0.25", "256Mi")])
def test_memory_quantity(mem, want):
    assert m.memory_quantity(mem) == want


@pytest.mark.parametrize(("acc", "want"), [(None, 0), ("A100", 1), ("A100:8", 8), ("H100-80GB:4", 4)])
def test_gpu_count(acc, want):
    assert m.gpu_count(NodeSpec(resources=Resources(accelerators=acc))) == want


def test_quantity_bytes():
    assert m.quantity_bytes("8Gi") == 8 * 2**30
    assert m.quantity_bytes("512Mi") == 512 * 2**20
    with pytest.raises(ValueError):
        m.quantity_bytes("8G")


sizes = st.builds(lambda n, frac, plus: f"{n}{'.5' if frac else ''}{'+' if plus else ''}",
                  st.integers(0, 4096), st.booleans(), st.booleans()).filter(
                      lambda s: float(s.rstrip("+")) > 0)  # 0 is no size (styx.model.grammar)
accels = st.one_of(st.none(), st.builds(lambda name, n: f"{name}:{n}" if n else name,
                                        st.sampled_from(["A100", "H100", "L4", "T4"]), st.integers(0, 16)))


@given(cpus=st.one_of(st.none(), sizes), memory=st.one_of(st.none(), sizes), acc=accels)
def test_container_resources_are_valid_quantities(cpus, memory, acc):
    spec = NodeSpec(resources=Resources(cpus=cpus, memory=memory, accelerators=acc))
    res = m.container_resources(spec)
    req, lim = res.get("requests", {}), res.get("limits", {})
    for q in [*req.values(), *lim.values()]:
        assert QUANTITY.match(q), q
    if cpus:
        assert ("cpu" in lim) == (not cpus.endswith("+"))
        assert Decimal(req["cpu"].rstrip("m")) / (1000 if req["cpu"].endswith("m") else 1) == Decimal(
            cpus.rstrip("+"))
    elif memory:
        assert "cpu" not in req
    else:  # neither: the stated default requests, never a BestEffort pod
        assert req == m.DEFAULT_REQUESTS
    if memory:
        assert ("memory" in lim) == (not memory.endswith("+"))
    gpus = m.gpu_count(spec)
    assert lim.get("nvidia.com/gpu") == (str(gpus) if gpus else None)
    assert "nvidia.com/gpu" not in req  # Kubernetes takes the limit as the request
    assert set(lim) - {"nvidia.com/gpu"} <= set(req)
    if lim.get("cpu"):
        assert lim["cpu"] == req["cpu"]


# --------------------------------------------------------------------------- templates and names


def test_names():
    cfg = cfg_of(kubernetes={"namespace": "ml"})
    assert m.namespace_of(cfg) == "ml"
    assert m.namespace_of(cfg_of()) == "styx-demo"
    assert m.pod_name(cfg, "gpu", 1) == "demo-gpu-1"
    assert m.head_dns(cfg) == "demo-head-svc.ml.svc.cluster.local"
    assert m.pod_dns(cfg, "gpu", 0) == "demo-gpu-0.demo-pods.ml.svc.cluster.local"


def test_default_images_per_operator():
    assert m.image_of(cfg_of(), NodeSpec()) == m.DEFAULT_IMAGE
    kr = cfg_of(kubernetes={"operator": "kuberay"}, setup={"ray": {"version": "2.41.0"}})
    assert m.image_of(kr, NodeSpec()) == "rayproject/ray:2.41.0-gpu"
    assert m.image_of(cfg_of(kubernetes={"image": "my/img:1"}), NodeSpec()) == "my/img:1"
    assert m.image_of(cfg_of(kubernetes={"image": "my/img:1"}), NodeSpec(image="x/y:2")) == "x/y:2"


def test_instance_type_and_zone_become_node_selectors():
    cfg = cfg_of(zone="us-central1-a", workers=[{"name": "gpu", "instance_type": "a2-highgpu-8g",
                                                 "resources": {"accelerators": "A100:8"}}])
    tpl = m.pod_template(cfg, "gpu", "worker", cfg.workers[0])
    assert tpl["spec"]["nodeSelector"] == {"node.kubernetes.io/instance-type": "a2-highgpu-8g",
                                           "topology.kubernetes.io/zone": "us-central1-a"}
    auto = cfg_of(workers=[{"name": "gpu", "instance_type": "auto", "resources": {"accelerators": "A100:8"}}])
    assert "nodeSelector" not in m.pod_template(auto, "gpu", "worker", auto.workers[0])["spec"]


def test_gpu_toleration_not_duplicated():
    tol = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    cfg = cfg_of(kubernetes={"tolerations": [tol]})
    assert m.pod_template(cfg, "gpu", "worker", cfg.workers[0])["spec"]["tolerations"] == [tol]


def test_template_hash_follows_the_template():
    a, b = cfg_of(), cfg_of(kubernetes={"shm_size": "16Gi"})
    ha = m.template_hash(m.pod_template(a, "gpu", "worker", a.workers[0]))
    assert ha == m.template_hash(m.pod_template(a, "gpu", "worker", a.workers[0]))
    assert ha != m.template_hash(m.pod_template(b, "gpu", "worker", b.workers[0]))


def test_ray_start_params():
    cfg = cfg_of(kubernetes={"operator": "kuberay"},
                 setup={"ray": {"extra_start_args": ["--include-log-monitor=false", "--block"]}})
    head = m.ray_start_params(cfg, "head", cfg.head)
    assert head["dashboard-host"] == "127.0.0.1" and head["port"] == "6379"
    assert head["include-log-monitor"] == "false" and head["block"] == "true"
    assert head["disable-usage-stats"] == "true"
    worker = m.ray_start_params(cfg, "worker", cfg.workers[0])
    assert "dashboard-host" not in worker and worker["num-gpus"] == "8" and worker["num-cpus"] == "48"
    assert m.parse_start_args(["--a=1", "-b", "c"]) == ({"a": "1"}, ["-b", "c"])


def test_kuberay_secret_env_by_reference():
    cfg = cfg_of(kubernetes={"operator": "kuberay"}, setup={"secret_env": {"TOKEN": "tok-9f3a"}})
    docs = m.manifests(cfg)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Namespace", "styx-demo"), ("ServiceAccount", "demo-ray"), ("NetworkPolicy", "demo-ray"),
        ("Secret", "demo-env"), ("Secret", "demo-ray-auth"), ("RayCluster", "demo")]
    rc = docs[-1]
    c = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert c["envFrom"] == [{"secretRef": {"name": "demo-env"}}]
    assert "tok-9f3a" not in str(c)


def test_zero_workers_still_a_statefulset():
    cfg = cfg_of(workers=[{"name": "gpu", "count": 0}])
    (s,) = [d for d in m.manifests(cfg) if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "demo-gpu"]
    assert s["spec"]["replicas"] == 0


# --------------------------------------------------------------------------- check()


def test_check_clean(monkeypatch):
    assert problems(monkeypatch) == ""


def test_check_system_namespace(monkeypatch):
    assert "system namespace" in problems(monkeypatch, kubernetes={"namespace": "kube-system"})
    assert problems(monkeypatch, kubernetes={"namespace": "default", "create_namespace": False}) == ""


def test_check_long_names(monkeypatch):
    out = problems(monkeypatch, name="a" * 30, workers=[{"name": "b" * 30}])
    assert "styx:cluster.workers[0]: the StatefulSet name" in out


def test_check_spot_and_any_of(monkeypatch):
    out = problems(monkeypatch, workers=[{"name": "gpu", "spot": True,
                                          "resources": {"any_of": ["A100:8", "H100:8"]}}])
    assert "styx:cluster.workers[0].spot: not supported" in out
    assert "styx:cluster.workers[0].resources: any_of/ordered" in out


def test_object_store_fits_shm_and_memory():
    cfg = cfg_of(kubernetes={"shm_size": "64Gi"})
    assert m.object_store_bytes(cfg, cfg.head) == str(int(32 * 2**30 * 0.3))  # 32 GiB pod: Ray's 30%
    assert m.object_store_bytes(cfg, cfg.workers[0]) == str(int(64 * 2**30 * 0.9))  # 400 GiB pod: the shm
    assert m.object_store_bytes(cfg, NodeSpec()) == str(int(64 * 2**30 * 0.9))


def test_check_kuberay(monkeypatch):
    out = problems(monkeypatch, kubernetes={"operator": "kuberay"},
                   setup={"ray": {"enabled": False}, "conda": {"enabled": True}, "file_mounts": [
                       {"local": "x", "remote": "/x"}], "custom_scripts": [{"name": "a", "inline": "true"}]})
    for key in ("setup.ray.enabled", "setup.conda.enabled", "setup.file_mounts", "setup.custom_scripts"):
        assert f"styx:cluster.{key}" in out
    assert problems(monkeypatch, kubernetes={"operator": "kuberay"}, setup={"env": {"A": "b"}}) == ""


def test_check_host(monkeypatch, tmp_path):
    monkeypatch.setattr(kb.shutil, "which", lambda name: None)
    out = problems(monkeypatch, preflight=True, kubernetes={"kubeconfig": str(tmp_path / "nope")})
    assert "needs kubectl on PATH" in out
    assert "styx:cluster.kubernetes.kubeconfig: " in out and "not found" in out
    assert "contents" in problems(monkeypatch, kubernetes={"kubeconfig": "apiVersion: v1\nkind: Config"})


def test_config_errors_name_the_key():
    from styx.model.config import ConfigError

    with pytest.raises(ConfigError, match=r"styx:cluster.kubernetes.namespace"):
        cfg_of(kubernetes={"namespace": "Bad_NS"})
    with pytest.raises(ConfigError, match=r"styx:cluster.kubernetes.pod_ready_timeout_s"):
        cfg_of(kubernetes={"pod_ready_timeout_s": 5})


# --------------------------------------------------------------------------- overrides and transports


def test_phase_overrides():
    b = kb.KubernetesBackend()
    cfg = cfg_of()
    gpu = NodeRequest(name="gpu-0", role="worker", spec=cfg.workers[0], group="gpu", index=0)
    head = NodeRequest(name="head", role="head", spec=cfg.head, group="head", index=0)
    ov = b.phase_overrides(cfg, gpu)
    assert set(ov) == {"docker", "gpu", "ray"}
    assert ov["gpu"].skip == kb.SKIP_GPU
    assert b.phase_overrides(cfg, head)["gpu"].skip == kb.SKIP_CPU_GPU
    assert ov["ray"].env == {"STYX_NODE_IP": ""}
    kr = cfg_of(kubernetes={"operator": "kuberay"})
    assert b.phase_overrides(kr, gpu) == {"*": kb.PhaseOverride(skip=kb.SKIP_KUBERAY)}


def test_kubectl_words_quote_everything():
    cfg = cfg_of(kubernetes={"kubeconfig": "/etc/k 8s/config", "context": "arn:aws:eks:us-east-1:1:cluster/x y"})
    assert kb.kubectl_words(cfg) == ("kubectl --kubeconfig='/etc/k 8s/config' "
                                     "--context='arn:aws:eks:us-east-1:1:cluster/x y' --namespace=styx-demo")


def test_gpu_check_is_posix_sh():
    assert kb.gpu_check("p", 0) == ""
    script = kb.gpu_check("p", 4)
    assert "-lt 4" in script and "[[" not in script


def test_transport_scripts_run_in_sh(tmp_path):
    """The wait loop is POSIX sh (the command provider runs `/bin/sh -c`); exercised with a fake kubectl."""
    import os
    import subprocess

    fake = tmp_path / "kubectl"
    log = tmp_path / "log"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncase "$*" in *"exec -i"*) cat ;; esac\n')
    fake.chmod(0o755)
    t = kb.KubectlExecTransport("kubectl --namespace=ns", "demo-gpu-0", timeout_s=30, gpus=2)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    r = subprocess.run(["/bin/sh", "-c", t.exec_prefix(gate=True) + " cat"], input="echo hello-from-stdin\n",
                       capture_output=True, text=True, env=env, check=True)
    assert r.stdout.strip() == "echo hello-from-stdin"
    calls = log.read_text().splitlines()
    assert calls[0] == "--namespace=ns get pod demo-gpu-0"
    assert calls[1] == "--namespace=ns wait --for=condition=Ready pod/demo-gpu-0 --timeout=30s"
    assert calls[2] == "--namespace=ns exec -i demo-gpu-0 -c ray -- cat"
    kr = kb.KubeRayTransport("kubectl", "ray.io/cluster=demo,ray.io/group=gpu", 1, "demo-gpu-1", timeout_s=30)
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncase "$*" in *jsonpath*) echo demo-gpu-worker-abc ;; esac\n')
    subprocess.run(["/bin/sh", "-c", kr.exec_prefix(gate=True) + " cat"], input="", capture_output=True, text=True,
                   env=env, check=True)
    assert log.read_text().splitlines()[-1] == "exec -i demo-gpu-worker-abc -c ray -- cat"
    # an undo on a pod that is gone succeeds without exec
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 1\n')
    r = subprocess.run(["/bin/sh", "-c", t.guard_delete("echo undo")], capture_output=True, text=True, env=env,
                       check=True)
    assert "nothing to undo" in r.stderr
