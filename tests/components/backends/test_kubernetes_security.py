"""Secure by default on Kubernetes: a ClusterIP head Service; an exposed Service only with narrow source
ranges; no egress to the cloud metadata address unless allowed; never a silent BestEffort pod; a pod
recreated outside Pulumi gets a new setup mark (its phases run again)."""

from __future__ import annotations

from typing import Any

import pytest

from styx.components.backends import kubernetes as kb
from styx.components.backends import kubernetes_manifests as m
from styx.model.config import parse_cluster


def cfg_of(k8s: dict[str, Any] | None = None, head: dict[str, Any] | None = None):
    return parse_cluster({
        "name": "sec", "cloud": "kubernetes",
        "head": head if head is not None else {"resources": {"cpus": "2", "memory": "4"}},
        "workers": [{"name": "w", "count": 1, "resources": {"cpus": "1+", "memory": "2+"}}],
        "kubernetes": k8s or {},
    })


def problems(**k8s: Any) -> str:
    return "\n".join(kb.KubernetesBackend().config_problems(cfg_of(k8s)))


def test_head_service_is_clusterip_by_default():
    svc = m.head_service(cfg_of())
    assert svc["spec"]["type"] == "ClusterIP"
    assert "loadBalancerSourceRanges" not in svc["spec"]
    assert problems() == ""


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_exposed_service_needs_source_ranges(kind):
    p = problems(service_type=kind)
    assert "styx:cluster.kubernetes.service_source_ranges: required with service_type " + kind in p
    assert "allowed: ClusterIP, NodePort, LoadBalancer" in p


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "::/0"])
def test_source_range_of_everyone_is_refused(everyone):
    p = problems(service_type="LoadBalancer", service_source_ranges=[everyone])
    assert f"service_source_ranges: {everyone} is everyone" in p


def test_bad_cidr_named():
    assert "'not-a-cidr' is not a CIDR" in problems(service_type="NodePort", service_source_ranges=["not-a-cidr"])


def test_load_balancer_admits_only_the_ranges():
    cfg = cfg_of({"service_type": "LoadBalancer", "service_source_ranges": ["203.0.113.0/24"]})
    assert problems(service_type="LoadBalancer", service_source_ranges=["203.0.113.0/24"]) == ""
    assert m.head_service(cfg)["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    ingress = m.network_policy(cfg)["spec"]["ingress"]
    exposed = [r for r in ingress if "ports" in r]
    assert exposed and all(r["from"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}] for r in exposed)
    # no rule admits the Ray ports from everywhere
    assert all(r.get("from") for r in ingress)


def test_kuberay_load_balancer_source_ranges():
    cfg = cfg_of({"operator": "kuberay", "service_type": "LoadBalancer", "service_source_ranges": ["10.1.0.0/16"]})
    head = m.ray_cluster(cfg)["spec"]["headGroupSpec"]
    assert head["headService"]["spec"]["loadBalancerSourceRanges"] == ["10.1.0.0/16"]


def test_network_policy_blocks_metadata_egress():
    spec = m.network_policy(cfg_of())["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    blocks = [t["ipBlock"] for r in spec["egress"] for t in r["to"] if "ipBlock" in t]
    assert {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]} in blocks
    assert all(b.get("except") for b in blocks), "every ipBlock leaves the metadata address out"


def test_metadata_egress_when_allowed():
    cfg = cfg_of({"allow_metadata_egress": True})
    spec = m.network_policy(cfg)["spec"]
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec
    w = "\n".join(kb.KubernetesBackend().config_warnings(cfg))
    assert "allow_metadata_egress: true" in w


def test_no_resources_gets_a_stated_default_and_a_warning():
    cfg = cfg_of(head={})
    res = m.container_resources(cfg.head)
    assert res["requests"] == m.DEFAULT_REQUESTS  # Burstable, never BestEffort
    w = "\n".join(kb.KubernetesBackend().config_warnings(cfg))
    assert "styx:cluster.head.resources: no cpus/memory given" in w
    assert "workers[0]" not in w


def test_setup_mark_in_the_gate(monkeypatch):
    t = kb.KubectlExecTransport("kubectl", "sec-w-0", timeout_s=60, mark="uid-123")
    assert "annotate --overwrite pod/sec-w-0 styx.dev/setup=uid-123" in t.exec_prefix(gate=True)
    assert "annotate" not in t.exec_prefix(gate=False)


def test_setup_marks_from_pods(monkeypatch):
    pods = {"items": [
        {"metadata": {"name": "sec-head-0", "uid": "u1", "annotations": {kb.SETUP_MARK: "none"}}},
        {"metadata": {"name": "sec-w-0", "uid": "u2"}},  # recreated outside Pulumi: no mark
        {"metadata": {"name": "sec-w-1", "uid": "u3", "deletionTimestamp": "x"}},
    ]}

    class Done:
        returncode, stdout = 0, __import__("json").dumps(pods)

    monkeypatch.setattr(kb, "_under_mocks", lambda: False)
    monkeypatch.setattr(kb.shutil, "which", lambda _: "/usr/bin/kubectl")
    monkeypatch.setattr(kb.subprocess, "run", lambda *a, **k: Done())
    assert kb.setup_marks(cfg_of()) == {"sec-head-0": "none", "sec-w-0": "u2"}
