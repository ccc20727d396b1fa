"""`cloud: kubernetes`: a Ray cluster as pods on an existing Kubernetes cluster (EKS, GKE, on-prem).

Everything goes through one explicit `kubernetes.Provider` (the config's kubeconfig/context). The
objects are built in `kubernetes_manifests` (namespace, ServiceAccount, NetworkPolicy, then either
StatefulSets + Services or one KubeRay `RayCluster`).

operator `none`: the pods only stay alive; the phase table runs in them through `kubectl exec`
(`KubectlExecTransport`, a `command.local.Command`), same scripts and triggers as on a VM. The gate
waits for the pod to be Ready. Phases that do not belong in a container are skipped or changed per
node (`phase_overrides`, handed over in `NodeHandle.info["phase_overrides"]`).

operator `kuberay`: KubeRay starts Ray from the image; styx runs no setup phase (they would be lost
whenever KubeRay replaces a pod), only a gate per node that waits for its pod and checks its GPUs.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import local

from styx.components.backends import kubernetes_manifests as m
from styx.components.backends.base import (
    Backend,
    Feature,
    NodeHandle,
    NodeRequest,
    PhaseOverride,
    ProvisionContext,
    allowed,
)
from styx.components.transport import LocalShellTransport
from styx.model.config import CONFIG_KEY, ClusterConfig, NodeSpec

K = f"{CONFIG_KEY}.kubernetes"


SKIP_DOCKER = "no Docker daemon inside a pod: the node's container runtime runs containers"
SKIP_GPU = ("the GPU driver comes from the node (NVIDIA device plugin / GPU operator) and CUDA from the image; "
            "the gate checked the pod's GPUs with nvidia-smi")
SKIP_CPU_GPU = "this pod requests no GPU"
SKIP_KUBERAY = "operator kuberay: Ray and its environment come from the image and KubeRay starts Ray"


# --------------------------------------------------------------------------- kubectl


def kubectl_words(cfg: ClusterConfig) -> str:
    """`kubectl` with the config's kubeconfig/context/namespace as flags (shell words).

    A `~/` path stays `"$HOME"/...` so the command text (an input of every phase) is the same for
    every user of the stack: a different home folder must not re-run phases.
    """
    k = cfg.kubernetes
    words = ["kubectl"]
    if k.kubeconfig:
        path = k.kubeconfig
        words.append("--kubeconfig=" + ('"$HOME"/' + shlex.quote(path[2:]) if path.startswith("~/")
                                        else shlex.quote(path)))
    if k.context:
        words.append("--context=" + shlex.quote(k.context))
    words.append("--namespace=" + shlex.quote(m.namespace_of(cfg)))
    return " ".join(words)


def gpu_check(pod: str, gpus: int) -> str:
    """Shell that fails unless nvidia-smi in the pod lists at least `gpus` GPUs (output to stderr)."""
    if gpus <= 0:
        return ""
    return (
        "n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)\n"
        f'if [ "${{n:-0}}" -lt {gpus} ]; then echo "styx: pod {pod}: expected {gpus} GPUs, nvidia-smi shows '
        f'${{n:-0}}" >&2; exit 1; fi\n'
        f'echo "styx: pod {pod}: $n GPUs visible" >&2\n'
    )


def _uid(meta: Any) -> str:
    uid = meta.get("uid") if isinstance(meta, dict) else getattr(meta, "uid", None)
    return uid or "new"


SETUP_MARK = "styx.dev/setup"
"""Pod annotation the gate writes: the mark (see `setup_marks`) this pod's phases ran under."""


def setup_marks(cfg: ClusterConfig) -> dict[str, str]:
    """Per existing StatefulSet pod: the mark that goes into its node's identity.

    A pod the gate set up carries the mark it ran under (annotation `styx.dev/setup`), so the mark
    stays the same from one `up` to the next. A pod without it was made outside this stack's runs
    (deleted outside Pulumi and recreated by its StatefulSet): its mark is its uid, which differs,
    so its phases run again; the gate then writes that mark on it. A pod that does not exist yet gets
    `none` (the gate writes `none`). Read with kubectl when the program runs (a read, like a data
    source); empty when the cluster cannot be read (mocks, no kubectl): every pod counts as `none`.
    """
    if _under_mocks() or shutil.which("kubectl") is None or os.environ.get("STYX_K8S_READ_PODS", "1") == "0":
        return {}
    sel = ",".join(f"{k}={v}" for k, v in m.selector_labels(cfg).items())
    cmd = f"{kubectl_words(cfg)} get pods -l {shlex.quote(sel)} -o json"
    try:
        out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pulumi.log.warn("styx: kubectl get pods timed out: cannot tell recreated pods apart this time")
        return {}
    if out.returncode != 0:
        return {}
    marks: dict[str, str] = {}
    for pod in json.loads(out.stdout or "{}").get("items", []):
        meta = pod.get("metadata", {})
        if meta.get("deletionTimestamp"):
            continue
        marks[meta["name"]] = (meta.get("annotations") or {}).get(SETUP_MARK) or meta.get("uid", "none")
    return marks


def _under_mocks() -> bool:
    from pulumi.runtime import mocks, settings

    return isinstance(getattr(settings.SETTINGS, "monitor", None), mocks.MockMonitor)


class KubectlExecTransport(LocalShellTransport):
    """Runs a phase in a StatefulSet pod: `kubectl exec -i POD -c ray -- bash -s`, the phase on stdin.

    On stdin (not argv) the phase's parameters, secrets included, never show in a process list on
    either side and no argument size limit applies. The gate first waits for the pod to exist and be
    Ready (and checks its GPUs). An undo whose pod is gone (a group scaled down) has nothing to undo.
    """

    def __init__(self, kubectl: str, pod: str, *, timeout_s: int, gpus: int = 0, mark: str = "",
                 statefulset: str | None = None):
        self.kubectl, self.pod, self.timeout_s, self.gpus, self.mark = kubectl, pod, timeout_s, gpus, mark
        self.statefulset = statefulset
        self.gate_timeout_s = 2 * timeout_s + 120
        super().__init__(prefix=f"{kubectl} exec -i {shlex.quote(pod)} -c {m.CONTAINER} --")

    def wait_script(self) -> str:
        kc, pod, t = self.kubectl, shlex.quote(self.pod), self.timeout_s
        return (
            (self._revision_wait() if self.statefulset else
             f"t=0; until {kc} get pod {pod} >/dev/null 2>&1; do\n"
             f'  if [ "$t" -ge {t} ]; then echo "styx: pod {self.pod} not found after {t}s" >&2; exit 1; fi\n'
             f"  sleep 2; t=$((t+2))\n"
             f"done\n")
            + f"{kc} wait --for=condition=Ready pod/{pod} --timeout={t}s >&2\n"
            + (f"{kc} annotate --overwrite pod/{pod} {SETUP_MARK}={shlex.quote(self.mark)} >&2\n"
               if self.mark else "")
        )

    def _revision_wait(self) -> str:
        """Until the pod exists, runs the StatefulSet's current pod template (its
        controller-revision-hash is the set's updateRevision, once the controller has seen the set's
        latest generation) and is not being deleted. The provider may report a changed StatefulSet
        updated before its rollout starts; without this the gate would set up an old pod that the
        rollout then kills (POSIX sh: the engine runs it with /bin/sh)."""
        kc, pod, t, sts = self.kubectl, shlex.quote(self.pod), self.timeout_s, shlex.quote(str(self.statefulset))
        sts_jp = shlex.quote("{.status.observedGeneration}/{.metadata.generation}/{.status.updateRevision}")
        pod_jp = shlex.quote("{.metadata.labels.controller-revision-hash}{.metadata.deletionTimestamp}")
        return (
            "t=0; r=; while :; do\n"
            f"  s=$({kc} get statefulset {sts} -o jsonpath={sts_jp} 2>/dev/null) || s=\n"
            '  o=${s%%/*}; r=${s#*/}; g=${r%%/*}; r=${r#*/}\n'
            '  if [ -n "$s" ] && [ -n "$r" ] && [ "$o" = "$g" ]; then\n'
            f"    h=$({kc} get pod {pod} -o jsonpath={pod_jp} 2>/dev/null) || h=\n"
            '    if [ "$h" = "$r" ]; then break; fi\n'
            "  fi\n"
            f'  if [ "$t" -ge {t} ]; then echo "styx: pod {self.pod} not running the current template of '
            f'StatefulSet {self.statefulset} (revision $r) after {t}s" >&2; exit 1; fi\n'
            "  sleep 2; t=$((t+2))\n"
            "done\n"
        )

    def exec_prefix(self, gate: bool) -> str:
        return (self.wait_script() if gate else "") + self.prefix

    def guard_delete(self, cmd: str) -> str:
        kc, pod = self.kubectl, shlex.quote(self.pod)
        return (
            f"if {kc} get pod {pod} >/dev/null 2>&1; then\n"
            f"  {cmd}\n"
            f'else echo "styx: pod {self.pod} is gone: nothing to undo" >&2; fi'
        )

    def stdin_prefix(self, gate: bool) -> str:
        return gpu_check(self.pod, self.gpus) if gate else ""


class KubeRayTransport(KubectlExecTransport):
    """operator kuberay: KubeRay names the pods, so the gate finds the node's pod by label (the
    `index`-th of its group by name), waits for it and checks it. Any other phase that still reaches
    this transport is a local no-op with a `skipped` status line (see `phase_overrides`)."""

    def __init__(self, kubectl: str, selector: str, index: int, node_prefix: str, *, timeout_s: int, gpus: int = 0):
        self.selector, self.index, self.node_prefix = selector, index, node_prefix
        super().__init__(kubectl, f"{selector}#{index}", timeout_s=timeout_s, gpus=gpus)

    def wait_script(self) -> str:
        kc, sel, i, t = self.kubectl, shlex.quote(self.selector), self.index, self.timeout_s
        return (
            "t=0; while :; do\n"
            f"  pod=$({kc} get pods -l {sel} --sort-by=.metadata.name "
            f"-o jsonpath='{{.items[{i}].metadata.name}}' 2>/dev/null) || pod=\n"
            '  if [ -n "$pod" ]; then break; fi\n'
            f'  if [ "$t" -ge {t} ]; then\n'
            f'    echo "styx: no pod #{i} with labels {self.selector} after {t}s" >&2; exit 1\n'
            "  fi\n"
            "  sleep 5; t=$((t+5))\n"
            "done\n"
            f'{kc} wait --for=condition=Ready "pod/$pod" --timeout={t}s >&2\n'
        )

    def exec_prefix(self, gate: bool) -> str:
        return self.wait_script() + f'{self.kubectl} exec -i "$pod" -c {m.CONTAINER} --'

    def run(self, name, run, *, triggers, opts):
        if run.gate:
            return super().run(name, run, triggers=triggers, opts=opts)
        line = f"styx {run.phase}: skipped: {SKIP_KUBERAY}"
        return local.Command(
            name,
            create=f"printf '%s\\n' {shlex.quote(line)}",
            triggers=list(triggers),
            logging=local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=opts,
        )


# --------------------------------------------------------------------------- backend


class KubernetesBackend(Backend):
    key_generator = "none"  # phases go through kubectl exec: no SSH key
    name = "kubernetes"
    features = Feature.NONE  # pods land where the scheduler puts them; spot is a node pool (selectors)
    config_section = "kubernetes"

    spot_hint = "select a spot node pool with kubernetes.node_selector / tolerations"

    # ------------------------------------------------------------------ config rules

    def catalog_clouds(self, cfg: ClusterConfig) -> tuple[str, ...] | None:
        """An instance_type is a node label (`node.kubernetes.io/instance-type`) of any cloud's type."""
        return None if any(s.instance_type and not s.allow_unlisted for _, s, _ in self._specs(cfg)) else ()

    def config_problems(self, cfg: ClusterConfig, catalog: Any = None) -> list[str]:
        k = cfg.kubernetes
        p = super().config_problems(cfg, catalog)
        if k.kubeconfig and "\n" in k.kubeconfig:
            p.append(f"{K}.kubeconfig: give the path of a kubeconfig file, not its contents")
        if k.create_namespace and m.namespace_of(cfg) in m.SYSTEM_NAMESPACES:
            p.append(f"{K}.namespace: {m.namespace_of(cfg)!r} is a system namespace: styx would own (and on "
                     "destroy delete) it; set create_namespace: false to use it, or pick another name")
        types = set().union(*(catalog.instance_types(c) for c in catalog.clouds)) if catalog is not None else set()
        for where, spec, group in self._specs(cfg):
            # pods carry a `controller-revision-hash` label `<statefulset>-<hash>` (at most 63 characters)
            sts = m.statefulset_name(cfg, group)
            if len(sts) > 52:
                p.append(f"{CONFIG_KEY}.{where}: the StatefulSet name {sts!r} is longer than 52 characters; "
                         "shorten the cluster or group name")
            t = spec.instance_type
            if t == "auto":
                p.append(f"{CONFIG_KEY}.{where}.instance_type: 'auto' is not allowed for cloud kubernetes (the "
                         "scheduler places pods; allowed: a node's instance-type label, or unset)")
            elif t and catalog is not None and not spec.allow_unlisted and t not in types:
                p.append(f"{CONFIG_KEY}.{where}.instance_type: {t!r} is not an instance type in the catalogs "
                         f"({', '.join(catalog.clouds)}); {allowed(types, t)} (a node label no catalog lists: set "
                         f"allow_unlisted: true on {where})")
            res = spec.resources
            if res and (res.any_of or res.ordered):
                p.append(f"{CONFIG_KEY}.{where}.resources: any_of/ordered are not supported for cloud kubernetes; "
                         "give accelerators: NAME:COUNT (the GPU node pool is chosen by gpu_node_selector)")
            mem = res.memory_size() if res else None
            if mem is not None and mem.per_cpu:
                p.append(f"{CONFIG_KEY}.{where}.resources.memory: {res.memory!r} (GiB per vCPU) needs the optimizer "
                         "(aws/gcp instance_type: auto); for cloud kubernetes give GiB: N or N+")
        if k.service_type != "ClusterIP":
            if not k.service_source_ranges:
                p.append(f"{K}.service_source_ranges: required with service_type {k.service_type} (the head "
                         "Service publishes the GCS, Ray client and dashboard ports): give the CIDRs that may reach "
                         "it, e.g. [203.0.113.0/24], or use service_type ClusterIP (allowed: ClusterIP, NodePort, "
                         "LoadBalancer)")
            for c in k.service_source_ranges:
                try:
                    net = ipaddress.ip_network(c, strict=False)
                except ValueError:
                    p.append(f"{K}.service_source_ranges: {c!r} is not a CIDR (e.g. 203.0.113.0/24)")
                    continue
                if net.prefixlen == 0:
                    p.append(f"{K}.service_source_ranges: {c} is everyone: the GCS and Ray client ports are never "
                             "published to the whole internet; give narrower CIDRs")
        if k.operator == "kuberay":
            p += self._kuberay_problems(cfg)
        return p

    def config_warnings(self, cfg: ClusterConfig) -> list[str]:
        w = super().config_warnings(cfg)
        req = ", ".join(f"{k}={v}" for k, v in m.DEFAULT_REQUESTS.items())
        for where, spec, _ in self._specs(cfg):
            res = spec.resources
            if not (res and (res.cpus or res.memory)):
                w.append(f"warning: {CONFIG_KEY}.{where}.resources: no cpus/memory given: its pods request {req} "
                         "(not BestEffort); set resources.cpus and resources.memory to size them")
        if cfg.kubernetes.allow_metadata_egress:
            w.append(f"warning: {K}.allow_metadata_egress: true lets the Ray pods reach the cloud metadata address "
                     "(169.254.169.254): node credentials become readable from every Ray task")
        return w

    # ------------------------------------------------------------------ check (the host)

    def check(self, cfg: ClusterConfig) -> list[str]:
        if os.environ.get("STYX_K8S_PREFLIGHT", "1") != "0":
            return self._host_problems(cfg)
        return []

    @staticmethod
    def _specs(cfg: ClusterConfig) -> list[tuple[str, NodeSpec, str]]:
        return [("head", cfg.head, "head")] + [(f"workers[{i}]", g, g.name) for i, g in enumerate(cfg.workers)]

    @staticmethod
    def _kuberay_problems(cfg: ClusterConfig) -> list[str]:
        s = cfg.setup
        why = "is not supported with kubernetes.operator kuberay (no setup phases run in KubeRay's pods): " \
              "bake it into kubernetes.image"
        p = []
        if not s.ray.enabled:
            p.append(f"{CONFIG_KEY}.setup.ray.enabled: false contradicts kubernetes.operator kuberay "
                     "(KubeRay runs Ray)")
        checks = [
            ("packages", bool(s.packages)),
            ("python.pip_packages", bool(s.python.pip_packages)),
            ("python.version", s.python.version != "system"),
            ("conda.enabled", s.conda.enabled),
            ("docker.mode", s.docker.mode == "install"),
            ("file_mounts", bool(s.file_mounts)),
            ("workdir", bool(s.workdir)),
            ("custom_scripts", bool(s.custom_scripts)),
        ]
        p += [f"{CONFIG_KEY}.setup.{key} {why}" for key, bad in checks if bad]
        _, bad = m.parse_start_args(s.ray.extra_start_args)
        if bad:
            p.append(f"{CONFIG_KEY}.setup.ray.extra_start_args: {bad} are not --name=value or --flag arguments "
                     "(KubeRay takes rayStartParams)")
        return p

    @staticmethod
    def _host_problems(cfg: ClusterConfig) -> list[str]:
        """What the machine running Pulumi needs (STYX_K8S_PREFLIGHT=0 skips this)."""
        p = []
        if shutil.which("kubectl") is None:
            p.append(f"{CONFIG_KEY}.cloud: kubernetes needs kubectl on PATH (setup phases run through kubectl exec)")
        kc = cfg.kubernetes.kubeconfig
        if kc and "\n" not in kc and not Path(os.path.expanduser(kc)).is_file():
            p.append(f"{K}.kubeconfig: {kc!r} not found")
        return p

    # ------------------------------------------------------------------ resources

    def prepare(self, ctx: ProvisionContext) -> None:
        cfg = ctx.cfg
        k = cfg.kubernetes
        provider = k8s.Provider(
            f"{cfg.name}-k8s",
            kubeconfig=os.path.expanduser(k.kubeconfig) if k.kubeconfig else None,
            context=k.context,
            namespace=m.namespace_of(cfg),
            enable_server_side_apply=True,
            opts=ctx.opts,
        )
        ctx.shared["provider"] = provider
        ctx.shared["kubectl"] = kubectl_words(cfg)
        objects: dict[str, pulumi.CustomResource] = {}
        ns_deps: list[pulumi.Resource] = []
        for doc in m.manifests(cfg):
            res = self._create(ctx, doc, provider, ns_deps)
            objects[f"{doc['kind']}/{doc['metadata']['name']}"] = res
            if doc["kind"] == "Namespace":
                ns_deps = [res]
        ctx.shared["objects"] = objects
        ctx.shared["templates"] = self._templates(cfg)

    @staticmethod
    def _templates(cfg: ClusterConfig) -> dict[str, dict[str, Any]]:
        out = {"head": m.pod_template(cfg, "head", "head", cfg.head)}
        out.update({g.name: m.pod_template(cfg, g.name, "worker", g) for g in cfg.workers})
        return out

    @staticmethod
    def _create(ctx: ProvisionContext, doc: dict[str, Any], provider: k8s.Provider,
                deps: list[pulumi.Resource]) -> pulumi.CustomResource:
        cfg = ctx.cfg
        kind, meta, name = doc["kind"], doc["metadata"], doc["metadata"]["name"]
        rname = f"{cfg.name}-{kind.lower()}-{name}"
        pods = kind in ("StatefulSet", "RayCluster")
        timeout = f"{cfg.kubernetes.pod_ready_timeout_s}s"
        opts = pulumi.ResourceOptions(
            parent=ctx.cluster,
            provider=provider,
            depends_on=deps,
            # fixed names: a replacement must delete the old object first
            delete_before_replace=kind != "Namespace",
            # a StatefulSet is ready when its pods are: scheduling a GPU pod and pulling a CUDA image take time
            custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout) if pods else None,
        )
        if kind == "Namespace":
            return k8s.core.v1.Namespace(rname, metadata=meta, opts=opts)
        if kind == "ServiceAccount":
            return k8s.core.v1.ServiceAccount(
                rname, metadata=meta, automount_service_account_token=doc["automountServiceAccountToken"], opts=opts)
        if kind == "Service":
            return k8s.core.v1.Service(rname, metadata=meta, spec=doc["spec"], opts=opts)
        if kind == "StatefulSet":
            return k8s.apps.v1.StatefulSet(rname, metadata=meta, spec=doc["spec"], opts=opts)
        if kind == "NetworkPolicy":
            return k8s.networking.v1.NetworkPolicy(rname, metadata=meta, spec=doc["spec"], opts=opts)
        if kind == "Secret":
            data = doc["stringData"]
            if name == m.ray_auth_secret_name(cfg):  # the manifest holds a placeholder, the state the token
                data = {m.RAY_AUTH_KEY: ctx.ray_token}
            return k8s.core.v1.Secret(rname, metadata=meta, type=doc["type"],
                                      string_data=pulumi.Output.secret(data), opts=opts)
        if kind == "RayCluster":
            return k8s.apiextensions.CustomResource(rname, api_version=doc["apiVersion"], kind=kind, metadata=meta,
                                                    spec=doc["spec"], opts=opts)
        raise ValueError(f"no resource class for kind {kind}")

    # ------------------------------------------------------------------ nodes

    def phase_overrides(self, cfg: ClusterConfig, node: NodeRequest) -> dict[str, PhaseOverride]:
        """Per phase: skip it (with the reason shown as its result) or add env for its script."""
        if cfg.kubernetes.operator == "kuberay":
            return {"*": PhaseOverride(skip=SKIP_KUBERAY)}
        return {
            "docker": PhaseOverride(skip=SKIP_DOCKER),
            "gpu": PhaseOverride(skip=SKIP_GPU if m.gpu_count(node.spec) else SKIP_CPU_GPU),
            # Ray picks the pod's own address (`hostname -I`): a pod IP is not known before the pod
            # exists, and a DNS name would not match the address Ray sees on the node.
            "ray": PhaseOverride(env={"STYX_NODE_IP": ""}),
        }

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        cfg = ctx.cfg
        k = cfg.kubernetes
        kubectl = ctx.shared["kubectl"]
        gpus = m.gpu_count(node.spec)
        template = ctx.shared["templates"][node.group]
        thash = m.template_hash(template)
        kuberay = k.operator == "kuberay"
        if kuberay:
            owner = ctx.shared["objects"][f"RayCluster/{cfg.name}"]
            selector = m.kuberay_selector(cfg, node.group)
            transport: KubectlExecTransport = KubeRayTransport(
                kubectl, selector, node.index, f"{cfg.name}-{node.name}", timeout_s=k.pod_ready_timeout_s, gpus=gpus)
            host = f"{selector}#{node.index}"
            private = m.head_dns(cfg) if node.role == "head" else host
            user = "ray"
        else:
            owner = ctx.shared["objects"][f"StatefulSet/{m.statefulset_name(cfg, node.group)}"]
            host = m.pod_name(cfg, node.group, node.index)
            if "marks" not in ctx.shared:
                ctx.shared["marks"] = setup_marks(cfg)
            mark = ctx.shared["marks"].get(host, "none")
            transport = KubectlExecTransport(kubectl, host, timeout_s=k.pod_ready_timeout_s, gpus=gpus, mark=mark,
                                             statefulset=m.statefulset_name(cfg, node.group))
            private = m.head_dns(cfg) if node.role == "head" else host
            user = "root"
        # A new StatefulSet/RayCluster (uid), a changed pod template or (operator none) a pod recreated
        # outside Pulumi (its setup mark) re-runs this node's phases.
        suffix = "" if kuberay else f"/{transport.mark}"
        identity = owner.metadata.apply(lambda md, h=thash: f"{_uid(md)}/{h}{suffix}")
        overrides = self.phase_overrides(cfg, node)
        info: dict[str, Any] = {
            "zone": node.spec.zone or cfg.zone or "",
            "instance_type": _shape(node.spec),
            "price_per_hour": 0.0,
            "namespace": m.namespace_of(cfg),
            "pod": host,
            "template_hash": thash,
        }
        return NodeHandle(
            name=node.name,
            role=node.role,
            host=host,
            private_ip=private,
            user=user,
            port=0,  # no SSH: phases go through kubectl exec
            transport=transport,
            identity=identity,
            resources=[owner],
            info=info,
            phase_overrides=overrides,
        )

    def outputs(self, ctx: ProvisionContext, head: NodeHandle) -> dict[str, Any]:
        cfg = ctx.cfg
        r = cfg.setup.ray
        kubectl = ctx.shared["kubectl"]
        svc = m.head_service_name(cfg)
        forward = (f"{kubectl} port-forward svc/{svc} {r.dashboard_port}:{r.dashboard_port}"
                   f"  # then open http://127.0.0.1:{r.dashboard_port}")
        if cfg.kubernetes.operator == "kuberay":
            pods = [f"{m.kuberay_selector(cfg, 'head')}#0"] + [
                f"{m.kuberay_selector(cfg, g.name)}#{i}" for g in cfg.workers for i in range(g.count or 0)]
            shell = f"{kubectl} exec -it \"$({kubectl} get pod -l {m.kuberay_selector(cfg, 'head')} -o name)\" " \
                    f"-c {m.CONTAINER} -- bash"
        else:
            pods = [m.pod_name(cfg, "head", 0)] + [
                m.pod_name(cfg, g.name, i) for g in cfg.workers for i in range(g.count or 0)]
            shell = f"{kubectl} exec -it {m.pod_name(cfg, 'head', 0)} -c {m.CONTAINER} -- bash"
        return {
            # replaces the Cluster's SSH-tunnel hint (exported after it)
            "dashboard": forward,
            "kubernetes": {
                "namespace": m.namespace_of(cfg),
                "operator": cfg.kubernetes.operator,
                "head_service": f"{m.head_dns(cfg)}:{r.port}",
                "ray_client": f"ray://{m.head_dns(cfg)}:{r.client_port}",
                "dashboard_port_forward": forward,
                "head_shell": shell,
                "pods": pods,
            },
        }


def _shape(spec: NodeSpec) -> str:
    """A pod's size for the `nodes` output, e.g. `pod cpu=8 memory=32Gi nvidia.com/gpu=8`."""
    res = m.container_resources(spec)
    parts = {**res.get("requests", {}), **res.get("limits", {})}
    return " ".join(["pod", *(f"{k}={v}" for k, v in parts.items())])
