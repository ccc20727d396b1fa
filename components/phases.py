"""The phase table: every setup phase defined once (script + parameters + when it applies + undo +
time limit).

Every backend runs the same rows through its transport; a new phase is one script in
`setup_scripts/` plus one row here. Parameters reach the script as quoted `export K=V` lines of the
phase's program, which travels on stdin (components/runner.py), never in a command text. A list
(packages, pip and conda specs, `ray start` arguments) is one element per line (`_lines`); the
scripts read it back with `mapfile`, so every element reaches its command as one argument, exactly
as written (no word splitting, no globbing, no eval).
A phase with an undo is replaced delete-first (its undo runs, then the new phase) unless its row says
create-first (file_sync), and its undo only acts while the node still records its generation: an old
resource's undo never removes what its replacement wrote.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from styx.model.config import ClusterConfig, CustomScript, NodeSpec
from styx.model.grammar import format_count

SCRIPTS = Path(__file__).resolve().parent.parent / "setup_scripts"

ENV_FILE = "/etc/styx/env.sh"


@cache
def script_text(name: str) -> str:
    return (SCRIPTS / name).read_text()


@dataclass(frozen=True)
class NodeInfo:
    """What a phase may know about the node it runs on (Outputs allowed for addresses)."""

    name: str
    role: str  # "head" | "worker"
    spec: NodeSpec
    private_ip: Any  # Input[str]
    head_ip: Any  # Input[str]: the head's private address
    user: str = "root"  # the SSH user phases run as


@dataclass(frozen=True)
class PhaseContext:
    cluster: ClusterConfig
    node: NodeInfo
    env_content: Any = None  # Input[str], secret when secret_env is set
    sync: Any = None  # styx.components.filesync.SyncBundle when there are file mounts
    ray_token: Any = None  # Input[str], a secret: the cluster's Ray auth token (setup.ray.auth: token)
    image: ImageTarball | None = None  # setup.ray.container.tarball, hashed
    registry_password: Any = None  # Input[str], a secret: setup.ray.container.registry.password
    # setup.autostop: the nodes stop themselves (`Backend.autostop_poweroff`: AWS, GCP): the head's watcher
    # serves its request and shuts down, each worker follows it; False: the backend acts on the request
    autostop_poweroff: bool = False
    # setup.python.wheel_cache auto where the head serves the wheels (`Backend.wheel_cache_on_head`: ssh, aws,
    # gcp): the head's wheel_cache phase fetches them once, every node's python_env installs from it
    wheel_cache_on_head: bool = False
    # a worker's ray phase beside the head's (setup.ray.worker_start: with_head): the generation of the head's
    # ray phase it waits for in the head's GCS (the head's chain hash); None: it follows the head's phase
    head_ray_generation: Any = None  # Input[str]


Env = Mapping[str, Any]

# The container Ray runs in with setup.ray.container (one per node), and what every command that
# enters it sources first (the ray_container phase writes it: the image's Ray bin/ first on PATH).
RAY_CONTAINER = "styx-ray"
CONTAINER_ENV_FILE = "/etc/styx/ray-container.env"
JOBS_DIR = "/tmp/styx-jobs"  # styx.app.jobs copies a job's --working-dir under it
# setup.autostop where the nodes stop themselves: the head serves its request here, on its private address
# (the cluster's own network: every cloud firewall lets only the cluster's nodes reach it)
AUTOSTOP_PORT = 18952
# setup.python.wheel_cache auto on the head (ssh, aws, gcp): the head serves the cluster's wheels here, on its
# private address (the cloud firewalls let only the cluster's nodes reach it, as the Ray ports)
HEAD_WHEEL_CACHE_PORT = 18951
HEAD_WHEEL_CACHE_DIR = "/var/lib/styx/wheel-cache"  # on the head: wheels/<key>/, tools/ (uv), server.pid
WHEEL_CACHE_FORMAT = "1"  # in the cache key: a new layout never reads an old one


@dataclass(frozen=True)
class ImageTarball:
    """setup.ray.container.tarball: where it is here, and its content hash (the phase's trigger)."""

    path: str
    sha256: str

    @property
    def remote_path(self) -> str:
        """Where the transport puts it on a node (relative: in the SSH user's home)."""
        return f".cache/styx/images/{self.sha256}.tar"


def ray_in_container(cfg: ClusterConfig) -> bool:
    return cfg.setup.ray_in_container


# What every shell entering the Ray container runs first, so it sees what Ray's processes see: the image's
# Ray first on PATH, the cluster's env vars and secret env vars (the env file, when the image's user may
# read it), the Ray client's auth settings. One line, ending in "; ".
CONTAINER_PRELUDE = (f"[ ! -r {CONTAINER_ENV_FILE} ] || . {CONTAINER_ENV_FILE}; "
                     f"if [ -r {ENV_FILE} ]; then set -a; . {ENV_FILE}; set +a; fi; "
                     "[ ! -r /etc/styx/ray-auth.env ] || . /etc/styx/ray-auth.env; ")


def in_container(command: str, *, tty: bool = False, workdir: str | None = None) -> str:
    """A shell command line that runs `command` (a shell line) inside the node's Ray container, with
    what Ray's processes see (CONTAINER_PRELUDE) (`styx exec --container`, `styx ssh --container`, Ray
    health and jobs)."""
    inner = CONTAINER_PRELUDE + command
    flags = "-it" if tty else "-i"
    if workdir:
        flags += f" -w {shlex.quote(workdir)}"
    return (f'd=docker; [ "$(id -u)" = 0 ] || d="sudo -n docker"; '
            f"exec $d exec {flags} {RAY_CONTAINER} bash -c {shlex.quote(inner)}")


@dataclass(frozen=True)
class Phase:
    name: str
    script: str  # the script body (lib.sh is prepended when rendered)
    env: Callable[[PhaseContext], Env]
    applies: Callable[[PhaseContext], bool] = lambda ctx: True
    undo: str | None = None  # script run when the phase resource is deleted
    undo_env: Callable[[PhaseContext], Env] | None = None
    secret_output: bool = False  # stdout/stderr may carry secrets
    # None: derived (a phase with an undo is replaced delete-first); False: create-first, for a phase
    # whose undo is generation-guarded and cheap to skip (file_sync: no 10,000-file remove + re-extract)
    delete_before_replace: bool | None = None
    timeout_s: int = 1800  # default bound on the node (setup.timeouts overrides)
    # a file the phase needs on the node: (local path, remote path, sha256), copied before it runs
    upload: Callable[[PhaseContext], tuple[str, str, str] | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # what `styx drift` checks, read-only (the script's check_drift(), run with the action `verify`)
    verify: str = ""
    # (phase name, predicate): when the phase just before this one on the node is that phase and the
    # predicate holds, both start together (this one waits for what that one waits for, and the next
    # phase for both). The trigger chain is unchanged: an edit of that phase still re-runs this one.
    alongside: tuple[str, Callable[[PhaseContext], bool]] | None = None
    # setup_scripts files of functions the script and its undo share (not lib.sh: that one is every
    # phase's): the program carries their text before each; run by hand, a script sources them itself
    helpers: tuple[str, ...] = ()
    # phases of the same node this one starts after even when it starts alongside the one before it
    # (python_env after the head's wheel_cache); no effect on the trigger chain
    waits_for: tuple[str, ...] = ()
    # parameters that carry another node's chain hash, which is in the triggers already (a worker's Ray:
    # the head's Ray generation): left out of the phase's own hash, so an edit there reads as a re-run
    # that follows that node, not as this phase's own change
    chain_params: tuple[str, ...] = ()

    @property
    def replace_delete_first(self) -> bool:
        """A phase with an undo is replaced delete-first unless its row says otherwise."""
        return self.undo is not None if self.delete_before_replace is None else self.delete_before_replace

    def timeout(self, ctx: PhaseContext) -> int:
        return phase_limit(ctx, self.name, self.timeout_s)


def phase_limit(ctx: PhaseContext, name: str, default: int) -> int:
    """Seconds phase `name` may run on the node: setup.timeouts.<name>, else .default, else the row's."""
    t = _setup(ctx).timeouts
    return int(t.get(name, t.get("default", default)))


def _lines(items, key: str) -> str:
    """A list parameter: one element per line, read back by the script with `mapfile -t` (one
    argument each). An element that is empty or holds a line break or NUL could not be read back as
    itself, so it is refused, naming its config key."""
    out = [str(x) for x in items]
    for i, x in enumerate(out):
        if not x.strip() or any(c in x for c in "\n\r\0"):
            raise ValueError(f"{key}[{i}]: {x!r}: a list element must be non-empty and on one line "
                             "(it reaches the node as one argument, exactly as written)")
    return "\n".join(out)


def _setup(ctx: PhaseContext):
    return ctx.cluster.setup


UV_VERSION = "0.13.9"  # the uv wheel of setup.python.installer uv (and of env_tool uv)


def python_specs(cfg: ClusterConfig) -> list[str]:
    """What python_env installs on the host: setup.python.pip_packages, then Ray (unless they name it).
    Also what a backend's wheel cache fetches for the nodes. With setup.ray.container: nothing (Ray comes
    from the image, the pip packages go into the container: container_pip)."""
    py, ray = cfg.setup.python, cfg.setup.ray
    if ray_in_container(cfg):
        return []
    packages = list(py.pip_packages)
    named = any(p.split("[")[0].split("=")[0].strip() == "ray" for p in packages)
    if ray.enabled and not named:
        # Ray is installed here, not in the ray phase: every node installs it in parallel, while
        # workers' ray phase (start + join) has to wait for the head's.
        packages.append(f"ray[default]=={ray.version}")
    return packages


def python_env_applies(cfg: ClusterConfig) -> bool:
    s = cfg.setup
    return bool(python_specs(cfg)) or s.python.version != "system"


def wheel_cache_specs(cfg: ClusterConfig) -> list[str]:
    """What a wheel cache fetches for the nodes: what python_env installs, uv when it is the installer, and
    what `uv venv --seed` seeds from the cache."""
    py = cfg.setup.python
    specs = python_specs(cfg) + ([f"uv=={UV_VERSION}"] if py.installer == "uv" else [])
    if py.installer == "uv" and py.env_tool == "venv":
        specs += ["pip", "setuptools", "wheel"]
    return specs


def wheel_cache_key(cfg: ClusterConfig, python: str) -> str:
    """The cache folder of a cluster's wheels: its requirements (`wheel_cache_specs`), the index and the nodes'
    Python (X.Y, or `system`: the head's python3)."""
    blob = "\0".join([WHEEL_CACHE_FORMAT, python, cfg.setup.python.index_url or "", *wheel_cache_specs(cfg)])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def head_wheel_cache(ctx: PhaseContext) -> bool:
    """The head serves the cluster's wheels (its wheel_cache phase) and every python_env installs from it."""
    return (ctx.wheel_cache_on_head and _setup(ctx).python.wheel_cache == "auto"
            and python_env_applies(ctx.cluster))


def head_wheel_cache_url(ctx: PhaseContext) -> Any:
    """Where python_env finds the head's cache: its private address (an Output on the clouds)."""
    from pulumi import Output

    key = wheel_cache_key(ctx.cluster, _setup(ctx).python.version)
    return Output.concat("http://", ctx.node.head_ip, f":{HEAD_WHEEL_CACHE_PORT}/{key}/")


def index_url_input(url: str | None) -> Any:
    """setup.python.index_url as a phase's input: it may hold credentials, so a secret (never plain in the
    state; it reaches the node on the phase's stdin, never a command line); "" when unset."""
    from pulumi import Output

    return Output.secret(url) if url else ""


def _python_env(ctx: PhaseContext) -> Env:
    py = _setup(ctx).python
    packages = python_specs(ctx.cluster)
    return {
        "STYX_PYTHON_VERSION": py.version,
        "STYX_PYTHON_ENV_TOOL": py.env_tool,
        "STYX_VENV_DIR": py.venv_dir,
        "STYX_PIP_PACKAGES": _lines(packages, "setup.python.pip_packages"),
        "STYX_PIP_INDEX_URL": index_url_input(py.index_url),
        "STYX_PIP_INSTALLER": py.installer,
        "STYX_UV_VERSION": UV_VERSION,
        **({"STYX_WHEEL_CACHE_URL": head_wheel_cache_url(ctx)} if head_wheel_cache(ctx) else {}),
    }


@cache
def uv_wheel_program() -> str:
    """python_env.sh's fetcher of the uv wheel (its UV_WHEEL_PY, the one copy): stdlib only, no pip. The head's
    wheel_cache phase fetches the uv that resolves the cluster's wheels with it."""
    m = re.search(r"^UV_WHEEL_PY='\n(.*?)^'$", script_text("python_env.sh"), re.S | re.M)
    assert m, "python_env.sh: no UV_WHEEL_PY='...' block"
    return m.group(1)


def _wheel_cache_env(ctx: PhaseContext) -> Env:

    py = _setup(ctx).python
    return {
        "STYX_WC_DIR": HEAD_WHEEL_CACHE_DIR,
        "STYX_WC_KEY": wheel_cache_key(ctx.cluster, py.version),
        "STYX_WC_PYTHON": py.version,
        "STYX_WC_SPECS": _lines(wheel_cache_specs(ctx.cluster), "setup.python.pip_packages"),
        "STYX_WC_BIND": ctx.node.private_ip,
        "STYX_WC_PORT": str(HEAD_WHEEL_CACHE_PORT),
        "STYX_WC_PROGRAM": script_text("wheel_cache.py"),
        "STYX_UV_VERSION": UV_VERSION,
        "STYX_UVW_PROGRAM": uv_wheel_program(),
        # may hold credentials: a secret, on the phase's stdin, then the fill's environment, never a command line
        "STYX_PIP_INDEX_URL": index_url_input(py.index_url),
    }


def _conda_env(ctx: PhaseContext) -> Env:
    c = _setup(ctx).conda
    return {
        "STYX_CONDA_ENABLED": "1" if c.enabled else "0",
        "STYX_CONDA_INSTALLER_URL": c.installer_url,
        "STYX_CONDA_INSTALLER_SHA256": c.installer_sha256 or "",
        "STYX_CONDA_PREFIX": c.prefix,
        "STYX_CONDA_ENV_NAME": c.env_name,
        "STYX_CONDA_PYTHON": c.python,
        "STYX_CONDA_PACKAGES": _lines(c.packages, "setup.conda.packages"),
    }


def _docker_env(ctx: PhaseContext) -> Env:
    d = _setup(ctx).docker
    return {
        "STYX_DOCKER_MODE": d.mode,
        "STYX_DOCKER_METHOD": d.method,
        "STYX_DOCKER_NVIDIA_TOOLKIT": d.nvidia_toolkit,
    }


def _expected_gpus(ctx: PhaseContext) -> str:
    """GPUs the node should show: setup.gpu.expected_count, else the count of resources.accelerators
    (styx.model.grammar: a bare `A100` is one GPU), else "" (no check)."""
    g = _setup(ctx).gpu
    if g.expected_count:
        return str(g.expected_count)
    res = ctx.node.spec.resources
    acc = res.accelerator() if res else None
    return format_count(acc.count) if acc else ""


def _gpu_env(ctx: PhaseContext) -> Env:
    g = _setup(ctx).gpu
    return {
        "STYX_GPU_MODE": g.mode,
        "STYX_NVIDIA_DRIVER_VERSION": g.driver_version,
        "STYX_CUDA_VERSION": g.cuda_version,
        "STYX_CUDNN_VERSION": g.cudnn_version,
        "STYX_GPU_EXPECTED_COUNT": _expected_gpus(ctx),
    }


def _sync_env(ctx: PhaseContext) -> Env:
    b = ctx.sync
    return {
        "STYX_SYNC_ARCHIVE": b.remote_path,
        "STYX_SYNC_SHA256": b.sha256,
        "STYX_SYNC_ROOTS": "\n".join(m.remote for m in _setup(ctx).file_mounts),
    }


def _env_env(ctx: PhaseContext) -> Env:
    return {"STYX_ENV_FILE": ENV_FILE, "STYX_ENV_CONTENT": ctx.env_content}


def _workdir_env(ctx: PhaseContext) -> Env:
    return {"STYX_WORKDIR": _setup(ctx).workdir or "", "STYX_WORKDIR_OWNER": ctx.node.user}


def _ray_env(ctx: PhaseContext) -> Env:
    r, c = _setup(ctx).ray, _setup(ctx).conda
    res = ctx.node.spec.resources
    return {
        "STYX_RAY_VERSION": r.version,
        "STYX_RAY_ROLE": ctx.node.role,
        "STYX_RAY_HEAD_IP": ctx.node.head_ip,
        "STYX_NODE_IP": ctx.node.private_ip,
        "STYX_RAY_PORT": str(r.port),
        "STYX_RAY_DASHBOARD_HOST": "127.0.0.1",
        "STYX_RAY_DASHBOARD_PORT": str(r.dashboard_port),
        "STYX_RAY_CLIENT_PORT": str(r.client_port),
        "STYX_RAY_EXTRA_ARGS": _lines(r.extra_start_args, "setup.ray.extra_start_args"),
        "STYX_RAY_USAGE_STATS": "1" if r.usage_stats else "0",
        "STYX_RAY_NUM_GPUS": _expected_gpus(ctx) if res and res.accelerators else "",
        "STYX_RAY_START_TIMEOUT": str(r.start_timeout_s),
        # with_head: the worker joins once the head's GCS holds this generation (no order in the graph)
        **({"STYX_RAY_HEAD_GENERATION": ctx.head_ray_generation}
           if ctx.node.role == "worker" and ctx.head_ray_generation is not None else {}),
        "STYX_VENV_DIR": _setup(ctx).python.venv_dir,
        # Ray's processes get the conda env's commands on PATH after the venv's (which holds Ray)
        "STYX_CONDA_ENV_DIR": f"{c.prefix}/envs/{c.env_name}" if c.enabled and c.env_name else "",
        "STYX_PIP_INDEX_URL": index_url_input(_setup(ctx).python.index_url),
        "STYX_ENV_FILE": ENV_FILE,
        # token auth: the token reaches the node on the phase's stdin only (a secret input), never a command line
        "STYX_RAY_AUTH": r.auth,
        "STYX_RAY_AUTH_TOKEN": ctx.ray_token if r.auth == "token" and ctx.ray_token is not None else "",
        # setup.ray.container: every ray command runs inside this container (the ray_container phase's);
        # without it the parameters stay as they were (no re-run of Ray on existing clusters)
        **({"STYX_RAY_CONTAINER": RAY_CONTAINER, "STYX_CONTAINER_ENV_FILE": CONTAINER_ENV_FILE}
           if ray_in_container(ctx.cluster) else {}),
    }


def _ray_undo_env(ctx: PhaseContext) -> Env:
    return {"STYX_VENV_DIR": _setup(ctx).python.venv_dir,
            **({"STYX_RAY_CONTAINER": RAY_CONTAINER} if ray_in_container(ctx.cluster) else {})}


def container_mounts(cfg: ClusterConfig) -> list[str]:
    """Host folders the Ray container sees at the same path: the workdir, the synced folders, and
    where `styx job submit --working-dir` puts a job's files."""
    s = cfg.setup
    return [*([s.workdir] if s.workdir else []), *(m.remote for m in s.file_mounts), JOBS_DIR]


def _ray_container_env(ctx: PhaseContext) -> Env:
    c = _setup(ctx).ray.container
    assert c is not None
    reg = c.registry
    return {
        "STYX_RAY_CONTAINER": RAY_CONTAINER,
        "STYX_RAY_IMAGE": c.image,
        "STYX_RAY_IMAGE_TARBALL": ctx.image.remote_path if ctx.image else "",
        "STYX_RAY_IMAGE_SHA256": ctx.image.sha256 if ctx.image else "",
        "STYX_RAY_PULL": c.pull,
        "STYX_RAY_RUN_OPTIONS": _lines(c.run_options, "setup.ray.container.run_options"),
        "STYX_RAY_MOUNTS": "\n".join(container_mounts(ctx.cluster)),
        "STYX_RAY_WORKDIR": _setup(ctx).workdir or "",
        "STYX_CONTAINER_ENV_FILE": CONTAINER_ENV_FILE,
        "STYX_REGISTRY_SERVER": reg.server if reg else "",
        "STYX_REGISTRY_USERNAME": reg.username if reg else "",
        # the password reaches the node on the phase's stdin only (a secret input), then
        # `docker login --password-stdin`: never a command line
        "STYX_REGISTRY_PASSWORD": ctx.registry_password if reg and ctx.registry_password is not None else "",
    }


@cache
def pip_check_program() -> str:
    """The requirement check of python_env.sh (its PIP_CHECK_PY, the one copy): exit 0 when every spec in
    argv is installed at a matching version (dependencies and extras included), 1 when not, 2 when it
    cannot check. container_pip runs it with the container's Python."""
    m = re.search(r"^PIP_CHECK_PY='\n(.*?)^'$", script_text("python_env.sh"), re.S | re.M)
    assert m, "python_env.sh: no PIP_CHECK_PY='...' block"
    return m.group(1)


def _container_pip_env(ctx: PhaseContext) -> Env:
    py = _setup(ctx).python
    return {
        "STYX_RAY_CONTAINER": RAY_CONTAINER,
        "STYX_CONTAINER_PRELUDE": CONTAINER_PRELUDE,
        "STYX_PIP_PACKAGES": _lines(py.pip_packages, "setup.python.pip_packages"),
        # may hold credentials: it enters the container on docker exec's stdin, never a command line
        "STYX_PIP_INDEX_URL": index_url_input(py.index_url),
        "STYX_PIP_INSTALLER": py.installer,
        "STYX_PIP_CHECK_PY": pip_check_program(),
        # the install inside the container is bounded too (a killed `docker exec` leaves it running)
        "STYX_PHASE_TIMEOUT": str(phase_limit(ctx, "container_pip", 1800)),
    }


def _autostop_env(ctx: PhaseContext) -> Env:
    a, r = _setup(ctx).autostop, _setup(ctx).ray
    assert a is not None
    return {
        "STYX_AUTOSTOP_IDLE_MINUTES": str(a.idle_minutes),
        "STYX_AUTOSTOP_DOWN": "1" if a.down else "0",
        "STYX_AUTOSTOP_INTERVAL": str(a.check_interval_s),
        "STYX_AUTOSTOP_RAY": "1" if r.enabled else "0",
        "STYX_RAY_DASHBOARD_PORT": str(r.dashboard_port),
        # the watcher reads the token from the file the ray phase wrote; it never travels here
        "STYX_RAY_AUTH": r.auth if r.enabled else "none",
        **(_autostop_poweroff_env(ctx) if ctx.autostop_poweroff else {}),
    }


def _autostop_poweroff_env(ctx: PhaseContext) -> Env:
    """The nodes stop themselves: the head serves its request on its private address, a worker follows it."""
    env = {"STYX_AUTOSTOP_POWEROFF": "1", "STYX_AUTOSTOP_PORT": str(AUTOSTOP_PORT)}
    if ctx.node.role == "head":
        return {**env, "STYX_AUTOSTOP_BIND": ctx.node.private_ip}
    return {**env, "STYX_AUTOSTOP_ROLE": "follower", "STYX_AUTOSTOP_HEAD": ctx.node.head_ip}


GATE = Phase(name="wait_ssh", script="wait_ssh.sh", env=lambda ctx: {}, timeout_s=120,
             verify="the node answers SSH; the styx library in place")

# The order of this table is the order on every node.
PHASES: tuple[Phase, ...] = (
    # setup.python.wheel_cache auto where the head serves the wheels (ssh, aws, gcp): first on the head, beside
    # apt; the head's python_env waits for it (waits_for), every worker's too (the Cluster's explicit dependency)
    Phase(
        name="wheel_cache",
        script="wheel_cache.sh",
        env=_wheel_cache_env,
        applies=lambda ctx: ctx.node.role == "head" and head_wheel_cache(ctx),
        undo="wheel_cache_delete.sh",
        undo_env=lambda ctx: {"STYX_WC_DIR": HEAD_WHEEL_CACHE_DIR},
        # create-first: the new phase keeps (or restarts) the server and claims the node; the old one's undo then
        # sees a newer generation and stops nothing (and no worker's python_env is replaced with it)
        delete_before_replace=False,
        timeout_s=900,
        verify="the cache of these requirements complete; its server running on the head's private address",
    ),
    Phase(
        name="system_packages",
        script="system_packages.sh",
        env=lambda ctx: {"STYX_APT_PACKAGES": _lines(_setup(ctx).packages, "setup.packages")},
        applies=lambda ctx: bool(_setup(ctx).packages),
        timeout_s=1200,
        verify="every package installed at its pinned version",
        alongside=("wheel_cache", lambda ctx: True),  # apt needs nothing of the cache
    ),
    Phase(
        name="python_env",
        script="python_env.sh",
        env=_python_env,
        applies=lambda ctx: python_env_applies(ctx.cluster),
        verify="the environment with its Python; every pip spec satisfied",
        # With no pip packages of the user's (Ray alone comes as wheels) nothing here needs the apt
        # packages: the venv and Ray install while apt runs. A user's pip packages may need a compiler
        # or a library from setup.packages, so then it waits.
        alongside=("system_packages", lambda ctx: not _setup(ctx).python.pip_packages),
        waits_for=("wheel_cache",),  # the head installs from its own cache too
    ),
    Phase(name="conda", script="conda.sh", env=_conda_env, applies=lambda ctx: _setup(ctx).conda.enabled,
          verify="conda at its prefix; the env with its packages"),
    Phase(name="docker", script="docker.sh", env=_docker_env, applies=lambda ctx: _setup(ctx).docker.mode != "skip",
          timeout_s=1200, verify="install mode: docker present, its daemon answering"),
    Phase(name="gpu", script="gpu.sh", env=_gpu_env, applies=lambda ctx: _setup(ctx).gpu.mode != "skip",
          timeout_s=3600, verify="nvidia-smi shows the expected GPUs"),
    Phase(
        name="file_sync",
        script="file_sync.sh",
        env=_sync_env,
        applies=lambda ctx: bool(_setup(ctx).file_mounts),
        undo="file_sync_delete.sh",
        undo_env=lambda ctx: {},
        # create-first: the new file_sync removes only what left the tree and claims the node; the old
        # one's undo then sees a newer generation and removes nothing
        delete_before_replace=False,
        timeout_s=1800,
        upload=lambda ctx: (ctx.sync.path, ctx.sync.remote_path, ctx.sync.sha256),
        verify="the node records this archive; every synced file has its content and mode",
    ),
    Phase(
        name="env_vars",
        script="env_vars.sh",
        env=_env_env,
        applies=lambda ctx: bool(_setup(ctx).env or _setup(ctx).secret_env),
        undo="env_vars_delete.sh",
        undo_env=lambda ctx: {"STYX_ENV_FILE": ENV_FILE},
        secret_output=True,
        timeout_s=120,
        verify="the env file's content hash (never its content)",
    ),
    Phase(name="workdir", script="workdir.sh", env=_workdir_env, applies=lambda ctx: bool(_setup(ctx).workdir),
          timeout_s=120, verify="the workdir with its owner and mode"),
    # custom scripts that run on the host are expanded in place of this marker (see phases_for)
    Phase(name="custom", script="", env=lambda ctx: {}, applies=lambda ctx: False, extra={"run_in": "host"}),
    # after the host's phases: a new image (its tarball's hash is a parameter) replaces this phase, the
    # in-container phases after it and ray only
    Phase(
        name="ray_container",
        script="ray_container.sh",
        env=_ray_container_env,
        applies=lambda ctx: ray_in_container(ctx.cluster),
        undo="ray_container_delete.sh",
        undo_env=lambda ctx: {"STYX_RAY_CONTAINER": RAY_CONTAINER, "STYX_CONTAINER_ENV_FILE": CONTAINER_ENV_FILE},
        secret_output=False,
        timeout_s=1800,
        upload=lambda ctx: (ctx.image.path, ctx.image.remote_path, ctx.image.sha256) if ctx.image else None,
        verify="the container running the image with the options styx gave it",
    ),
    # setup.python.pip_packages with a Ray container: into the container's Python that has Ray (like
    # `ray up`'s setup_commands), not on the host. After ray_container in the chain: a new container
    # (image, options) installs them again; before ray, so Ray's workers see them.
    Phase(
        name="container_pip",
        script="container_pip.sh",
        env=_container_pip_env,
        applies=lambda ctx: ray_in_container(ctx.cluster) and bool(_setup(ctx).python.pip_packages),
        timeout_s=1800,
        verify="every pip spec satisfied in the container's Python (offline, installed metadata)",
    ),
    # custom scripts with run_in: container (the default with a Ray container), expanded here
    Phase(name="custom", script="", env=lambda ctx: {}, applies=lambda ctx: False, extra={"run_in": "container"}),
    Phase(
        name="ray",
        script="ray.sh",
        env=_ray_env,
        applies=lambda ctx: _setup(ctx).ray.enabled,
        undo="ray_delete.sh",
        undo_env=_ray_undo_env,
        delete_before_replace=True,
        timeout_s=900,
        verify="Ray at its version, running, started for this cluster's address, this node alive in it",
        chain_params=("STYX_RAY_HEAD_GENERATION",),
    ),
    # setup.autostop: the idle watcher on the head, after Ray (it watches Ray's jobs and tasks); where the
    # nodes stop themselves (PhaseContext.autostop_poweroff), a follower of its request on each worker too
    Phase(
        name="autostop",
        script="autostop.sh",
        env=_autostop_env,
        applies=lambda ctx: _setup(ctx).autostop is not None and (ctx.node.role == "head" or ctx.autostop_poweroff),
        undo="autostop_delete.sh",
        undo_env=lambda ctx: {},
        helpers=("autostop_lib.sh",),
        timeout_s=120,
        verify="the idle watcher (a worker: the follower) runs, with these settings; the head's request server",
    ),
)


def _custom_applies(cs: CustomScript) -> Callable[[PhaseContext], bool]:
    return lambda ctx: cs.run_on == "all" or (cs.run_on == "head") == (ctx.node.role == "head")


def _custom_body(cs: CustomScript, base_dir: Path) -> str:
    return cs.inline if cs.inline is not None else (base_dir / str(cs.file)).read_text()


def _custom_container_phase(cs: CustomScript, base_dir: Path) -> Phase:
    """A custom script that runs inside the Ray container: custom_container.sh sends it to `docker exec`
    on its stdin (never a command line), after CONTAINER_PRELUDE (the env Ray sees) and strict mode."""
    name = f"custom-{cs.name}"
    body = _custom_body(cs, base_dir).rstrip()

    def env(ctx: PhaseContext) -> Env:
        return {
            "STYX_RAY_CONTAINER": RAY_CONTAINER,
            "STYX_CUSTOM_NAME": cs.name,
            "STYX_CUSTOM_SCRIPT": f"{CONTAINER_PRELUDE}\nset -euo pipefail\n{body}\n",
            "STYX_CUSTOM_CHECK": f"{CONTAINER_PRELUDE}\n{cs.check.strip()}\n" if cs.check else "",
            "STYX_PHASE_TIMEOUT": str(phase_limit(ctx, name, 3600)),
        }

    return Phase(
        name=name,
        script="custom_container.sh",
        env=env,
        applies=_custom_applies(cs),
        secret_output=True,  # a user's script may print anything
        timeout_s=3600,
        extra={"run_in": "container"},
        verify="the script's own `check`, when it has one, run in the container",
    )


def _custom_phase(cs: CustomScript, base_dir: Path) -> Phase:
    body = _custom_body(cs, base_dir)
    # `styx drift` runs the user's optional check (read-only, in a subshell); without one it says so
    if cs.check:
        failed = shlex.quote(f"custom check of {cs.name} failed (custom_scripts.check)")
        check = (f"if ( {cs.check.strip()}\n) >&2; then styx_result ok {shlex.quote('custom check passed')}; "
                 f"else styx_result drifted {failed}; fi")
    else:
        check = f"styx_result skipped {shlex.quote('no check configured (custom_scripts[].check)')}"
    # The user's script runs verbatim after lib.sh; styx adds the status line.
    script = (f"if styx_verifying; then\n{check}\nexit 0\nfi\n"
              f"{body.rstrip()}\nstyx_result ok {shlex.quote(f'custom script {cs.name} finished')}\n")
    return Phase(
        name=f"custom-{cs.name}",
        script=script,
        env=lambda ctx: {},
        applies=_custom_applies(cs),
        secret_output=True,  # a user's script may print anything
        timeout_s=3600,
        extra={"inline": True, "run_in": "host"},
        verify="the script's own `check`, when it has one",
    )


def phases_for(ctx: PhaseContext, base_dir: Path) -> list[Phase]:
    """The phases that apply on one node, in order (gate not included)."""
    out: list[Phase] = []
    s = _setup(ctx)
    for p in PHASES:
        if p.name == "custom":  # the custom scripts that run here: on the host, or in the Ray container
            where = p.extra["run_in"]
            make = _custom_container_phase if where == "container" else _custom_phase
            out += [c for c in (make(cs, base_dir) for cs in s.custom_scripts if s.runs_in(cs) == where)
                    if c.applies(ctx)]
        elif p.applies(ctx):
            out.append(p)
    return out


def body_of(phase: Phase) -> str:
    return _helpers_text(phase) + (phase.script if phase.extra.get("inline") else script_text(phase.script))


def undo_body_of(phase: Phase) -> str | None:
    return None if phase.undo is None else _helpers_text(phase) + script_text(phase.undo)


def _helpers_text(phase: Phase) -> str:
    return "".join(script_text(h).rstrip("\n") + "\n" for h in phase.helpers)
