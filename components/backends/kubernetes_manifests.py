"""The Kubernetes objects of a `cloud: kubernetes` cluster, as plain manifests (dicts).

No Pulumi here: `styx.components.backends.kubernetes` turns each manifest into a pulumi-kubernetes
resource, and tests check the same shapes. Every name, label and pod template is decided here, so
the backend (which runs phases in the pods) and the manifests can never disagree.

Layout (operator `none`): a namespace, a ServiceAccount without API rights or token, a StatefulSet
per group (head: 1 replica; pods `<cluster>-<group>-<i>`), a headless Service that governs them, the
head Service (ClusterIP: GCS, dashboard, client) and a NetworkPolicy that admits only this
cluster's pods. Operator `kuberay`: the same namespace, account and policy plus one RayCluster
whose groups use the same pod templates (KubeRay makes the pods and the head Service).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from decimal import Decimal
from typing import Any

from styx.model.config import ClusterConfig, NodeSpec

CONTAINER = "ray"  # the one container of every pod; `kubectl exec -c ray`
GPU_RESOURCE = "nvidia.com/gpu"
SHM_VOLUME = "dshm"
DEFAULT_IMAGE = "nvcr.io/nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04"
KUBERAY_IMAGE = "rayproject/ray:{version}-gpu"
# Operator none: the container only stays alive; styx's phases install and start everything.
# bash as PID 1 reaps the daemons Ray leaves behind and exits at once on SIGTERM.
KEEPALIVE = ["/bin/bash", "-c", "trap 'exit 0' TERM INT; sleep infinity & wait"]
# The phases run apt/pip as root in the pod, so the container keeps only the capabilities package
# installs need (a subset of the runtime's defaults: Pod Security "baseline", never privileged).
ROOT_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"]
# Ray's object store lives in /dev/shm: leave it some headroom below the emptyDir's size limit, and
# keep Ray's own default (30% of the memory) where the pod's memory is smaller.
OBJECT_STORE_SHARE = Decimal("0.9")
OBJECT_STORE_MEMORY_SHARE = Decimal("0.3")

L_NAME = "app.kubernetes.io/name"
L_INSTANCE = "app.kubernetes.io/instance"
L_COMPONENT = "app.kubernetes.io/component"
L_MANAGED = "app.kubernetes.io/managed-by"
L_GROUP = "styx/group"
L_ROLE = "styx/role"

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


# --------------------------------------------------------------------------- names


def namespace_of(cfg: ClusterConfig) -> str:
    return cfg.kubernetes.namespace or f"styx-{cfg.name}"


def service_account_name(cfg: ClusterConfig) -> str:
    return f"{cfg.name}-ray"


def head_service_name(cfg: ClusterConfig) -> str:
    """Operator none: ours. KubeRay names its head Service `<RayCluster>-head-svc` too."""
    return f"{cfg.name}-head-svc"


def pods_service_name(cfg: ClusterConfig) -> str:
    """The headless Service that governs the StatefulSets (stable pod DNS names)."""
    return f"{cfg.name}-pods"


def statefulset_name(cfg: ClusterConfig, group: str) -> str:
    return f"{cfg.name}-{group}"


def pod_name(cfg: ClusterConfig, group: str, index: int) -> str:
    return f"{statefulset_name(cfg, group)}-{index}"


def head_dns(cfg: ClusterConfig) -> str:
    return f"{head_service_name(cfg)}.{namespace_of(cfg)}.svc.cluster.local"


def pod_dns(cfg: ClusterConfig, group: str, index: int) -> str:
    return f"{pod_name(cfg, group, index)}.{pods_service_name(cfg)}.{namespace_of(cfg)}.svc.cluster.local"


def env_secret_name(cfg: ClusterConfig) -> str:
    return f"{cfg.name}-env"


RAY_AUTH_KEY = "auth_token"


def ray_auth_secret_name(cfg: ClusterConfig) -> str:
    """KubeRay mode with setup.ray.auth: token: the Secret holding the cluster's Ray token."""
    return f"{cfg.name}-ray-auth"


def kuberay_token_auth(cfg: ClusterConfig) -> bool:
    return cfg.kubernetes.operator == "kuberay" and cfg.setup.ray.enabled and cfg.setup.ray.auth == "token"


def common_labels(cfg: ClusterConfig) -> dict[str, str]:
    return {L_NAME: "styx", L_INSTANCE: cfg.name, L_MANAGED: "styx"}


def selector_labels(cfg: ClusterConfig) -> dict[str, str]:
    """Every pod of this cluster (the NetworkPolicy and the headless Service)."""
    return {L_NAME: "styx", L_INSTANCE: cfg.name}


def group_selector(cfg: ClusterConfig, group: str) -> dict[str, str]:
    return {**selector_labels(cfg), L_GROUP: group}


def pod_labels(cfg: ClusterConfig, group: str, role: str) -> dict[str, str]:
    return {**common_labels(cfg), L_COMPONENT: f"ray-{role}", L_GROUP: group, L_ROLE: role}


def image_of(cfg: ClusterConfig, spec: NodeSpec) -> str:
    if spec.image:
        return spec.image
    if cfg.kubernetes.image:
        return cfg.kubernetes.image
    if cfg.kubernetes.operator == "kuberay":
        return KUBERAY_IMAGE.format(version=cfg.setup.ray.version)
    return DEFAULT_IMAGE


# --------------------------------------------------------------------------- resources


def _number(text: str) -> Decimal:
    return Decimal(text.rstrip("+"))


def _fmt(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def cpu_quantity(cpus: str) -> str:
    """`8` / `8+` -> `8`; `0.5` -> `500m`."""
    n = _number(cpus)
    return _fmt(n) if n == n.to_integral_value() else f"{_fmt((n * 1000).to_integral_value())}m"


def memory_quantity(gib: str) -> str:
    """GiB (`32`, `32+`, `1.5`) -> `32Gi`, `1536Mi`."""
    n = _number(gib)
    if n == n.to_integral_value():
        return f"{_fmt(n)}Gi"
    return f"{_fmt((n * 1024).to_integral_value())}Mi"


def quantity_bytes(q: str) -> int:
    """`8Gi` -> 8589934592 (binary suffixes only: what shm_size allows)."""
    m = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti)", q)
    if not m:
        raise ValueError(f"{q!r} is not a quantity like 8Gi")
    return int(m.group(1)) * _UNITS[m.group(2)]


def gpu_count(spec: NodeSpec) -> int:
    """`nvidia.com/gpu` per pod: the count of resources.accelerators (`A100` = 1, styx.model.grammar), else 0."""
    acc = spec.resources.accelerator() if spec.resources else None
    return int(acc.count) if acc else 0


DEFAULT_REQUESTS = {"cpu": "1", "memory": "2Gi"}
"""The requests of a pod whose group gives no cpus/memory (the backend warns about it)."""


def container_resources(spec: NodeSpec) -> dict[str, Any]:
    """requests/limits from `resources`. `N` (exact) is both request and limit (Guaranteed QoS when
    cpus and memory are exact); `N+` (at least) is a request only. GPUs are limits (Kubernetes sets the
    request of an extended resource to its limit)."""
    req: dict[str, str] = {}
    lim: dict[str, str] = {}
    res = spec.resources
    if res and res.cpus:
        req["cpu"] = cpu_quantity(res.cpus)
        if not res.cpus.endswith("+"):
            lim["cpu"] = req["cpu"]
    if res and res.memory:
        req["memory"] = memory_quantity(res.memory)
        if not res.memory.endswith("+"):
            lim["memory"] = req["memory"]
    gpus = gpu_count(spec)
    if gpus:
        lim[GPU_RESOURCE] = str(gpus)
    if not req:  # never a BestEffort pod (first evicted, no share under contention): a stated default
        req = dict(DEFAULT_REQUESTS)
    out: dict[str, Any] = {}
    if req:
        out["requests"] = req
    if lim:
        out["limits"] = lim
    return out


def ray_num_cpus(spec: NodeSpec) -> str:
    """Ray's --num-cpus: a pod without a CPU limit would otherwise count the whole node's cores."""
    res = spec.resources
    if not (res and res.cpus):
        return ""
    return str(int(_number(res.cpus)))


def object_store_bytes(cfg: ClusterConfig, spec: NodeSpec) -> str:
    """min(90% of /dev/shm, 30% of the pod's memory (its request when `N+`)), in bytes."""
    size = quantity_bytes(cfg.kubernetes.shm_size) * OBJECT_STORE_SHARE
    res = spec.resources
    if res and res.memory:
        size = min(size, _number(res.memory) * _UNITS["Gi"] * OBJECT_STORE_MEMORY_SHARE)
    return str(int(size))


# --------------------------------------------------------------------------- pods


def _scheduling(cfg: ClusterConfig, spec: NodeSpec) -> dict[str, Any]:
    k = cfg.kubernetes
    gpu = gpu_count(spec) > 0
    selector = dict(k.node_selector)
    if spec.instance_type and spec.instance_type != "auto":
        selector["node.kubernetes.io/instance-type"] = spec.instance_type
    zone = spec.zone or cfg.zone
    if zone:
        selector["topology.kubernetes.io/zone"] = zone
    if gpu:
        selector.update(k.gpu_node_selector)
    tolerations = [copy.deepcopy(t) for t in k.tolerations]
    if gpu:
        tolerations += [copy.deepcopy(t) for t in k.gpu_tolerations if t not in tolerations]
    out: dict[str, Any] = {}
    if selector:
        out["nodeSelector"] = selector
    if tolerations:
        out["tolerations"] = tolerations
    if k.affinity:
        out["affinity"] = copy.deepcopy(k.affinity)
    return out


def _ports(cfg: ClusterConfig) -> list[dict[str, Any]]:
    r = cfg.setup.ray
    # KubeRay reads these port names; the same names serve operator none.
    return [
        {"name": "gcs-server", "containerPort": r.port, "protocol": "TCP"},
        {"name": "dashboard", "containerPort": r.dashboard_port, "protocol": "TCP"},
        {"name": "client", "containerPort": r.client_port, "protocol": "TCP"},
    ]


def _downward(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _env(cfg: ClusterConfig, spec: NodeSpec) -> list[dict[str, Any]]:
    """Facts about the pod that every phase (and a user in `kubectl exec`) can read."""
    env = [
        {"name": "STYX_IN_CONTAINER", "value": "1"},
        _downward("STYX_POD_NAME", "metadata.name"),
        _downward("STYX_POD_NAMESPACE", "metadata.namespace"),
        _downward("STYX_POD_IP", "status.podIP"),
    ]
    if cfg.kubernetes.operator == "kuberay":
        # No phases in this mode: the cluster's env goes straight into the pods (secrets by reference),
        # and so does Ray's token auth (the token by reference to its Secret)
        auth = [{"name": "RAY_AUTH_MODE", "value": "token"},
                {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": ray_auth_secret_name(cfg),
                                                                           "key": RAY_AUTH_KEY}}}] \
            if kuberay_token_auth(cfg) else []
        return env + auth + [{"name": k, "value": v} for k, v in sorted(cfg.setup.env.items())]
    # Read by setup_scripts/ray.sh (the phase table does not set them): Ray's object store fits the
    # /dev/shm emptyDir, and a pod without a CPU limit does not claim the whole node's cores.
    env.append({"name": "STYX_RAY_OBJECT_STORE_BYTES", "value": object_store_bytes(cfg, spec)})
    cpus = ray_num_cpus(spec)
    if cpus:
        env.append({"name": "STYX_RAY_NUM_CPUS", "value": cpus})
    return env


def pod_template(cfg: ClusterConfig, group: str, role: str, spec: NodeSpec) -> dict[str, Any]:
    kuberay = cfg.kubernetes.operator == "kuberay"
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image_of(cfg, spec),
        "imagePullPolicy": "IfNotPresent",
        "env": _env(cfg, spec),
        "resources": container_resources(spec),
        "volumeMounts": [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}],
    }
    if kuberay:
        # KubeRay writes the command (`ray start ...`); the image's own user runs Ray.
        container["securityContext"] = {
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        if cfg.setup.secret_env:
            container["envFrom"] = [{"secretRef": {"name": env_secret_name(cfg)}}]
    else:
        container["command"] = list(KEEPALIVE)
        container["securityContext"] = {
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "runAsUser": 0,  # the phases install packages (apt, pip) like they do on a VM
            "capabilities": {"drop": ["ALL"], "add": list(ROOT_CAPABILITIES)},
        }
    if role == "head":
        container["ports"] = _ports(cfg)
    spec_out: dict[str, Any] = {
        "serviceAccountName": service_account_name(cfg),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 30,
        **_scheduling(cfg, spec),
        "containers": [container],
        "volumes": [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": cfg.kubernetes.shm_size}}],
    }
    if cfg.kubernetes.image_pull_secrets:
        spec_out["imagePullSecrets"] = [{"name": n} for n in cfg.kubernetes.image_pull_secrets]
    return {"metadata": {"labels": pod_labels(cfg, group, role)}, "spec": spec_out}


def template_hash(template: dict[str, Any]) -> str:
    """Changes whenever the pods of a group change (image, resources, scheduling, env)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- objects


def _meta(cfg: ClusterConfig, name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace_of(cfg), "labels": {**common_labels(cfg), **labels}}


def namespace(cfg: ClusterConfig) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace_of(cfg), "labels": common_labels(cfg)}}


def service_account(cfg: ClusterConfig) -> dict[str, Any]:
    """No Role/RoleBinding: the pods get no API rights, and no token is mounted."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(cfg, service_account_name(cfg)),
            "automountServiceAccountToken": False}


def _service_ports(cfg: ClusterConfig) -> list[dict[str, Any]]:
    return [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": "TCP"}
            for p in _ports(cfg)]


def head_service(cfg: ClusterConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta(cfg, head_service_name(cfg), **{L_COMPONENT: "ray-head"}),
        "spec": _exposure(cfg, {
            "type": cfg.kubernetes.service_type,
            "selector": {**group_selector(cfg, "head"), L_ROLE: "head"},
            "ports": _service_ports(cfg),
        }),
    }


def _exposure(cfg: ClusterConfig, spec: dict[str, Any]) -> dict[str, Any]:
    """A LoadBalancer admits only `service_source_ranges` (NodePort: the NetworkPolicy does)."""
    k = cfg.kubernetes
    if k.service_type == "LoadBalancer" and k.service_source_ranges:
        spec["loadBalancerSourceRanges"] = list(k.service_source_ranges)
    return spec


def pods_service(cfg: ClusterConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta(cfg, pods_service_name(cfg)),
        "spec": {
            "clusterIP": "None",
            # DNS names exist before Ray runs (the pods are Ready long before that anyway).
            "publishNotReadyAddresses": True,
            "selector": selector_labels(cfg),
            "ports": [{"name": "gcs-server", "port": cfg.setup.ray.port, "targetPort": cfg.setup.ray.port,
                       "protocol": "TCP"}],
        },
    }


def statefulset(cfg: ClusterConfig, group: str, role: str, spec: NodeSpec, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": _meta(cfg, statefulset_name(cfg, group), **{L_GROUP: group}),
        "spec": {
            "replicas": replicas,
            "serviceName": pods_service_name(cfg),
            # all pods at once (the default starts them one by one, each waiting for the previous)
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": group_selector(cfg, group)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": pod_template(cfg, group, role, spec),
        },
    }


METADATA_CIDRS = {"0.0.0.0/0": ["169.254.169.254/32"], "::/0": ["fd00:ec2::254/128"]}
"""The cloud metadata addresses (AWS/GCP/Azure IPv4, AWS IPv6) the egress rule leaves out."""


def network_policy(cfg: ClusterConfig) -> dict[str, Any]:
    """Ingress to the Ray pods from this cluster's pods only (kubectl exec/port-forward go through the
    kubelet, not the pod network). A Service the config exposes (NodePort/LoadBalancer) also admits
    its ports, from `service_source_ranges` only (the config refuses an exposed Service without them).
    Egress: everywhere (the phases download packages) except the cloud metadata address, unless
    `allow_metadata_egress`; pods in the cluster (DNS) stay reachable."""
    k = cfg.kubernetes
    rules: list[dict[str, Any]] = [{"from": [{"podSelector": {"matchLabels": selector_labels(cfg)}}]}]
    if k.service_type != "ClusterIP":
        rules.append({"from": [{"ipBlock": {"cidr": c}} for c in k.service_source_ranges],
                      "ports": [{"port": p["containerPort"], "protocol": "TCP"} for p in _ports(cfg)]})
    spec: dict[str, Any] = {"podSelector": {"matchLabels": selector_labels(cfg)}, "policyTypes": ["Ingress"],
                            "ingress": rules}
    if not k.allow_metadata_egress:
        spec["policyTypes"] = ["Ingress", "Egress"]
        spec["egress"] = [
            {"to": [{"namespaceSelector": {}}]},
            {"to": [{"ipBlock": {"cidr": c, "except": ex}} for c, ex in METADATA_CIDRS.items()]},
        ]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _meta(cfg, f"{cfg.name}-ray"),
        "spec": spec,
    }


def ray_auth_secret(cfg: ClusterConfig) -> dict[str, Any]:
    """The Secret KubeRay's pods read RAY_AUTH_TOKEN from; the program fills in the token (a secret)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(cfg, ray_auth_secret_name(cfg)), "type": "Opaque",
            "stringData": {RAY_AUTH_KEY: "<the cluster's ray_auth_token>"}}


def env_secret(cfg: ClusterConfig) -> dict[str, Any]:
    """kuberay: setup.secret_env as a Secret the pods read by reference (values never in a pod spec)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(cfg, env_secret_name(cfg)), "type": "Opaque",
            "stringData": dict(sorted(cfg.setup.secret_env.items()))}


def ray_start_params(cfg: ClusterConfig, role: str, spec: NodeSpec) -> dict[str, str]:
    r = cfg.setup.ray
    params: dict[str, str] = {"object-store-memory": object_store_bytes(cfg, spec)}
    if role == "head":
        params.update({
            "port": str(r.port),
            # The dashboard (and its job API) stays on the pod's loopback: reach it with
            # `kubectl port-forward`, which connects there through the kubelet.
            "dashboard-host": "127.0.0.1",
            "dashboard-port": str(r.dashboard_port),
            "ray-client-server-port": str(r.client_port),
        })
    cpus = ray_num_cpus(spec)
    if cpus:
        params["num-cpus"] = cpus
    gpus = gpu_count(spec)
    if gpus:
        params["num-gpus"] = str(gpus)
    if not r.usage_stats:
        params["disable-usage-stats"] = "true"
    params.update(parse_start_args(r.extra_start_args)[0])
    return params


def parse_start_args(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """`--name=value` / `--flag` -> rayStartParams; the rest is returned as not understood."""
    out: dict[str, str] = {}
    bad: list[str] = []
    for a in args:
        m = re.fullmatch(r"--([a-z][a-z0-9-]*)(?:=(.*))?", a)
        if m:
            out[m.group(1)] = "true" if m.group(2) is None else m.group(2)
        else:
            bad.append(a)
    return out, bad


def ray_cluster(cfg: ClusterConfig) -> dict[str, Any]:
    head = cfg.head
    groups = []
    for g in cfg.workers:
        n = g.count or 0
        groups.append({
            "groupName": g.name,
            # a fixed size, like every styx group (KubeRay's autoscaler stays off)
            "replicas": n,
            "minReplicas": n,
            "maxReplicas": n,
            "rayStartParams": ray_start_params(cfg, "worker", g),
            "template": pod_template(cfg, g.name, "worker", g),
        })
    return {
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": _meta(cfg, cfg.name),
        "spec": {
            "rayVersion": cfg.setup.ray.version,
            "enableInTreeAutoscaling": False,
            "headGroupSpec": {
                **({"headService": {"spec": _exposure(cfg, {})}}
                   if cfg.kubernetes.service_type == "LoadBalancer" else {}),
                "serviceType": cfg.kubernetes.service_type,
                "rayStartParams": ray_start_params(cfg, "head", head),
                "template": pod_template(cfg, "head", "head", head),
            },
            "workerGroupSpecs": groups,
        },
    }


def kuberay_selector(cfg: ClusterConfig, group: str) -> str:
    """Label selector of a KubeRay group's pods (KubeRay names the pods itself)."""
    if group == "head":
        return f"ray.io/cluster={cfg.name},ray.io/node-type=head"
    return f"ray.io/cluster={cfg.name},ray.io/group={group}"


def manifests(cfg: ClusterConfig) -> list[dict[str, Any]]:
    """Every object, in creation order."""
    k = cfg.kubernetes
    out: list[dict[str, Any]] = []
    if k.create_namespace:
        out.append(namespace(cfg))
    out.append(service_account(cfg))
    if k.network_policy:
        out.append(network_policy(cfg))
    if k.operator == "kuberay":
        if cfg.setup.secret_env:
            out.append(env_secret(cfg))
        if kuberay_token_auth(cfg):
            out.append(ray_auth_secret(cfg))
        out.append(ray_cluster(cfg))
        return out
    out += [pods_service(cfg), head_service(cfg), statefulset(cfg, "head", "head", cfg.head, 1)]
    out += [statefulset(cfg, g.name, "worker", g, g.count or 0) for g in cfg.workers]
    return out
