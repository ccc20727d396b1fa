"""Shared pieces of the local-cluster benchmarks (bench/local_cluster_bench.py, parallel_bench.py,
ray_up_bench.py): a styx stack with a timed `up` and per-resource timeline, SSH into nodes, polling
for N alive Ray nodes, hand-made sandbox hosts (sandboxctl), an optional host-side wheel mirror, and
the summary table. Timings are printed numbers, never asserts.

Every benchmark cluster is named `bench…` and lives on one of 10.90.0.0/24 .. 10.99.0.0/24; whatever a
benchmark creates it tears down in a `finally` (stack destroyed and removed; sandboxctl node-down /
net-down as the fallback and for hand-made hosts).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SANDBOXCTL = ROOT / "sandbox" / "sandboxctl.sh"
RAY_VERSION = "2.60.0"
VENV = "/opt/styx/venv"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# The Pulumi engine treats parallel == 2**31-1 (math.MaxInt32) as unbounded (Options.InfiniteParallelism),
# but with an inline Python program the Automation API's language server multiplies `parallel` by 4
# (pulumi/automation/_server.py: thread pool size) and sends it back in an int32 field, so 2**31-1 fails
# with "Exception calling application: Value out of range: 8589934588". A value above the number of
# resources is unbounded in practice (the engine starts that many worker goroutines; the program's
# thread pool gets 4x that, created lazily).
WIDE_PARALLEL = 256


# --------------------------------------------------------------------------- small helpers


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line() -> str:
    cpus = os.cpu_count()
    try:
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem_gib = int(mem.split()[1]) / 2**20
    except Exception:
        mem_gib = float("nan")
    return (f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {socket.gethostname()}, "
            f"{cpus} cores, {mem_gib:.0f} GiB, load {loadavg()}")


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    out = [title, line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def local_cluster(name: str, subnet: str) -> dict:
    """The default stack's cluster (stacks/Pulumi.local.yaml) renamed and moved to `subnet`."""
    import yaml

    raw = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]["styx:cluster"]
    c = copy.deepcopy(raw)
    c["name"] = name
    c["local"]["subnet"] = subnet
    return c


def gateway(subnet: str) -> str:
    return str(ipaddress.IPv4Network(subnet).network_address + 1)


# --------------------------------------------------------------------------- styx stack, timed


@dataclass
class Timeline:
    """Per-resource (op, start, end) in seconds since the start of the engine call."""

    t0: float
    start: dict[str, float] = field(default_factory=dict)
    end: dict[str, float] = field(default_factory=dict)
    op: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def on_event(self, ev) -> None:
        now = time.monotonic() - self.t0
        for attr in ("resource_pre_event", "res_outputs_event", "res_op_failed_event"):
            e = getattr(ev, attr, None)
            if e is None:
                continue
            md = e.metadata
            if md.type.startswith("pulumi:"):
                return
            name = md.urn.rsplit("::", 1)[-1]
            op = md.op.value if hasattr(md.op, "value") else str(md.op)
            if attr == "resource_pre_event":
                self.start.setdefault(name, now)
                self.op[name] = op
            elif attr == "res_outputs_event":
                self.end[name] = now
            else:
                self.failed.append(name)
                self.end[name] = now

    def changed(self) -> dict[str, str]:
        return {n: op for n, op in self.op.items() if op not in ("same", "read")}

    def last_end(self, suffix: str) -> float | None:
        vals = [t for n, t in self.end.items() if n.endswith(suffix) and self.op.get(n) not in ("same", "read")]
        return max(vals) if vals else None

    def dur(self, name: str) -> float | None:
        if name in self.start and name in self.end:
            return self.end[name] - self.start[name]
        return None


@dataclass
class Run:
    seconds: float
    changes: dict[str, int]
    timeline: Timeline
    host_cpu_s: float = 0.0  # this process + children (inline program, pulumi CLI, plugins, sandboxctl)


class BenchStack:
    """A styx stack on a file backend in a temp dir (like tests/e2e/helpers.Stack), timed."""

    def __init__(self, name: str, cluster: dict, tmp: Path):
        from styx.app import engine

        self.name = name
        self.tmp = tmp
        self.cluster = cluster
        self.backend = f"file://{tmp / 'state'}"
        self.stack = engine.open_stack(name, cluster, base_dir=ROOT, work_dir=tmp / "ws", backend_url=self.backend,
                                       extra_env={"RAY_USAGE_STATS_ENABLED": "0"})
        self._key: Path | None = None
        self._access: Access | None = None
        self._outputs: dict | None = None

    def reconfigure(self, cluster: dict) -> None:
        from styx.app import engine

        self.cluster = cluster
        engine.set_cluster_config(self.stack, cluster)

    def up(self, parallel: int | None = None) -> Run:
        cpu = HostCpu()
        tl = Timeline(time.monotonic())
        res = self.stack.up(on_event=tl.on_event, color="never", on_output=lambda s: None, parallel=parallel)
        secs = time.monotonic() - tl.t0
        self._outputs = self._access = None  # a replaced node has another host key
        return Run(secs, dict(res.summary.resource_changes or {}), tl, cpu.stop())

    def destroy(self, parallel: int | None = None) -> Run:
        tl = Timeline(time.monotonic())
        res = self.stack.destroy(on_event=tl.on_event, color="never", on_output=lambda s: None, parallel=parallel)
        secs = time.monotonic() - tl.t0
        self._outputs = self._access = None
        self._key = None
        return Run(secs, dict(res.summary.resource_changes or {}), tl)

    def outputs(self) -> dict:
        if self._outputs is None:
            self._outputs = {k: v.value for k, v in self.stack.outputs().items()}
        return self._outputs

    def key(self) -> Path:
        if self._key is None:
            from styx.app.remote import write_key

            self._key = write_key(self.tmp, self.outputs()["ssh_private_key"])
        return self._key

    def access(self) -> Access:
        """The key and the nodes' host keys from the stack's outputs (a known_hosts file in the temp dir)."""
        if self._access is None:
            from styx.app.hostkeys import PinnedHosts

            pins = PinnedHosts.write(self.cluster["name"], self.outputs(), self.tmp / f"known_hosts-{self.name}")
            self._access = Access(self.key(), pins)
        return self._access

    def ssh(self, ip: str, command: str, timeout: int = 120) -> subprocess.CompletedProcess:
        return ssh(self.access(), ip, command, timeout=timeout)

    def teardown(self) -> None:
        """Destroy (fallback: sandboxctl node-down/net-down by cluster name) and remove the stack."""
        try:
            self.destroy()
        except Exception as e:
            log(f"{self.name}: destroy failed ({str(e)[-400:]}); cleaning up with sandboxctl")
            sandbox_cleanup(self.cluster["name"], self.cluster)
        finally:
            try:
                self.stack.workspace.remove_stack(self.name)
            except Exception as e:
                log(f"{self.name}: remove_stack: {e}")


def sandbox_cleanup(cluster_name: str, cluster: dict | None = None) -> None:
    """node-down for every node of `cluster_name` the state dir knows about, then net-down."""
    local = (cluster or {}).get("local", {}) if cluster else {}
    state_dir = Path(local.get("state_dir", "/var/lib/styx/sandbox"))
    env = {"STYX_SB_CLUSTER": cluster_name, "STYX_SB_STATE_DIR": str(state_dir)}
    cdir = state_dir / cluster_name
    nodes = [p.name for p in cdir.iterdir() if p.is_dir()] if cdir.is_dir() else []
    for n in nodes:
        sandboxctl("node-down", {**env, "STYX_SB_NODE": n}, check=False)
    sandboxctl("net-down", env, check=False)


# --------------------------------------------------------------------------- SSH and Ray readiness

SSH_OPTS = ["-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]


@dataclass(frozen=True)
class Access:
    """Logging in to a cluster's nodes as root, by address: the private key, and every node's host key
    pinned as styx pins it (styx.app.hostkeys.PinnedHosts: a node that shows another key is refused)."""

    key: Path
    pins: Any  # styx.app.hostkeys.PinnedHosts

    def argv(self, ip: str, *options: str) -> list[str]:
        """`ssh … root@IP` (the command goes after it)."""
        return ["ssh", "-i", str(self.key), *SSH_OPTS, *self.pins.options(ip), *options, f"root@{ip}"]


def ssh(access: Access, ip: str, command: str, timeout: int = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([*access.argv(ip), command], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, 124, "", "timeout")


# The dashboard's list of alive node host names (kept current from GCS node events): a curl per poll
# instead of a Ray driver per poll (`ray.init` costs ~1-2 CPU-seconds on the head, which on 2 cores
# would slow down the very setup being timed).
# (with token auth the header comes from the token's file through a pipe: never on a command line)
_NODES_URL = "'http://127.0.0.1:8265/nodes?view=hostNameList'"
DASH_PROBE = ("if [ -r /etc/styx/ray-auth-token ]; then "
              "printf 'Authorization: Bearer %s\\n' \"$(cat /etc/styx/ray-auth-token)\" | "
              f"curl -s -m 5 -H @- {_NODES_URL}; else curl -s -m 5 {_NODES_URL}; fi || true")


def alive_count(access: Access, head: str) -> int | None:
    """Alive nodes by ray.nodes() on the head (a Ray driver: heavy; used once to confirm)."""
    from styx.app.remote import RAY_ALIVE_PY, ray_alive_count

    return ray_alive_count(ssh(access, head, RAY_ALIVE_PY, timeout=60).stdout)


def dashboard_alive(access: Access, head: str) -> int | None:
    """Alive nodes by the head's dashboard (distinct host names; every sandbox has its own)."""
    cm = ["-o", "ControlMaster=auto", "-o", f"ControlPath={access.key.parent}/cm-%C", "-o", "ControlPersist=60"]
    try:
        r = subprocess.run([*access.argv(head, *cm), DASH_PROBE],
                           capture_output=True, text=True, timeout=30, check=False)
        return len(json.loads(r.stdout)["data"]["hostNameList"])
    except Exception:  # not up yet, or not JSON yet
        return None


@dataclass
class Ready:
    seconds: float | None  # since t0 (None: timed out)
    probes: int
    last_probe_s: float
    last_count: int | None
    confirmed: int | None = None  # ray.nodes() alive count right after
    at_ready: Any = None  # what on_ready() returned (called before the confirmation)


def wait_alive(access: Access, head: str, want: int, t0: float, timeout: float = 600, interval: float = 1.0,
               on_ready=None) -> Ready:
    """Poll the head's dashboard (curl over one shared SSH connection) until `want` nodes are alive,
    then confirm once with ray.nodes(). The time is taken when the successful poll returns (so it
    includes one poll's latency, last_probe_s); if ray.nodes() disagrees, polling goes on with it."""
    probes, count, lat = 0, None, 0.0
    deadline = time.monotonic() + timeout
    probe = dashboard_alive
    while time.monotonic() < deadline:
        s = time.monotonic()
        count = probe(access, head)
        lat = time.monotonic() - s
        probes += 1
        if count is not None and count >= want:
            at = time.monotonic() - t0
            extra = on_ready() if on_ready else None
            confirmed = count if probe is alive_count else alive_count(access, head)
            if confirmed is not None and confirmed >= want:
                return Ready(at, probes, lat, count, confirmed, extra)
            log(f"dashboard says {count} alive, ray.nodes() {confirmed}: polling ray.nodes()")
            probe = alive_count
        time.sleep(interval)
    return Ready(None, probes, lat, count)


# --------------------------------------------------------------------------- CPU accounting


def _stat_cpu(pid: str) -> float:
    """utime+stime+cutime+cstime of one process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in parts[11:15])


def node_cpu_seconds(cluster: str, state_dir: str = "/var/lib/styx/sandbox") -> float | None:
    """CPU seconds used so far inside a cluster's sandboxes: for every process in each node's PID
    namespace, its own and its waited-for children's user+system time (exited setup commands are in
    sshd's (PID 1's) children time; Ray's daemons in their own). Robust to other load on the host
    in a way wall time is not."""
    tck = os.sysconf("SC_CLK_TCK")
    cdir = Path(state_dir) / cluster
    if not cdir.is_dir():
        return None
    namespaces = set()
    for d in cdir.iterdir():
        try:
            pid = (d / "init.pid").read_text().strip()
            namespaces.add(os.readlink(f"/proc/{pid}/ns/pid"))
        except OSError:
            continue
    total = 0.0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{p.name}/ns/pid") in namespaces:
                total += _stat_cpu(p.name)
        except OSError:
            continue
    return total / tck


class HostCpu:
    """CPU seconds of this process and its (waited-for) children between start() and stop():
    the inline program + the pulumi CLI and its plugins, or the `ray up` launcher and its ssh."""

    def __init__(self) -> None:
        self.t = self._now()

    @staticmethod
    def _now() -> float:
        import resource

        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    def stop(self) -> float:
        return self._now() - self.t


# --------------------------------------------------------------------------- sandboxctl (hand-made hosts)


def sandboxctl(sub: str, env: dict[str, str], check: bool = True, timeout: int = 900) -> str:
    r = subprocess.run(["bash", str(SANDBOXCTL), sub], env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"sandboxctl {sub} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout.strip()


class HandMadeHosts:
    """Sandbox hosts made directly with sandboxctl (base, net-up, node-up), as `styx` would place them:
    head at .2, workers at .10, .11, …; torn down with node-down + net-down. As styx does, each node's
    ed25519 host key is made here and handed to node-up (on stdin), and pinned in `access`."""

    def __init__(self, cluster: str, subnet: str, workers: int, tmp: Path):
        net = ipaddress.IPv4Network(subnet)
        self.cluster, self.subnet = cluster, subnet
        self.bridge = "sx" + __import__("hashlib").sha256(cluster.encode()).hexdigest()[:10]
        self.nodes = [("head", str(net.network_address + 2))]
        self.nodes += [(f"worker-{i}", str(net.network_address + 10 + i)) for i in range(workers)]
        self.key = tmp / "id_ed25519"
        keygen(self.key, f"{cluster}-bench")
        self.host_keys = {n: tmp / f"host-{n}" for n, _ in self.nodes}
        for n, f in self.host_keys.items():
            keygen(f, f"root@{n}")
        from styx.app.hostkeys import PinnedHosts

        rows = [{"name": n, "host": ip, "host_key": Path(f"{self.host_keys[n]}.pub").read_text().strip()}
                for n, ip in self.nodes]
        self.access = Access(self.key, PinnedHosts.write(cluster, {"nodes": rows}, tmp / f"known_hosts-{cluster}"))
        self.env = {"STYX_SB_CLUSTER": cluster, "STYX_SB_SUBNET": subnet, "STYX_SB_BRIDGE": self.bridge}

    @property
    def head(self) -> str:
        return self.nodes[0][1]

    @property
    def workers(self) -> list[str]:
        return [ip for _, ip in self.nodes[1:]]

    def up(self) -> dict[str, float]:
        t = {}
        s = time.monotonic()
        sandboxctl("base", self.env)
        t["base"] = time.monotonic() - s
        s = time.monotonic()
        sandboxctl("net-up", self.env)
        t["net-up"] = time.monotonic() - s
        pub = Path(str(self.key) + ".pub").read_text().strip()
        hosts = "\n".join(f"{ip} {n}" for n, ip in self.nodes)
        s = time.monotonic()
        procs = []
        for n, ip in self.nodes:
            with open(self.host_keys[n]) as key:  # node-up reads the node's host key on its stdin
                procs.append(subprocess.Popen(
                    ["bash", str(SANDBOXCTL), "node-up"], stdin=key, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, env={**os.environ, **self.env, "STYX_SB_NODE": n, "STYX_SB_IP": ip,
                                    "STYX_SB_PUBKEY": pub, "STYX_SB_HOSTS": hosts, "STYX_SB_HOST_KEY": "stdin"}))
        for p in procs:
            _, err = p.communicate(timeout=600)
            if p.returncode != 0:
                raise RuntimeError(f"node-up failed: {err[-2000:]}")
        t["node-up"] = time.monotonic() - s
        # a fresh node can miss its first dial ("No route to host" for a fraction of a second)
        s = time.monotonic()
        for _, ip in self.nodes:
            while self.ssh(ip, "true", timeout=15).returncode != 0:
                if time.monotonic() - s > 60:
                    raise RuntimeError(f"hand-made host {ip} does not answer SSH (with its pinned host key)")
                time.sleep(0.2)
        t["ssh"] = time.monotonic() - s
        return t

    def down(self) -> None:
        for n, _ in self.nodes:
            sandboxctl("node-down", {**self.env, "STYX_SB_NODE": n}, check=False)
        sandboxctl("net-down", self.env, check=False)

    def ssh(self, ip: str, command: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return ssh(self.access, ip, command, timeout=timeout)


def keygen(path: Path, comment: str) -> None:
    """A new ed25519 key pair at `path` and `path`.pub (no passphrase)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)


# --------------------------------------------------------------------------- host-side wheel mirror (--pip-cache)


PIP_CACHE_DIR = Path(os.environ.get("STYX_BENCH_PIP_CACHE", "/var/cache/styx-bench/wheels"))


class WheelMirror:
    """A host-side wheel cache for `ray[default]==VERSION` and its dependencies, served over HTTP on
    every interface (the nodes reach it at their bridge's gateway address, .1). The wheels are
    downloaded once (`pip download` with this host's CPython 3.11 = the base image's), kept in
    PIP_CACHE_DIR, and reused by later runs. Nodes use it through a pip.conf
    (`no-index`, `find-links`, `trusted-host`): styx through a custom script that writes
    /opt/styx/venv/pip.conf before the ray phase, `ray up` through pip flags."""

    def __init__(self, spec: str = f"ray[default]=={RAY_VERSION}"):
        self.spec = spec
        self.dir = PIP_CACHE_DIR / spec.replace("[", "_").replace("]", "_").replace("==", "-")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.fill_seconds = 0.0
        self.files = 0
        self.mib = 0.0

    def ensure(self) -> None:
        done = self.dir / ".complete"
        s = time.monotonic()
        if not done.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            log(f"pip cache: downloading {self.spec} into {self.dir}")
            subprocess.run(["python3", "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(self.dir),
                            self.spec], check=True, env={**os.environ, "PIP_FIND_LINKS": ""})
            done.write_text(self.spec + "\n")
        self.fill_seconds = time.monotonic() - s
        files = [p for p in self.dir.iterdir() if p.suffix == ".whl"]
        self.files = len(files)
        self.mib = sum(p.stat().st_size for p in files) / 2**20

    def start(self) -> None:
        self.ensure()
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "http.server", str(self.port), "--bind", "0.0.0.0",
                                      "--directory", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("wheel mirror did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def url(self, subnet: str) -> str:
        return f"http://{gateway(subnet)}:{self.port}/"

    def pip_conf(self, subnet: str) -> str:
        return (f"[global]\nno-index = true\nfind-links = {self.url(subnet)}\n"
                f"trusted-host = {gateway(subnet)}\n")

    def styx_script(self, subnet: str) -> dict:
        """A custom script (runs after python_env, before ray) pointing the venv's pip at the mirror."""
        body = f"cat > {VENV}/pip.conf <<'PIPCONF'\n{self.pip_conf(subnet)}PIPCONF\n"
        return {"name": "pip-mirror", "inline": body}

    def pip_args(self, subnet: str) -> str:
        g = gateway(subnet)
        return f"--no-index --find-links {self.url(subnet)} --trusted-host {g}"


def pip_downloads(access: Access, ip: str, log_file: str = "/var/log/styx/python_env.log /var/log/styx/ray.log") -> str:
    """What a node's pip fetched (honesty check on 'warm'): "P+M" = P wheels downloaded from PyPI
    (pip logs `Downloading NAME.whl` for files.pythonhosted.org) + M from elsewhere (`Downloading
    http://…`, the host mirror); "?" when the log is unreadable."""
    r = ssh(access, ip, f"grep -hoE 'Downloading [^ ]+' {log_file} 2>/dev/null; true", timeout=30)
    if r.returncode != 0:
        return "?"
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    other = sum(1 for ln in lines if ln.startswith("Downloading http"))
    return f"{len(lines) - other}+{other}"


def json_dump(path: str | None, data: Any) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))


def shq(s: str) -> str:
    return shlex.quote(s)


def rm_tree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)
