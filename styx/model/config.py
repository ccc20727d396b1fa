"""The `styx:cluster` stack config: a typed model (pydantic v2) and its error messages.

Plain Python: no Pulumi import, so the CLI, the optimizer and tests can use it without an engine.
Every model forbids unknown keys, so a typo is an error that names the key and the allowed ones.

Which clouds exist is not written here: `cloud` accepts the names in the backend registry
(`styx.components.backends`, a Pulumi-free list of names), and the rules that depend on the chosen cloud
are that backend's `config_problems` (`styx.components.backends.check_cluster` runs both).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from styx.model.clouds import backend_names
from styx.model.grammar import Accelerator, Quantity, RequestError, parse_accelerator, parse_size

CONFIG_KEY = "styx:cluster"

_NAME_RE = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
_ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _one_argument(v: str) -> str:
    """A list element that reaches the node as one argument, exactly as written (one per line)."""
    if not v.strip() or any(c in v for c in "\n\r\0"):
        raise ValueError("a list element must be non-empty and on one line (it reaches the node as one "
                         "argument, exactly as written)")
    return v


Arg = Annotated[str, AfterValidator(_one_argument)]


class _Model(BaseModel):
    # strict: a boolean is not a count (`count: true`), a string is not a number (`port: "22"`); YAML ints
    # and booleans are what they say (pydantic's lax mode would take `true` as 1 and "22" as 22).
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False, strict=True)


# --------------------------------------------------------------------------- nodes


class HostSpec(_Model):
    """An existing machine (the `ssh` backend adopts it)."""

    host: str = Field(min_length=1, description="Address or name styx connects to over SSH.")
    port: int = Field(22, ge=1, le=65535)
    user: str | None = Field(None, description="Overrides ssh.user for this host.")
    private_ip: str | None = Field(
        None, description="Address other nodes reach this one at (default: host)."
    )


class Resources(_Model):
    """A resource request, resolved to an instance type by the optimizer (`instance_type: auto`).

    The strings follow styx.model.grammar (the optimizer's grammar too) and are stored in their canonical
    spelling: `a100` -> `A100:1`, `64GB+` -> `64+`. `accelerator()`, `cpu_size()` and `memory_size()`
    give the parsed values.
    """

    cpus: str | None = Field(None, description="`N` (exactly) or `N+` (at least).")
    memory: str | None = Field(
        None, description="GiB: `N` or `N+`, with an optional unit `G`/`GB`/`Gi`/`GiB` (`64GB+`); "
        "`Nx` = at least N GiB per vCPU (aws/gcp `instance_type: auto` only)."
    )
    accelerators: str | None = Field(None, description="`NAME:COUNT`, e.g. `A100:8`; `A100` = `A100:1`.")
    any_of: list[str] | None = Field(None, description="Acceptable accelerators, cheapest wins.")
    ordered: list[str] | None = Field(None, description="Accelerators in order of preference.")

    @field_validator("cpus", "memory", mode="before")
    @classmethod
    def _size(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None:
            return v
        try:
            return str(parse_size(v, info.field_name or ""))
        except RequestError as e:
            raise ValueError(e.detail) from None

    @field_validator("accelerators", mode="before")
    @classmethod
    def _accel(cls, v: Any) -> Any:
        return v if v is None else _canonical_accel(v)

    @field_validator("any_of", "ordered", mode="before")
    @classmethod
    def _accels(cls, v: Any) -> Any:
        return [_canonical_accel(a) for a in v] if isinstance(v, list) else v

    def accelerator(self) -> Accelerator | None:
        """The parsed `accelerators` (`A100` -> A100 x 1), or None."""
        return parse_accelerator(self.accelerators, whole=True) if self.accelerators else None

    def cpu_size(self) -> Quantity | None:
        return parse_size(self.cpus, "cpus")

    def memory_size(self) -> Quantity | None:
        return parse_size(self.memory, "memory")


def _canonical_accel(v: Any) -> str:
    try:
        return str(parse_accelerator(v, whole=True))
    except RequestError as e:
        raise ValueError(e.detail) from None


class NodeSpec(_Model):
    """What one machine looks like. Shared by the head and every worker group."""

    instance_type: str | None = Field(
        None, description="Cloud instance/machine type, or `auto` to resolve `resources` with the optimizer."
    )
    resources: Resources | None = None
    spot: bool = False
    disk_size_gb: int = Field(100, ge=10, le=65536)
    image: str | None = Field(None, description="Image/AMI/container image; the backend's default when unset. "
                              "An image made with `styx image create`: its name on cloud local (the sandbox's "
                              "root instead of the base), its AMI id on AWS, its self link on GCP.")
    zone: str | None = None
    allow_unlisted: bool = Field(
        False, description="Accept an instance_type the cloud's catalog does not list (new types appear "
        "before catalogs do); the catalog's other checks still apply.")
    # ssh backend
    host: HostSpec | None = Field(None, description="ssh backend: the existing machine.")

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, v: Any) -> Any:
        return {"host": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _auto_needs_request(self) -> NodeSpec:
        if self.instance_type == "auto" and not self.resources:
            raise ValueError("instance_type: auto needs `resources` (e.g. accelerators: A100:8)")
        return self


class HeadSpec(NodeSpec):
    pass


class WorkerGroup(NodeSpec):
    name: str = Field("worker", pattern=_NAME_RE, description="Group name; nodes are <name>-<i>.")
    count: int | None = Field(None, ge=0, le=1000, description="Number of nodes (default 1; ssh: len(hosts)).")
    hosts: list[HostSpec] | None = Field(None, description="ssh backend: the existing machines.")

    @field_validator("hosts", mode="before")
    @classmethod
    def _hosts(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"host": h} if isinstance(h, str) else h for h in v]
        return v

    @model_validator(mode="after")
    def _count_vs_hosts(self) -> WorkerGroup:
        if self.hosts is not None:
            if self.count is not None and self.count != len(self.hosts):
                raise ValueError(f"count is {self.count} but {len(self.hosts)} hosts are listed")
            self.count = len(self.hosts)
        elif self.count is None:
            self.count = 1
        return self


# --------------------------------------------------------------------------- ssh


_BASTION = re.compile(r"(?:(?P<user>[A-Za-z_][A-Za-z0-9_.-]*)@)?(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                      r"(?::(?P<port>[1-9][0-9]{0,4}))?")


class SSHConfig(_Model):
    user: str = Field("root", min_length=1)
    port: int = Field(22, ge=1, le=65535)
    private_key: str | None = Field(
        None, description="OpenSSH/PEM private key (store it with `pulumi config set --secret`). "
        "Unset: styx generates one per cluster."
    )
    private_key_file: str | None = Field(None, description="Path to a private key on the machine running Pulumi.")
    connect_timeout_s: int = Field(
        600, ge=5, le=7200, description="How long the wait-for-SSH gate keeps dialing a booting node."
    )
    per_dial_timeout_s: int = Field(15, ge=1, le=600)
    jump: str | None = Field(
        None, description="Private nodes: `head` (workers get no public address and are reached through the "
        "head) or a bastion `[USER@]HOST[:PORT]` (every node is reached through it)."
    )

    @field_validator("jump")
    @classmethod
    def _jump(cls, v: str | None) -> str | None:
        if v is None or v == "head" or _BASTION.fullmatch(v):
            return v
        raise ValueError("allowed: head (workers reached through the head), or a bastion [USER@]HOST[:PORT]")

    def bastion(self) -> tuple[str, str, int] | None:
        """(user, host, port) of a bastion `jump`; None for none or `head`."""
        if self.jump is None or self.jump == "head":
            return None
        m = _BASTION.fullmatch(self.jump)
        assert m is not None
        return m["user"] or self.user, m["host"], int(m["port"] or 22)

    @model_validator(mode="after")
    def _one_key(self) -> SSHConfig:
        if self.private_key and self.private_key_file:
            raise ValueError("set either private_key or private_key_file, not both")
        return self


# --------------------------------------------------------------------------- setup phases


class PythonConfig(_Model):
    version: str = Field("system", pattern=r"^(system|3\.[0-9]{1,2})$")
    env_tool: Literal["venv", "uv", "none"] = "venv"
    venv_dir: str = "/opt/styx/venv"
    pip_packages: list[Arg] = Field(
        default_factory=list, description="pip requirement specs, one per element. With setup.ray.container they "
        "are installed inside each node's Ray container, into the Python that has Ray (phase container_pip), not "
        "on the hosts.")
    index_url: str | None = None
    installer: Literal["uv", "pip"] = Field(
        "uv", description="What installs pip_packages and Ray: uv (from the index, into /opt/styx/tools/uv; pip "
        "when uv cannot be had, logged) or pip.")
    wheel_cache: Literal["auto", "off"] = Field(
        "auto", description="auto: the wheels are downloaded once per cluster and served to the nodes (local: by "
        "the operator's machine on the cluster's bridge; ssh, aws, gcp: by the head on its private address, port "
        "18951), which fall back to the index when the cache is gone; off: every node downloads.")
    wheel_cache_fetch: Literal["links", "copy"] = Field(
        "links", description="How a node reads the wheel cache: links: the installer reads the cache's URL itself "
        "(--find-links URL); copy: its files are first copied into a local folder in one parallel fetch "
        "(sha256-checked) and installed from there (the URL when the copy fails). copy did not pay off here "
        "(bench/README.md §14).")
    env_cache: Literal["auto", "off"] = Field(
        "auto", description="cloud local: auto: the head's environment, once its python_env made it (and its "
        "first `ray start` compiled it), is packed once per machine (`local.cache_dir`/wheels/envs, the newest 3 "
        "kept) and a later node whose environment does not exist yet unpacks it instead of installing "
        "(sha256- and spec-checked; the normal install when it is gone or does not fit). Needs wheel_cache auto "
        "(its server serves it) and env_tool venv; nodes with an `image` neither use nor make one. off: every "
        "node installs. Other clouds: no effect.")


class CondaConfig(_Model):
    enabled: bool = False
    installer_url: str = (
        "https://github.com/conda-forge/miniforge/releases/download/24.11.3-0/Miniforge3-24.11.3-0-Linux-x86_64.sh"
    )
    installer_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    prefix: str = "/opt/conda"
    env_name: str = Field("styx", pattern=r"^[A-Za-z0-9_.\-]+$")
    python: str = Field("3.11", pattern=r"^3\.[0-9]{1,2}$")
    packages: list[Arg] = Field(default_factory=list)


class DockerConfig(_Model):
    mode: Literal["skip", "check", "install"] = "skip"
    method: Literal["distro", "docker-repo"] = "docker-repo"
    nvidia_toolkit: Literal["auto", "yes", "no"] = "auto"


class GpuConfig(_Model):
    mode: Literal["auto", "force", "skip"] = "auto"
    driver_version: str = Field("580", pattern=r"^[0-9]{3}(\.[0-9]+){0,2}$")
    cuda_version: str = Field("12.8", pattern=r"^[0-9]{2}\.[0-9]$")
    cudnn_version: str = Field("9", pattern=r"^[0-9]+(\.[0-9]+)*$")
    expected_count: int | None = Field(None, ge=1, le=64)


class RegistryLogin(_Model):
    server: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._\-/]*)?$",
                        description="The registry to log in to (ghcr.io, 123.dkr.ecr.us-east-1.amazonaws.com, "
                        "registry.example.com:5000).")
    username: str = Field(min_length=1, pattern=r"^[^\s]+$")
    password: str = Field(min_length=1, description="A secret: set it with `pulumi config set --secret --path "
                          "'styx:cluster.setup.ray.container.registry.password'`. It reaches the node on the phase's "
                          "stdin and `docker login --password-stdin`, never a command line; the login is removed "
                          "after the pull.")


class RayContainer(_Model):
    image: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$",
                       description="The image Ray runs in (it must hold `ray` on its PATH and bash), e.g. "
                       "rayproject/ray:2.60.0-py311-gpu, or the tag a `tarball` holds.")
    tarball: str | None = Field(None, min_length=1, description="A `docker save` archive where Pulumi runs (relative "
                                "to the project): copied to every node and `docker load`ed; its sha256 is the "
                                "phase's trigger, so a new tarball replaces the containers. Without it the image "
                                "comes from a registry.")
    pull: Literal["missing", "always", "never"] = Field(
        "missing", description="missing: pull when the node lacks the image; always: pull on every run of the phase "
        "(a new digest under the same tag then replaces the container); never: the image must be on the node "
        "(a tarball or a machine image).")
    run_options: list[Arg] = Field(default_factory=list, description="Extra `docker run` arguments, one per "
                                   "element, exactly as written (`--cap-add=SYS_PTRACE`, `--ulimit=nofile=65536`).")
    registry: RegistryLogin | None = None

    @model_validator(mode="after")
    def _source(self) -> RayContainer:
        if self.tarball is not None and self.registry is not None:
            raise ValueError("give either tarball or registry, not both")
        if self.tarball is not None and self.pull == "always":
            raise ValueError("pull: always needs a registry image (allowed with tarball: missing, never)")
        return self


class RayConfig(_Model):
    enabled: bool = True
    version: str = Field("2.60.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    port: int = Field(6379, ge=1024, le=65535)
    dashboard_port: int = Field(8265, ge=1024, le=65535)
    client_port: int = Field(10001, ge=1024, le=65535)
    extra_start_args: list[Arg] = Field(default_factory=list)
    usage_stats: bool = Field(False, description="Ray usage statistics (sent to an outside host); off by default.")
    start_timeout_s: int = Field(180, ge=10, le=3600)
    worker_start: Literal["with_head", "after_head"] = Field(
        "with_head", description="with_head: a worker's ray phase runs beside the head's (after its own earlier "
        "phases and what the head's waits for) and joins as soon as the head's GCS answers for this launch: the head "
        "records the generation of its ray phase in the GCS, a worker waits for it (at most start_timeout_s), so it "
        "never joins a head that is about to restart. after_head: a worker's ray phase starts when the head's has "
        "finished.")
    auth: Literal["token", "none"] = Field(
        "token", description="token: Ray's token authentication (RAY_AUTH_MODE=token) with a token per cluster that "
        "styx generates and keeps as a secret (output ray_auth_token); every request to the dashboard, the Jobs API "
        "and the GCS needs it. none: no authentication (a warning).")
    container: RayContainer | None = Field(
        None, description="Run each node's Ray inside one long-lived container `styx-ray` (host network, the node's "
        "/dev/shm, GPUs, the workdir, the synced folders and /etc/styx mounted), like `ray up`'s `docker:`. "
        "Needs setup.docker.mode install or check (and local.docker: true on cloud local).")

    @model_validator(mode="after")
    def _distinct_ports(self) -> RayConfig:
        ports = [self.port, self.dashboard_port, self.client_port]
        if len(set(ports)) != 3:
            raise ValueError(f"ray ports must differ: port={self.port}, dashboard_port="
                             f"{self.dashboard_port}, client_port={self.client_port}")
        return self


# Setup phases by name, in node order (components/phases.py holds their scripts; a test keeps both
# lists equal). Custom scripts run as `custom-<name>`: on the host between workdir and ray_container (or
# ray); in the Ray container (run_in: container) between container_pip and ray.
PHASE_NAMES = ("wait_ssh", "wheel_cache", "system_packages", "python_env", "conda", "docker", "gpu", "file_sync",
               "env_vars", "workdir", "ray_container", "container_pip", "ray", "autostop")

# Remote paths a file mount may never be: the root, system directories themselves, styx's own state.
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
    "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/include",
    "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/local/sbin",
    "/usr/local/share", "/usr/sbin", "/usr/share", "/usr/src", "/var", "/var/cache", "/var/lib", "/var/local",
    "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp", "/etc/profile.d", "/etc/ssh",
})
_NEVER_UNDER = ("/proc/", "/sys/", "/dev/", "/run/", "/var/lib/styx/", "/var/log/styx/", "/etc/styx/", "/boot/")
_REMOTE_ALLOWED = "an absolute, normalised path (no '..', '.', '//' or trailing '/') without control characters, " \
    "not / or a system directory itself (/etc, /usr, /usr/local, /var, /opt, /home, ...), not under /proc, /sys, " \
    "/dev, /run, /boot or styx's own /var/lib/styx, /var/log/styx, /etc/styx"


def remote_path_problem(p: str) -> str | None:
    """Why `p` cannot be a file mount's remote path (None when it can)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in p):
        return "holds a control character (newline, tab, ...)"
    if not p.startswith("/"):
        return "is not absolute"
    if p != "/" and (p.endswith("/") or "//" in p or any(part in (".", "..") for part in p.split("/"))):
        return "is not normalised"
    if p in SYSTEM_DIRS:
        return "is / or a system directory itself"
    if any((p + "/").startswith(d) for d in _NEVER_UNDER):
        return "is inside a directory styx or the system manages"
    return None


class FileMount(_Model):
    local: str = Field(min_length=1, description="File or folder where Pulumi runs (relative to the project).")
    remote: str = Field(description=f"Where it goes on every node: {_REMOTE_ALLOWED}.")
    exclude: list[str] = Field(
        default_factory=list,
        description="Patterns left out (gitignore style: `*.ckpt`, `data/`, `/build`), added to the folder's "
                    "`.styxignore` and the built-in `.git/`, `__pycache__/`.")

    @field_validator("remote")
    @classmethod
    def _remote(cls, v: str) -> str:
        why = remote_path_problem(v)
        if why:
            raise ValueError(f"{v!r} {why} (allowed: {_REMOTE_ALLOWED})")
        return v

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, v: list[str]) -> list[str]:
        for pat in v:
            if not pat.strip() or any(ord(c) < 32 for c in pat) or pat.startswith("!"):
                raise ValueError(f"{pat!r} is not a pattern (allowed: gitignore-style patterns without '!' "
                                 "negation or control characters)")
        return v


class CustomScript(_Model):
    name: str = Field(pattern=_NAME_RE)
    inline: str | None = None
    file: str | None = None
    run_on: Literal["all", "head", "workers"] = "all"
    run_in: Literal["container", "host"] | None = Field(
        None, description="Where the script runs: container (the default with setup.ray.container, like `ray up`'s "
        "setup_commands): inside the node's Ray container, after the pip packages and before Ray starts, through "
        "`docker exec` as the image's user, with the cluster's env vars and secret env vars; host (the default "
        "without a container): on the machine, before the container is started.")
    check: str | None = Field(None, description="Read-only shell check for `styx drift`: exit 0 when the node "
                              "still is as the script left it (run where the script runs).")

    @model_validator(mode="after")
    def _one_source(self) -> CustomScript:
        if bool(self.inline) == bool(self.file):
            raise ValueError("give exactly one of inline or file")
        return self


class AutostopConfig(_Model):
    idle_minutes: int = Field(ge=1, le=10080, description="Minutes the cluster must be idle (no Ray job or task "
                              "running, no interactive SSH session on the head) before it is stopped.")
    down: bool = Field(False, description="true: the idle cluster is destroyed (`styx down` of its stack), not kept "
                       "stopped; only where something holds the engine's credentials (cloud local: the host's reaper). "
                       "AWS/GCP refuse it: their nodes can only stop themselves (see the README, Autostop).")
    check_interval_s: int = Field(60, ge=5, le=600, description="Seconds between two idleness checks on the head "
                                  "(a short one is for tests).")


class SetupConfig(_Model):
    packages: list[Arg] = Field(default_factory=list, description="System (apt) packages.")
    python: PythonConfig = Field(default_factory=PythonConfig)
    apt_cache: Literal["auto", "off"] = Field(
        "auto", description="auto: on backends that can (local), apt-get update runs once per cluster on the "
        "operator's machine (lists reused for 10 min) and the nodes take those lists while they are younger than "
        "an hour, else run apt-get update themselves; off: every node runs apt-get update.")
    first_boot: Literal["auto", "off"] = Field(
        "auto", description="auto: on aws and gcp, each node's user data (cloud-init) fills the caches the setup "
        "phases read while the engine still waits for SSH: apt-get update and a download of setup.packages on "
        "every node, the wheel cache's fill on the head (not with setup.python.index_url: it never goes into "
        "user data); the phases wait for that work, then find it done. Log: /var/log/styx/first-boot.log. off: "
        "the user data only installs the SSH host key. Ignored on other backends.")
    conda: CondaConfig = Field(default_factory=CondaConfig)
    docker: DockerConfig = Field(default_factory=DockerConfig)
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    file_mounts: list[FileMount] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Environment for every node and Ray task.")
    secret_env: dict[str, str] = Field(
        default_factory=dict, description="Like env, but values are secrets (use `secure:` values)."
    )
    workdir: str | None = Field(None, pattern=r"^/")
    timeouts: dict[str, int] = Field(
        default_factory=dict,
        description="Seconds a phase may run on a node before it is stopped, by phase name (`python_env`, "
                    "`custom-<name>`, ...) or `default` for every phase without its own.")
    custom_scripts: list[CustomScript] = Field(default_factory=list)
    autostop: AutostopConfig | None = Field(None, description="Stop the cluster after this long idle "
                                            "(`styx autostop` changes it on a running cluster).")

    @property
    def ray_in_container(self) -> bool:
        """Ray runs in the node's container (setup.ray.container, Ray enabled)."""
        return self.ray.enabled and self.ray.container is not None

    def runs_in(self, cs: CustomScript) -> Literal["container", "host"]:
        """Where a custom script runs: its run_in, else the container when Ray has one."""
        return cs.run_in or ("container" if self.ray_in_container else "host")

    @field_validator("packages")
    @classmethod
    def _pkgs(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.match(r"^[a-z0-9][a-z0-9+.\-]*(=[A-Za-z0-9.+:~\-]+)?$", p):
                raise ValueError(f"{p!r} is not a Debian package name (optionally name=version)")
        return v

    @field_validator("env", "secret_env", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, val in v.items():
                if not re.match(_ENV_NAME_RE, str(k)):
                    raise ValueError(f"{k!r} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
                if isinstance(val, (dict, list)):
                    raise ValueError(f"{k}: value must be a string, number or boolean")
                out[str(k)] = "" if val is None else str(val).lower() if isinstance(val, bool) else str(val)
            return out
        return v

    @field_validator("timeouts", mode="before")
    @classmethod
    def _timeouts(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for k, t in v.items():
                if isinstance(t, bool) or not isinstance(t, int) or not 10 <= t <= 86400:
                    raise ValueError(f"{k}: {t!r} is not a number of seconds (allowed: an integer from 10 to 86400)")
        return v

    @model_validator(mode="after")
    def _unique(self) -> SetupConfig:
        both = set(self.env) & set(self.secret_env)
        if both:
            raise ValueError(f"{sorted(both)} set in both env and secret_env")
        allowed = ["default", *PHASE_NAMES, *(f"custom-{c.name}" for c in self.custom_scripts)]
        unknown = sorted(set(self.timeouts) - set(allowed))
        if unknown:
            raise ValueError(f"timeouts: unknown phase {unknown[0]!r} (allowed: {', '.join(allowed)})")
        remotes = [m.remote for m in self.file_mounts]
        for a in remotes:
            for b in remotes:
                if a != b and (b + "/").startswith(a + "/"):
                    raise ValueError(f"file_mounts: {b!r} is inside {a!r} (allowed: mounts that do not nest)")
        if len(set(remotes)) != len(remotes):
            raise ValueError("file_mounts: the same remote path twice (allowed: each remote path once)")
        names = [s.name for s in self.custom_scripts]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"custom_scripts names must be unique; repeated: {sorted(dup)}")
        for i, cs in enumerate(self.custom_scripts):
            if cs.run_in == "container" and not self.ray_in_container:
                raise ValueError(f"custom_scripts[{i}].run_in: 'container' needs setup.ray.container (and Ray "
                                 "enabled) (allowed without a Ray container: host)")
        if self.ray.container is not None and self.ray.enabled and self.docker.mode == "skip":
            raise ValueError("ray.container needs Docker on the nodes: set docker.mode to install (or check, "
                             "when the machine image has Docker) (allowed with ray.container: install, check)")
        return self


# --------------------------------------------------------------------------- backends


class LocalConfig(_Model):
    subnet: str = Field("10.77.0.0/24", description="IPv4 subnet of the sandbox bridge.")
    bridge: str | None = Field(None, pattern=r"^[a-zA-Z0-9_\-]{1,15}$")
    shm_size: str = Field("2g", pattern=r"^[0-9]+[kmg]$")
    cache_dir: str = "/var/cache/styx"
    state_dir: str = "/var/lib/styx/sandbox"
    mtu: int = Field(1400, ge=576, le=9000)
    group_block: int = Field(32, ge=1, le=4096, description="Addresses reserved per worker group.")
    zones: list[str] = Field(default_factory=lambda: ["local-a"], description="Names of local 'zones'.")
    docker: bool = Field(False, description="Sandboxes that can run a Docker daemon: the host's cgroup mounts "
                         "inside, and /var/lib/docker on the host's filesystem (not the overlay root).")

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as e:
            raise ValueError(f"{v!r} is not an IPv4 network like 10.77.0.0/24 ({e})") from None
        if net.prefixlen > 29:
            raise ValueError(f"{v!r} is too small: use a prefix of /29 or shorter")
        if not net.is_private:
            raise ValueError(f"{v!r} is not a private range (use 10/8, 172.16/12 or 192.168/16)")
        return v


class CloudNetConfig(_Model):
    ssh_cidrs: list[str] = Field(default_factory=list, description="CIDRs allowed to reach SSH (22). Required.")
    static_ip: bool = Field(
        True,
        description="A static public address for each node dialled on its public address that can be stopped "
        "(not private `ssh.jump` nodes, nor spot nodes that cannot stop): it stays the same across "
        "`styx stop`/`start`, so a start re-runs no phase. AWS: an Elastic IP (billed also while its instance "
        "is stopped); GCP: a reserved EXTERNAL address (billed also while no running VM uses it). false: "
        "ephemeral addresses, new after each start.",
    )

    @field_validator("ssh_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for c in v:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise ValueError(f"{c!r} is not a CIDR like 203.0.113.0/24") from None
        return v


class AwsConfig(CloudNetConfig):
    vpc_id: str | None = Field(None, pattern=r"^vpc-[0-9a-f]+$", description="Use this VPC instead of creating one.")
    subnet_id: str | None = Field(
        None, pattern=r"^subnet-[0-9a-f]+$",
        description="Use this subnet (it must give instances a public IP route to an internet gateway).",
    )
    vpc_cidr: str = Field("10.42.0.0/16", description="IPv4 range of the VPC styx creates (/16 to /24).")
    ami: str | None = Field(None, pattern=r"^ami-[0-9a-f]+$", description="Explicit AMI for every node.")
    image: Literal["ubuntu-22.04", "ubuntu-24.04", "gpu"] = Field(
        "ubuntu-22.04", description="Looked-up image: Canonical Ubuntu, or gpu (AWS Deep Learning Base GPU AMI)."
    )
    root_volume_type: Literal["gp3", "gp2", "io2"] = "gp3"
    placement_group: bool = Field(False, description="Put worker nodes in one cluster placement group.")
    spot_max_price: float | None = Field(None, gt=0, description="USD/hour cap for spot nodes (default: on-demand).")
    imds_hop_limit: Literal[1, 2] = Field(
        1, description="IMDSv2 response hop limit; 2 lets containers on the node reach instance metadata."
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as e:
            raise ValueError(f"{v!r} is not an IPv4 network like 10.42.0.0/16 ({e})") from None
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"{v!r}: use a prefix from /16 to /24 (AWS allows /16-/28; styx splits it in 16)")
        return v

    @model_validator(mode="after")
    def _subnet_needs_vpc(self) -> AwsConfig:
        if self.subnet_id and not self.vpc_id:
            raise ValueError("subnet_id needs vpc_id")
        return self


class GcpConfig(CloudNetConfig):
    project: str | None = Field(None, description="Project ID (default: the gcp provider's, `gcp:project`).")
    network: str | None = Field(None, description="Existing VPC network (name or self-link); unset: styx makes one.")
    subnetwork: str | None = Field(None, description="Existing subnetwork in `network` and the cluster's region.")
    subnet_cidr: str = Field("10.43.0.0/20", description="IPv4 range of the subnetwork styx makes.")
    image: str = Field(
        "ubuntu-22.04", min_length=1,
        description="ubuntu-22.04, ubuntu-24.04, gpu (Deep Learning VM with the NVIDIA driver on GPU "
        "machines), gpu-ubuntu-24.04, or an image/family (self-link or project/family).",
    )
    disk_type: Literal["pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced"] | None = Field(
        None, description="Boot disk type; unset: pd-balanced (hyperdisk-balanced where only Hyperdisk works)."
    )
    spot_termination_action: Literal["STOP", "DELETE"] = "DELETE"
    os_login: bool = Field(False, description="OS Login instead of instance ssh-keys metadata.")
    scopes: list[str] = Field(
        default_factory=lambda: [
            "https://www.googleapis.com/auth/logging.write",
            "https://www.googleapis.com/auth/monitoring.write",
        ],
        description="OAuth scopes of the cluster's service account (no cloud-platform by default).",
    )

    @field_validator("subnet_cidr")
    @classmethod
    def _gcp_subnet(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as e:
            raise ValueError(f"{v!r} is not an IPv4 network like 10.43.0.0/20 ({e})") from None
        if net.prefixlen > 29 or not net.is_private:
            raise ValueError(f"{v!r}: use a private range (10/8, 172.16/12, 192.168/16) of /29 or larger")
        return v

    @model_validator(mode="after")
    def _subnetwork_needs_network(self) -> GcpConfig:
        if self.subnetwork and not self.network:
            raise ValueError("subnetwork needs network (firewall rules attach to the network)")
        return self


class KubernetesConfig(_Model):
    """`cloud: kubernetes`: pods on an existing cluster (see components/backends/kubernetes.py)."""

    kubeconfig: str | None = Field(
        None, description="Path to a kubeconfig file (`~` allowed). Unset: $KUBECONFIG, else ~/.kube/config."
    )
    context: str | None = Field(None, description="kubeconfig context (unset: its current context).")
    namespace: str | None = Field(
        None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Namespace for every object (default: styx-<cluster name>, one per cluster).",
    )
    create_namespace: bool = Field(True, description="false: use an existing namespace (never deleted by styx).")
    operator: Literal["none", "kuberay"] = Field(
        "none", description="none: StatefulSets + styx phases start Ray; kuberay: a RayCluster resource."
    )
    image: str | None = Field(
        None, description="Container image (a node's `image` overrides it). Default: a CUDA runtime image "
        "(operator none: styx installs Python and Ray) or rayproject/ray:<ray.version>-gpu (kuberay).",
    )
    image_pull_secrets: list[str] = Field(default_factory=list, description="Secrets in the namespace for pulls.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="For every pod.")
    gpu_node_selector: dict[str, str] = Field(default_factory=dict, description="Added for pods that request GPUs.")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="For every pod.")
    gpu_tolerations: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        description="Added for pods that request GPUs.",
    )
    affinity: dict[str, Any] | None = Field(None, description="Pod affinity for every pod (Kubernetes syntax).")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="The head Service; ClusterIP keeps Ray reachable from inside the cluster only."
    )
    service_source_ranges: list[str] = Field(
        default_factory=list,
        description="CIDRs that may reach a NodePort/LoadBalancer head Service (required for those types; "
        "loadBalancerSourceRanges + the NetworkPolicy). Never 0.0.0.0/0 or ::/0.",
    )
    allow_metadata_egress: bool = Field(
        False, description="false: the NetworkPolicy blocks egress to the cloud metadata address "
        "(169.254.169.254, fd00:ec2::254); true: pods may reach it (node credentials)."
    )
    shm_size: str = Field("8Gi", pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$", description="/dev/shm (Ray's object store).")
    network_policy: bool = Field(
        True, description="A NetworkPolicy that admits traffic to the Ray pods only from this cluster's pods."
    )
    pod_ready_timeout_s: int = Field(
        900, ge=30, le=7200, description="How long styx waits for pods to be scheduled, pulled and Ready."
    )


# --------------------------------------------------------------------------- cluster


class ClusterConfig(_Model):
    name: str = Field(pattern=_NAME_RE, description="Cluster name: lowercase letters, digits, '-'.")
    cloud: str = Field(description="The backend: one of the registry's (components/backends/__init__.py): "
                       + ", ".join(backend_names()) + ".",
                       json_schema_extra=lambda s: s.update(enum=list(backend_names())))
    region: str | None = None
    zone: str | None = None
    head: HeadSpec = Field(default_factory=HeadSpec)
    workers: list[WorkerGroup] = Field(default_factory=list)
    ssh: SSHConfig = Field(default_factory=SSHConfig)
    setup: SetupConfig = Field(default_factory=SetupConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    aws: AwsConfig = Field(default_factory=AwsConfig)
    gcp: GcpConfig = Field(default_factory=GcpConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)

    @field_validator("cloud", mode="before")
    @classmethod
    def _cloud(cls, v: Any) -> Any:
        names = backend_names()
        if v not in names:
            shown = ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}" if len(names) > 1 else repr(names[0])
            raise ValueError(f"input should be {shown} (the backends registered in styx.components.backends)")
        return v

    @model_validator(mode="after")
    def _cross(self) -> ClusterConfig:
        names = [g.name for g in self.workers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"worker group names must be unique; repeated: {sorted(dup)}")
        if "head" in names:
            raise ValueError("a worker group cannot be named 'head'")
        return self

    def nodes(self) -> list[tuple[str, str, NodeSpec, int]]:
        """(node name, role, spec, index in group) for every machine, head first."""
        out: list[tuple[str, str, NodeSpec, int]] = [("head", "head", self.head, 0)]
        for g in self.workers:
            out += [(f"{g.name}-{i}", "worker", g, i) for i in range(g.count or 0)]
        return out


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A config problem; `problems` holds one line per problem, each naming the key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _path(loc: tuple[Any, ...]) -> str:
    out = CONFIG_KEY
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("function-after[", "function-before[", "function-wrap[")):
            continue
        else:
            out += f".{part}"
    return out


def _allowed_keys(model: type[BaseModel] | None) -> str:
    return ", ".join(model.model_fields) if model else ""


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the parent of `loc` (to list allowed keys for a typo)."""
    model: Any = ClusterConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _unwrap_model(field.annotation)
    return model


def _unwrap_model(ann: Any) -> Any:
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for a in typing.get_args(ann):
        m = _unwrap_model(a)
        if m is not None:
            return m
    return None


def _format(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    typ = err["type"]
    val = err.get("input")
    if typ == "extra_forbidden":
        return f"{path}: unknown key; allowed keys here: {_allowed_keys(_model_at(loc))}"
    if typ == "missing":
        return f"{path}: required, but missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    shown = _show(val)
    if typ == "value_error" and isinstance(val, dict):
        # a model's own check that names one of its keys (`custom_scripts[0].run_in: ...`): the full path
        m = re.match(r"^([a-z_]+)((?:\[[0-9]+\])?(?:\.[a-z_]+(?:\[[0-9]+\])?)*): ", msg)
        model = _model_at((*loc, ""))
        if m and model is not None and m.group(1) in model.model_fields:
            return f"{path}.{msg}"
        return f"{path}: {msg}"
    if typ == "string_pattern_mismatch" and loc and loc[-1] == "name":
        return f"{path}: {shown} is not allowed: use lowercase letters, digits and '-', starting with a letter, " \
               f"at most 32 characters (pattern {_NAME_RE})"
    if typ == "literal_error":
        return f"{path}: {shown} is not allowed; {msg[0].lower()}{msg[1:]}"
    if typ in ("model_type", "dict_type"):
        return f"{path}: expected a mapping of keys, got {shown}"
    if typ in _TYPE_NAMES:
        return f"{path}: {shown} is not allowed: expected {_TYPE_NAMES[typ]}, got {_kind(val)}"
    return f"{path}: {shown} is not allowed: {msg}"


_TYPE_NAMES = {
    "int_type": "an integer (a YAML number like 2, not true/false or a quoted string)",
    "bool_type": "a boolean (true or false, unquoted)",
    "float_type": "a number (like 1.5)",
    "string_type": "a string",
    "list_type": "a list",
}


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, int | float):
        return "a number"
    if v is None:
        return "null"
    return type(v).__name__


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: …" for k in list(v)[:4]) + ("…}" if len(v) > 4 else "}")
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def parse_cluster(raw: Any) -> ClusterConfig:
    """Validate a `styx:cluster` value; raise ConfigError naming every bad key path."""
    if raw is None:
        raise ConfigError([f"{CONFIG_KEY}: missing; set it in stacks/Pulumi.<stack>.yaml (see stacks/schema.json)"])
    if not isinstance(raw, dict):
        raise ConfigError([f"{CONFIG_KEY}: expected a mapping of keys, got {_show(raw)}"])
    try:
        cfg = ClusterConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError([_format(err) for err in e.errors(include_url=False)]) from None
    return cfg


def json_schema() -> dict[str, Any]:
    """JSON Schema of a stack file whose `config` holds `styx:cluster` (stacks/schema.json)."""
    cluster = ClusterConfig.model_json_schema(ref_template="#/$defs/{model}")
    defs = cluster.pop("$defs", {})
    defs["ClusterConfig"] = cluster
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "styx stack file (stacks/Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {CONFIG_KEY: {"$ref": "#/$defs/ClusterConfig"}},
                "required": [CONFIG_KEY],
            },
            "secretsprovider": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "$defs": defs,
    }


def file_problems(cfg: ClusterConfig, base_dir: Path) -> list[str]:
    """Files the config names must exist before anything is created."""
    out = []
    for i, cs in enumerate(cfg.setup.custom_scripts):
        if cs.file and not (base_dir / cs.file).is_file():
            out.append(f"{CONFIG_KEY}.setup.custom_scripts[{i}].file: {cs.file!r} not found (relative to {base_dir})")
    for i, m in enumerate(cfg.setup.file_mounts):
        if not (base_dir / m.local).exists():
            out.append(f"{CONFIG_KEY}.setup.file_mounts[{i}].local: {m.local!r} not found (relative to {base_dir})")
    c = cfg.setup.ray.container
    if c is not None and c.tarball and not (base_dir / c.tarball).is_file():
        out.append(f"{CONFIG_KEY}.setup.ray.container.tarball: {c.tarball!r} not found (relative to {base_dir})")
    if cfg.ssh.private_key_file and not Path(cfg.ssh.private_key_file).expanduser().is_file():
        out.append(f"{CONFIG_KEY}.ssh.private_key_file: {cfg.ssh.private_key_file!r} not found")
    return out
