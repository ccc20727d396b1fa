"""`cloud: local`: each node is a sandbox host on this Linux machine (netns + overlay root + sshd).

The host-side work is `sandbox/sandboxctl.sh`; here each sandbox (and the cluster's bridge + NAT) is a
`command.local.Command` whose delete undoes its create, so `pulumi destroy` leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
from pulumi_command import local

from styx.components import phases
from styx.components.backends.base import Backend, Feature, NodeHandle, NodeRequest, PhaseOverride, ProvisionContext
from styx.components.backends.local_images import LocalImages
from styx.components.phases import python_env_applies
from styx.model.config import CONFIG_KEY, ClusterConfig, LocalConfig, NodeSpec

SANDBOXCTL = Path(__file__).resolve().parents[2] / "sandbox" / "sandboxctl.sh"
WHEEL_CACHE = SANDBOXCTL.parent / "wheel_cache.py"
READY_ENV = SANDBOXCTL.parent / "ready_env.py"
READY_ENV_FORMAT = "1"  # the ready environments' key: a new value when what goes into them changes
WHEEL_CACHE_PORT = 18950  # on the bridge's gateway address: every cluster has its own
APT_CACHE_PORT = 18952  # the apt lists (setup.apt_cache), same address (18951: the head's wheel cache)
BASE_PYTHON = "3.11"  # python3 of the sandbox base image (Debian bookworm)


def bridge_name(cfg: ClusterConfig) -> str:
    return cfg.local.bridge or "sx" + hashlib.sha256(cfg.name.encode()).hexdigest()[:10]


def address_of(cfg: ClusterConfig, group_index: int | None, index: int) -> str:
    """Stable addresses: gateway .1, head .2, worker group k at 10 + k*group_block + i.

    Growing one group never moves a node of another group.
    """
    net = ipaddress.IPv4Network(cfg.local.subnet)
    offset = 2 if group_index is None else 10 + group_index * cfg.local.group_block + index
    return str(net.network_address + offset)


def wheel_cache_key(cfg: ClusterConfig) -> str:
    """The cache folder of a cluster's wheels on this machine (phases.wheel_cache_key, for the sandboxes'
    Python)."""
    return phases.wheel_cache_key(cfg, _nodes_python(cfg))


@cache
def base_id() -> str:
    """The sandbox base image's name (`sandboxctl base-id`: its suite and recipe hash)."""
    r = subprocess.run(["bash", str(SANDBOXCTL), "base-id"], capture_output=True, text=True, check=True)
    return r.stdout.strip()


def ready_env_applies(cfg: ClusterConfig) -> bool:
    """setup.python.env_cache auto with what it needs: python_env makes a venv, and the wheel cache's server
    (which serves the ready environments) runs."""
    py = cfg.setup.python
    return (py.env_cache == "auto" and py.wheel_cache == "auto" and py.env_tool == "venv"
            and python_env_applies(cfg))


def ready_env_key(cfg: ClusterConfig) -> str:
    """A ready environment's name: everything that decides what python_env makes in a new environment on the
    sandbox base (the wheel cache's key: requirements, index, Python; the venv's path and owner, the tool, the
    installer and its version, the base image). Same key: the same environment."""
    py = cfg.setup.python
    blob = "\0".join([READY_ENV_FORMAT, wheel_cache_key(cfg), py.venv_dir, "root", py.env_tool, py.installer,
                      phases.UV_VERSION, base_id()])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _nodes_python(cfg: ClusterConfig) -> str:
    """The nodes' Python X.Y (`system`: the sandbox base image's python3)."""
    return BASE_PYTHON if cfg.setup.python.version == "system" else cfg.setup.python.version


def _wheel_cache_cmd(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in (sys.executable, str(WHEEL_CACHE), *args))


def _cache_server(ctx: ProvisionContext, kind: str, root: str, gw: str, port: int) -> local.Command:
    """The HTTP server of one of this machine's caches (`kind`: wheel, apt) for the cluster's nodes: folder
    `root` on the bridge's gateway `gw`, stopped by the delete (pid file in local.state_dir)."""
    cfg = ctx.cfg
    pidfile = str(Path(cfg.local.state_dir) / f".{kind}-cache-{cfg.name}.pid")
    return local.Command(
        f"{cfg.name}-{kind}-server",
        create=_wheel_cache_cmd("serve", root, gw, str(port), pidfile),
        delete=_wheel_cache_cmd("stop", pidfile),
        triggers=[gw, root],
        logging=local.Logging.STDERR,
        opts=pulumi.ResourceOptions(parent=ctx.cluster, depends_on=[ctx.shared["net"]]),
    )


def _key_values(path: Path, no_links_below: Path | None = None) -> dict[str, str] | None:
    """`key=value` lines of a small file; None when it is absent. Below `no_links_below` (a node's own
    root) no symlink is followed: the node's files never lead this host elsewhere."""
    if no_links_below is not None:
        p = no_links_below
        for part in path.relative_to(no_links_below).parts:
            p = p / part
            if p.is_symlink():
                return None
    try:
        text = path.read_text(errors="replace")[:4096]
    except OSError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _ctl(sub: str, env: dict[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    def render(values: dict[str, str]) -> str:
        exports = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(values.items()))
        return f"export {exports}; bash {shlex.quote(str(SANDBOXCTL))} {sub}"

    return pulumi.Output.all(**env).apply(render)


class LocalBackend(LocalImages, Backend):
    name = "local"
    # zones are names in `local.zones`: failover walks them; autostop: this host's reaper acts on the head's
    # request (stop: the sandboxes; down: `styx down` of the stack)
    # images: a node's root as later nodes' root (`image`: components/backends/local_images.py)
    features = Feature.ZONES | Feature.STOP | Feature.AUTOSTOP | Feature.AUTOSTOP_DOWN | Feature.IMAGES
    config_section = "local"
    capacity_patterns = (r"InsufficientCapacity",)  # sandboxctl's test-only refusal (STYX_SB_REFUSE_FILE)

    def config_problems(self, cfg: ClusterConfig, catalog: Any = None) -> list[str]:
        p = super().config_problems(cfg, catalog)
        k = CONFIG_KEY
        net = ipaddress.IPv4Network(cfg.local.subnet)
        need = 10 + cfg.local.group_block * max(1, len(cfg.workers))
        if net.num_addresses < need:
            p.append(
                f"{k}.local.subnet: {cfg.local.subnet} has {net.num_addresses} addresses but "
                f"{len(cfg.workers)} worker groups × group_block {cfg.local.group_block} need {need}"
            )
        for i, g in enumerate(cfg.workers):
            if (g.count or 0) > cfg.local.group_block:
                p.append(f"{k}.workers[{i}].count: {g.count} exceeds local.group_block ({cfg.local.group_block})")
        if cfg.setup.ray.enabled and cfg.setup.ray.container is not None and not cfg.local.docker:
            p.append(f"{k}.setup.ray.container: needs sandboxes that can run Docker: set local.docker: true "
                     "(allowed with ray.container on cloud local: local.docker true)")
        return p + self.image_problems(cfg)

    def config_zones(self, cluster: Mapping[str, Any]) -> list[str] | None:
        return list((cluster.get("local") or {}).get("zones") or LocalConfig.model_fields["zones"].get_default(
            call_default_factory=True))

    def fixed_price(self, cfg: ClusterConfig, spec: NodeSpec, zone: str | None) -> dict[str, Any] | None:
        return {"instance_type": "sandbox", "zone": zone or cfg.local.zones[0], "price_per_hour": 0.0,
                "source": "local"}

    def ssh_port(self, cluster: Mapping[str, Any], node: str) -> int:
        return 22  # every sandbox runs sshd on 22 at its own address

    def check(self, cfg: ClusterConfig) -> list[str]:
        if os.environ.get("STYX_LOCAL_PREFLIGHT", "1") == "0":
            return []
        missing = self.image_check(cfg)
        if missing:
            return missing
        env = {**os.environ, **self._net_env(cfg)}
        r = subprocess.run(["bash", str(SANDBOXCTL), "preflight"], env=env, capture_output=True, text=True,
                           check=False)
        if r.returncode != 0:
            lines = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if ln.strip()]
            return [f"styx:cluster.cloud: local backend cannot run here: {lines[-1] if lines else 'preflight failed'}"]
        return []

    def gone_machines(self, cluster: Mapping[str, Any], nodes: Sequence[str]) -> list[str] | None:
        """Nodes whose sandbox no longer runs (removed or stopped outside Pulumi: `sandboxctl node-alive`)."""
        cfg = ClusterConfig.model_validate(cluster)
        env = {**os.environ, **self._net_env(cfg)}

        def is_gone(n: str) -> bool:
            r = subprocess.run(["bash", str(SANDBOXCTL), "node-alive"], env={**env, "STYX_SB_NODE": n},
                               capture_output=True, text=True, check=False)
            return r.returncode == 1 and r.stdout.strip() == "gone"

        # one read-only check per node, run side by side (a 16-node `up` waited 16 in a row)
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(nodes)))) as pool:
            flags = list(pool.map(is_gone, nodes))
        return [n for n, g in zip(nodes, flags, strict=True) if g]

    def _node_ctl(self, cluster: Mapping[str, Any], nodes: Sequence[str], sub: str) -> None:
        cfg = ClusterConfig.model_validate(cluster)
        env = {**os.environ, **self._net_env(cfg)}
        for n in nodes:
            r = subprocess.run(["bash", str(SANDBOXCTL), sub], env={**env, "STYX_SB_NODE": n},
                               capture_output=True, text=True, check=False)
            if r.returncode != 0:
                lines = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if ln.strip()]
                raise RuntimeError(f"node {n}: sandboxctl {sub} failed: {lines[-1] if lines else r.returncode}")

    def stop_machines(self, cluster: Mapping[str, Any], nodes: Sequence[str]) -> None:
        """`sandboxctl node-stop`: the sandbox's processes end; its root, address and host keys stay."""
        self._node_ctl(cluster, nodes, "node-stop")

    def start_machines(self, cluster: Mapping[str, Any], nodes: Sequence[str]) -> None:
        """`sandboxctl node-start`: sshd runs again as PID 1 on the kept root."""
        self._node_ctl(cluster, nodes, "node-start")

    def autostop_helpers(self, cfg: ClusterConfig) -> list[tuple[str, str]]:
        return [("command:local:Command", f"{cfg.name}-autostop-reaper")]

    def autostop_record(self, cluster: Mapping[str, Any]) -> dict[str, Any] | None:
        """The reaper's record (`sandboxctl autostop-reaper-start`): what it stopped, when, and why."""
        cfg = ClusterConfig.model_validate(cluster)
        rec = _key_values(Path(cfg.local.state_dir) / cfg.name / ".autostop" / "record")
        if not rec or not rec.get("at"):
            return None
        return {"at": rec["at"], "action": rec.get("action") or "stop", "nodes": (rec.get("nodes") or "").split()}

    def autostop_state(self, cluster: Mapping[str, Any]) -> dict[str, Any] | None:
        """The head watcher's state file, read from the head's root on this host (no SSH)."""
        cfg = ClusterConfig.model_validate(cluster)
        st = _key_values(Path(cfg.local.state_dir) / cfg.name / "head" / "upper" / "var/lib/styx/autostop/state",
                         no_links_below=Path(cfg.local.state_dir) / cfg.name / "head" / "upper")
        if st is None:
            return None
        return {"idle_since": st.get("idle_since_iso") or None, "checked_at": st.get("checked_at") or None,
                "busy": st.get("busy") or ""}

    def _net_env(self, cfg: ClusterConfig) -> dict[str, str]:
        net = ipaddress.IPv4Network(cfg.local.subnet)
        return {
            "STYX_SB_CLUSTER": cfg.name,
            "STYX_SB_SUBNET": cfg.local.subnet,
            "STYX_SB_BRIDGE": bridge_name(cfg),
            "STYX_SB_MTU": str(cfg.local.mtu),
            "STYX_SB_GATEWAY": str(net.network_address + 1),
            "STYX_SB_PREFIX": str(net.prefixlen),
            "STYX_CACHE_DIR": cfg.local.cache_dir,
            "STYX_SB_STATE_DIR": cfg.local.state_dir,
        }

    def prepare(self, ctx: ProvisionContext) -> None:
        env = self._net_env(ctx.cfg)
        ctx.shared["net"] = local.Command(
            f"{ctx.cfg.name}-network",
            create=_ctl("net-up", env),
            delete=_ctl("net-down", env),
            triggers=[env["STYX_SB_SUBNET"], env["STYX_SB_BRIDGE"], env["STYX_SB_MTU"]],
            logging=local.Logging.STDERR,
            opts=ctx.opts,
        )
        # The base image is built once and cached; nodes wait for it.
        ctx.shared["base"] = local.Command(
            f"{ctx.cfg.name}-base-image",
            create=_ctl("base", env),
            logging=local.Logging.STDERR,
            opts=ctx.opts,
        )
        groups = {g.name: i for i, g in enumerate(ctx.cfg.workers)}
        ctx.shared["groups"] = groups
        ctx.shared["wheel_cache_url"] = self._wheel_cache(ctx, env)
        ctx.shared["apt_lists_url"] = self._apt_cache(ctx, env)
        if ctx.shared["wheel_cache_url"] is not None and ready_env_applies(ctx.cfg):
            key = ready_env_key(ctx.cfg)
            ctx.shared["ready_env"] = (key, f"http://{env['STYX_SB_GATEWAY']}:{WHEEL_CACHE_PORT}/envs/{key}.tar")
        if ctx.cfg.setup.autostop is not None:
            # the head cannot stop its own sandbox: this host's reaper acts on its watcher's request; a
            # "down" one is `styx down` of this stack, through the engine (this Python, this stack; the
            # engine's settings the reaper keeps from its own environment, never from this command text)
            nodes = " ".join([n for n, role, _s, _i in ctx.cfg.nodes() if role != "head"] + ["head"])
            renv = {k: env[k] for k in ("STYX_SB_CLUSTER", "STYX_SB_STATE_DIR")}
            down = {"STYX_SB_DOWN_STACK": pulumi.get_stack(), "STYX_SB_DOWN_PYTHON": sys.executable}
            local.Command(
                f"{ctx.cfg.name}-autostop-reaper",
                create=_ctl("autostop-reaper-start", {**renv, "STYX_SB_AUTOSTOP_NODES": nodes, **down}),
                delete=_ctl("autostop-reaper-stop", renv),
                triggers=[nodes],
                logging=local.Logging.STDERR,
                opts=pulumi.ResourceOptions(parent=ctx.cluster, depends_on=[ctx.shared["net"]]),
            )

    def _wheel_cache(self, ctx: ProvisionContext, env: dict[str, str]) -> pulumi.Output[str] | None:
        """setup.python.wheel_cache auto: this machine downloads the cluster's wheels once (the download,
        keyed by what is installed) and serves them on the bridge's gateway (the server); python_env on
        every node installs from there first and waits for both (its URL is their output)."""
        cfg = ctx.cfg
        if cfg.setup.python.wheel_cache != "auto" or not python_env_applies(cfg):
            return None
        key = wheel_cache_key(cfg)
        root = str(Path(cfg.local.cache_dir) / "wheels")
        gw = env["STYX_SB_GATEWAY"]
        server = _cache_server(ctx, "wheel", root, gw, WHEEL_CACHE_PORT)
        pyver = _nodes_python(cfg)
        environment: dict[str, pulumi.Input[str]] = {"STYX_WC_SPECS": "\n".join(phases.wheel_cache_specs(cfg))}
        if cfg.setup.python.index_url:  # may hold credentials: the environment, a secret, never argv
            environment["PIP_INDEX_URL"] = pulumi.Output.secret(cfg.setup.python.index_url)
        wheels = local.Command(
            f"{cfg.name}-wheels",
            create=_wheel_cache_cmd("fill", root, key, pyver),
            environment=environment,
            triggers=[key],
            logging=local.Logging.STDERR,
            opts=ctx.opts,
        )
        url = f"http://{gw}:{WHEEL_CACHE_PORT}/{key}/"
        return pulumi.Output.all(server.id, wheels.id).apply(lambda _: url)

    def head_set_up(self, ctx: ProvisionContext, phases: Mapping[str, pulumi.Resource]) -> None:
        """setup.python.env_cache auto: once the head's phases are done (python_env, the custom scripts, and the
        ray phase: the bytecode its first `ray start` compiled), this machine packs the head's environment, read
        from the head's root here, as the ready environment of its key (`sandbox/ready_env.py capture`; only
        when the environment is still what python_env recorded; never fails the launch). Made once per key: a
        no-op `up` runs nothing, a changed key captures again; `styx down` leaves it (the newest 3 are kept)."""
        cfg = ctx.cfg
        if "ready_env" not in ctx.shared or cfg.head.image or "python_env" not in phases:
            return
        key = ctx.shared["ready_env"][0]
        root = Path(cfg.local.state_dir) / cfg.name / "head" / "merged"
        dest = Path(cfg.local.cache_dir) / "wheels" / "envs"
        # after what may change the venv (python_env, the custom scripts) and the ray phase (its bytecode); not
        # after the others: a targeted update (`styx autostop --off`) could not delete a phase this depends on
        after = [r for name, r in phases.items() if name in ("python_env", "ray") or name.startswith("custom")]
        local.Command(
            f"{cfg.name}-env-capture",
            create=" ".join(shlex.quote(a) for a in (sys.executable, str(READY_ENV), "capture", str(root),
                                                     cfg.setup.python.venv_dir, key, str(dest))),
            triggers=[key],
            logging=local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=ctx.cluster, depends_on=after),
        )

    @staticmethod
    def _overrides(ctx: ProvisionContext, node: NodeRequest) -> dict[str, PhaseOverride]:
        """The caches' URLs for the phases that read them (none when a cache is off). The ready environment's
        URL is the same whether or not its tarball is there yet (python_env asks the server at run time), so
        python_env's inputs do not change when it appears."""
        out = {}
        if (url := ctx.shared.get("wheel_cache_url")) is not None:
            env: dict[str, pulumi.Input[str]] = {
                "STYX_WHEEL_CACHE_URL": url, "STYX_WHEEL_CACHE_FETCH": ctx.cfg.setup.python.wheel_cache_fetch}
            if (ready := ctx.shared.get("ready_env")) is not None:
                env["STYX_READY_ENV_KEY"] = ready[0]  # python_env records what it makes under this key
                if not node.spec.image:  # a node from an image: its own environment, not the base's
                    env["STYX_READY_ENV_URL"] = ready[1]
            out["python_env"] = PhaseOverride(env=env)
        if (apt := ctx.shared.get("apt_lists_url")) is not None:
            out["system_packages"] = PhaseOverride(env={"STYX_APT_LISTS_URL": apt})
        return out

    def _apt_cache(self, ctx: ProvisionContext, env: dict[str, str]) -> pulumi.Output[str] | None:
        """setup.apt_cache auto (with setup.packages): this machine runs apt-get update once for the base
        image's sources (`sandboxctl apt-lists`, lists younger than 10 min reused) and serves the packed lists
        on the bridge's gateway; system_packages on every node takes them instead of its own apt-get update
        while they are younger than an hour (lib.sh), and waits for both (the URL is their output)."""
        cfg = ctx.cfg
        if cfg.setup.apt_cache != "auto" or not cfg.setup.packages:
            return None
        root = str(Path(cfg.local.cache_dir) / "apt")
        gw = env["STYX_SB_GATEWAY"]
        server = _cache_server(ctx, "apt", root, gw, APT_CACHE_PORT)
        lists = local.Command(
            f"{cfg.name}-apt-lists",
            create=_ctl("apt-lists", {k: env[k] for k in ("STYX_CACHE_DIR",)}),
            logging=local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=ctx.cluster, depends_on=[ctx.shared["base"]]),
        )
        base = f"http://{gw}:{APT_CACHE_PORT}/"
        return pulumi.Output.all(server.id, lists.stdout).apply(
            lambda v: base + path if (path := (v[1] or "").strip()) else "")

    def machine(self, ctx: ProvisionContext, node: NodeRequest, parent) -> NodeHandle:
        cfg = ctx.cfg
        gi = None if node.role == "head" else ctx.shared["groups"][node.group]
        ip = address_of(cfg, gi, node.index)
        zone = node.spec.zone or cfg.zone or cfg.local.zones[0]
        env: dict[str, pulumi.Input[str]] = {
            **self._net_env(cfg),
            "STYX_SB_NODE": node.name,
            "STYX_SB_IP": ip,
            "STYX_SB_ZONE": zone,
            "STYX_SB_PUBKEY": ctx.key.public_key,
            "STYX_SB_SHM_SIZE": cfg.local.shm_size,
            "STYX_SB_DOCKER": "1" if cfg.local.docker else "0",
            # only what never changes when the cluster grows: itself and the head (Ray uses addresses)
            "STYX_SB_HOSTS": f"{address_of(cfg, None, 0)} head\n{ip} {node.name}" if gi is not None
            else f"{ip} head",
        }
        # The node's SSH host key: made by styx, installed by node-up from its stdin (never in the
        # command text), pinned by every connection.
        hk = ctx.host_key(node, parent)
        env["STYX_SB_HOST_KEY"] = "stdin"
        # ssh.jump: this machine cannot open a connection to a private node (only the head, or a bastion, can)
        private = ctx.private(node)
        env["STYX_SB_PRIVATE"] = "1" if private else "0"
        if node.spec.image:  # a local image (`styx image create`): the sandbox's root instead of the base
            env["STYX_SB_IMAGE"] = node.spec.image
        refuse = os.environ.get("STYX_SB_REFUSE_FILE")
        if refuse:  # test-only: make a "zone" refuse capacity (see sandbox/README.md)
            env["STYX_SB_REFUSE_FILE"] = refuse
        sandbox = local.Command(
            f"{cfg.name}-{node.name}-sandbox",
            create=_ctl("node-up", env),
            stdin=hk.private_key,
            delete=_ctl("node-down", {k: env[k] for k in ("STYX_SB_CLUSTER", "STYX_SB_NODE", "STYX_SB_STATE_DIR")}),
            # A change to any of these makes a new sandbox (and so re-runs every phase on it). A new host
            # key (stdin) is an update: node-up installs it in the running sandbox.
            triggers=[ip, zone, ctx.key.public_key, cfg.local.shm_size, cfg.local.subnet,
                      *(["docker"] if cfg.local.docker else []),
                      *([f"image:{node.spec.image}"] if node.spec.image else [])],
            logging=local.Logging.STDERR,
            # Same name and address: the old sandbox must go before its replacement comes.
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[ctx.shared["net"], ctx.shared["base"]],
                                        delete_before_replace=True),
        )
        transport = ctx.ssh_transport(ip, 22, "root", hk, private=private)
        return NodeHandle(
            name=node.name,
            role=node.role,
            host=ip,
            private_ip=ip,
            user="root",
            port=22,
            transport=transport,
            identity=sandbox.id,
            resources=[sandbox],
            info={"zone": zone, "instance_type": "sandbox", "price_per_hour": 0.0},
            phase_overrides=self._overrides(ctx, node),
            host_key=hk,
            private=private,
        )
