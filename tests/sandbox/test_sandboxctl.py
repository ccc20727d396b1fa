"""Real tests of sandbox/sandboxctl.sh (the `local` backend's host side).

They need root; they build (once, ~50 s) and then reuse the base rootfs cached
under /var/cache/styx. Everything else lives in a throw-away state dir and
uses a cluster name, bridge and subnet of its own.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sbctl_helpers import REPO, SANDBOXCTL, clean_env, sandboxctl

from styx.app import hostkeys

SSH_OPTS = [
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=5",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


# ---------------------------------------------------------------- helpers --


def status(cluster: str, state_dir: Path) -> dict:
    proc = sandboxctl("status", STYX_SB_CLUSTER=cluster, STYX_SB_STATE_DIR=str(state_dir))
    return json.loads(proc.stdout)


def assert_clean(st: dict) -> None:
    leftovers = {k: v for k, v in st.items() if k not in ("cluster", "clean") and isinstance(v, list) and v}
    assert leftovers == {} and st["clean"] is True, leftovers


def free_subnet(exclude: set[str] = frozenset()) -> str:
    """A /24 that preflight accepts (no overlap with the host)."""
    for n in range(200, 255):
        subnet = f"10.{n}.0.0/24"
        if subnet in exclude:
            continue
        proc = sandboxctl("preflight", check=False, STYX_SB_SUBNET=subnet)
        if proc.returncode == 0:
            return subnet
    pytest.skip("no free 10.x.0.0/24 subnet on this host")


def ssh(c: Cluster, node: str, key: Path, command: str, timeout: float = 60):
    """`command` as root on `node`, its host key pinned as styx pins it: the ed25519 key node-up made,
    read from the node's root filesystem on this host (not learnt from whoever answers at its address)."""
    d = c.state_dir / c.name / node
    ip = dict(ln.split("=", 1) for ln in (d / "node.env").read_text().splitlines() if "=" in ln)["STYX_SB_IP"]
    pub = " ".join((d / "merged/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])
    pins = hostkeys.PinnedHosts.write(c.name, {"nodes": [{"name": node, "host": ip, "host_key": pub}]},
                                      key.parent / f"known_hosts-{c.name}-{node}")
    return subprocess.run(
        ["ssh", "-i", str(key), *SSH_OPTS, *pins.options(ip), f"root@{ip}", command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Cluster:
    def __init__(self, name: str, state_dir: Path, subnet: str, bridge: str):
        self.name = name
        self.state_dir = state_dir
        self.subnet = ipaddress.ip_network(subnet)
        self.bridge = bridge
        self.gateway = str(self.subnet.network_address + 1)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "STYX_SB_CLUSTER": self.name,
            "STYX_SB_STATE_DIR": str(self.state_dir),
            "STYX_SB_SUBNET": str(self.subnet),
            "STYX_SB_BRIDGE": self.bridge,
            "STYX_SB_GATEWAY": self.gateway,
            "STYX_SB_PREFIX": str(self.subnet.prefixlen),
        }
        env.update(extra)
        return env

    def ip(self, n: int) -> str:
        return str(self.subnet.network_address + n)

    def run(self, sub: str, check: bool = True, **extra: str):
        return sandboxctl(sub, check=check, **self.env(**extra))

    def status(self) -> dict:
        return status(self.name, self.state_dir)


_counter = iter(range(100))


def new_cluster(tmp_path_factory, exclude=frozenset()) -> Cluster:
    tag = f"{os.getpid() % 100000}{next(_counter)}"
    state = tmp_path_factory.mktemp(f"sbstate{tag}")
    return Cluster(f"pyt{tag}", state, free_subnet(set(exclude)), f"sxt{tag}"[:15])


@pytest.fixture(scope="module")
def sshkey(tmp_path_factory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("sshkey")
    key = d / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (d / "id_ed25519.pub").read_text().strip()


# ------------------------------------------------------------ no root needed --


def test_shellcheck():
    sc = REPO / ".venv" / "bin" / "shellcheck"
    exe = str(sc) if sc.exists() else shutil.which("shellcheck")
    if not exe:
        pytest.skip("shellcheck not installed")
    proc = subprocess.run(
        [exe, str(SANDBOXCTL), str(REPO / "sandbox" / "host-deps.sh")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_preflight_non_root(tmp_path):
    """A stub `id` makes the script believe it is not root."""
    stub = tmp_path / "id"
    stub.write_text("#!/bin/sh\necho 1000\n")
    stub.chmod(0o755)
    env = clean_env(PATH=f"{tmp_path}:{os.environ['PATH']}")
    proc = subprocess.run([str(SANDBOXCTL), "preflight"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "must run as root" in proc.stderr and "fix:" in proc.stderr
    assert re.search(r"^\[\S+\] sandbox preflight ERROR ", proc.stderr, re.M)
    assert proc.stdout == ""


# ------------------------------------------------------------ root needed --


@pytest.mark.sandbox
def test_preflight_missing_tool(sandbox_ready, tmp_path):
    """A PATH with everything but debootstrap."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name == "debootstrap" or (bindir / name).exists():
                continue
            (bindir / name).symlink_to(os.path.join(d, name))
    proc = subprocess.run(
        [str(SANDBOXCTL), "preflight"],
        env=clean_env(PATH=str(bindir)),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "missing host tools: debootstrap" in proc.stderr
    assert "host-deps.sh" in proc.stderr


@pytest.mark.sandbox
def test_preflight_subnet_overlap(sandbox_ready, tmp_path):
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    addrs = [
        ipaddress.ip_interface(line.split()[3]) for line in out.splitlines() if not line.split()[3].startswith("127.")
    ]
    if not addrs:
        pytest.skip("host has no non-loopback IPv4 address to collide with")
    clash = str(addrs[0].network)
    proc = sandboxctl(
        "preflight",
        check=False,
        STYX_SB_SUBNET=clash,
        STYX_SB_CLUSTER="pytoverlap",
        STYX_SB_BRIDGE="sxtoverlap",
        STYX_SB_STATE_DIR=str(tmp_path / "state"),
    )
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 1, proc.stderr
    assert f"STYX_SB_SUBNET {clash} overlaps" in errors[0]
    assert "fix: choose a free STYX_SB_SUBNET" in errors[0]
    # created nothing
    assert not (tmp_path / "state").exists()
    assert not Path("/sys/class/net/sxtoverlap").exists()


@pytest.mark.sandbox
def test_net_up_down_twice(sandbox_ready, tmp_path_factory):
    c = new_cluster(tmp_path_factory)
    try:
        for _ in range(2):
            assert c.run("net-up").stdout.strip() == c.gateway
            st = c.status()
            assert st["bridges"] == [c.bridge]
            assert len(st["iptables"]) == 3, st["iptables"]
            assert all(f"styx:{c.name}" in r for r in st["iptables"])
        addr = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "dev", c.bridge],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert f"{c.gateway}/{c.subnet.prefixlen}" in addr
        assert Path(f"/sys/class/net/{c.bridge}/mtu").read_text().strip() == "1400"
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
        # same subnet for another cluster is refused (ours is no longer free)
        other = sandboxctl(
            "net-up", check=False,
            STYX_SB_CLUSTER="pytother", STYX_SB_SUBNET=str(c.subnet),
            STYX_SB_BRIDGE="sxtother", STYX_SB_STATE_DIR=str(c.state_dir),
        )  # fmt: skip
        assert other.returncode == 2 and "overlaps" in other.stderr
        assert not Path("/sys/class/net/sxtother").exists()
    finally:
        c.run("net-down")
        second = c.run("net-down")
    assert "nothing to do" in second.stderr
    assert_clean(c.status())


@pytest.mark.sandbox
def test_refuse_file_fails_before_creating_anything(sandbox_ready, tmp_path_factory, tmp_path, sshkey):
    c = new_cluster(tmp_path_factory)
    refuse = tmp_path / "refuse"
    refuse.write_text("zone-b\n")
    before = c.status()
    proc = c.run(
        "node-up",
        check=False,
        STYX_SB_NODE="nodex",
        STYX_SB_IP=c.ip(10),
        STYX_SB_PUBKEY=sshkey[1],
        STYX_SB_ZONE="zone-b",
        STYX_SB_REFUSE_FILE=str(refuse),
    )
    assert proc.returncode == 3, proc.stderr
    assert "InsufficientCapacity: zone zone-b has no capacity for nodex" in proc.stderr
    assert proc.stdout == ""
    assert c.status() == before
    assert_clean(c.status())
    assert list(c.state_dir.iterdir()) == []


@pytest.mark.sandbox
def test_node_down_and_net_down_leave_nothing(sandbox_ready, tmp_path_factory, sshkey):
    c = new_cluster(tmp_path_factory)
    env = dict(STYX_SB_NODE="solo", STYX_SB_IP=c.ip(20), STYX_SB_PUBKEY=sshkey[1])
    try:
        c.run("net-up")
        assert c.run("node-up", **env).stdout.strip() == c.ip(20)
        st = c.status()
        assert len(st["netns"]) == 1 and len(st["veths"]) == 1
        assert st["mounts"] and st["processes"]
        # leave a daemonised process behind in the node: node-down must kill it
        r = ssh(c, "solo", sshkey[0], "setsid sleep 600 </dev/null >/dev/null 2>&1 &")
        assert r.returncode == 0, r.stderr
    finally:
        first = c.run("node-down", STYX_SB_NODE="solo")
    assert "removed" in first.stderr
    second = c.run("node-down", STYX_SB_NODE="solo")
    assert "nothing to do" in second.stderr
    c.run("net-down")
    assert_clean(c.status())
    assert list(c.state_dir.iterdir()) == []


# ----------------------------------------------------------- two-node cluster --


@pytest.fixture(scope="module")
def two_nodes(sandbox_ready, tmp_path_factory, sshkey):
    c = new_cluster(tmp_path_factory)
    nodes = {"node-a": (c.ip(10), "1g"), "node-b": (c.ip(11), "3g")}
    hosts = "\n".join(f"{ip} {name}" for name, (ip, _) in nodes.items())
    try:
        c.run("net-up")
        for name, (ip, shm) in nodes.items():
            out = c.run(
                "node-up",
                STYX_SB_NODE=name,
                STYX_SB_IP=ip,
                STYX_SB_PUBKEY=sshkey[1],
                STYX_SB_SHM_SIZE=shm,
                STYX_SB_HOSTS=hosts,
            ).stdout
            assert out.strip() == ip
        yield c, nodes
    finally:
        for name in nodes:
            c.run("node-down", check=False, STYX_SB_NODE=name)
        c.run("net-down", check=False)
    assert_clean(c.status())


@pytest.mark.sandbox
def test_ssh_hostname(two_nodes, sshkey):
    c, nodes = two_nodes
    for name in nodes:
        r = ssh(c, name, sshkey[0], "hostname")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == name


@pytest.mark.sandbox
def test_node_up_again_is_noop(two_nodes, sshkey):
    c, nodes = two_nodes
    ip, shm = nodes["node-a"]
    pid_before = (c.state_dir / c.name / "node-a" / "init.pid").read_text()
    r = c.run(
        "node-up", STYX_SB_NODE="node-a", STYX_SB_IP=ip,
        STYX_SB_PUBKEY=sshkey[1], STYX_SB_SHM_SIZE=shm,
    )  # fmt: skip
    assert r.stdout.strip() == ip
    assert "already running, skipping" in r.stderr
    assert (c.state_dir / c.name / "node-a" / "init.pid").read_text() == pid_before


@pytest.mark.sandbox
def test_nodes_reach_each_other_by_name(two_nodes, sshkey):
    c, nodes = two_nodes
    r = ssh(
        c,
        "node-a",
        sshkey[0],
        "getent hosts node-b && timeout 5 bash -c 'exec 3<>/dev/tcp/node-b/22; head -c 8 <&3'",
    )
    assert r.returncode == 0, r.stderr
    assert nodes["node-b"][0] in r.stdout
    assert "SSH-2.0-" in r.stdout


@pytest.mark.sandbox
def test_own_shm_pid1_and_sysfs(two_nodes, sshkey):
    c, nodes = two_nodes
    host_pidns = os.readlink("/proc/self/ns/pid")
    sizes = {}
    for name, (ip, _shm) in nodes.items():
        r = ssh(
            c,
            name,
            sshkey[0],
            "stat -f -c '%b %S' /dev/shm; cat /proc/1/comm; readlink /proc/self/ns/pid;"
            " ls /sys/class/net | tr '\\n' ' '; echo; ip -o -4 addr show dev eth0;"
            " cat /sys/class/net/eth0/mtu",
        )
        assert r.returncode == 0, r.stderr
        blocks_bsize, comm, pidns, netdevs, addr, mtu = r.stdout.strip().splitlines()
        blocks, bsize = map(int, blocks_bsize.split())
        sizes[name] = blocks * bsize
        assert comm == "sshd"  # PID 1 of the node is its sshd, not the host's init
        assert pidns != host_pidns
        assert netdevs.split() == ["eth0", "lo"]  # sysfs of the node's own netns
        assert f"{ip}/" in addr
        assert mtu == "1400"
    assert sizes["node-a"] == 1 << 30
    assert sizes["node-b"] == 3 << 30


@pytest.mark.sandbox
def test_network_through_nat(two_nodes, sshkey):
    c, _ = two_nodes
    r = ssh(
        c,
        "node-b",
        sshkey[0],
        "cd /tmp && python3 -m pip download --no-deps -q -d /tmp/dl six && ls /tmp/dl",
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "six-" in r.stdout


def test_node_stop_keeps_root_node_start_brings_it_back(sandbox_ready, tmp_path_factory, sshkey):
    tag = f"{os.getpid() % 100000}{next(_counter)}"
    c = Cluster(f"ss{tag}", tmp_path_factory.mktemp(f"sbstate{tag}"), "10.94.0.0/24", f"sxs{tag}"[:15])
    env = dict(STYX_SB_NODE="solo", STYX_SB_IP=c.ip(20), STYX_SB_PUBKEY=sshkey[1])
    try:
        c.run("net-up")
        c.run("node-up", **env)
        r = ssh(c, "solo", sshkey[0], "echo kept > /root/mark; setsid sleep 600 </dev/null >/dev/null 2>&1 &")
        assert r.returncode == 0, r.stderr
        hostkey = ssh(c, "solo", sshkey[0], "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout
        stop = c.run("node-stop", STYX_SB_NODE="solo")
        assert "stopped" in stop.stderr
        st = c.status()
        assert st["processes"] == [] and st["mounts"] == [] and len(st["netns"]) == 1, st
        alive = c.run("node-alive", check=False, STYX_SB_NODE="solo")
        assert (alive.returncode, alive.stdout.strip()) == (3, "stopped")
        assert "already stopped" in c.run("node-stop", STYX_SB_NODE="solo").stderr
        assert "started" in c.run("node-start", STYX_SB_NODE="solo").stderr
        assert c.run("node-alive", STYX_SB_NODE="solo").stdout.strip() == "running"
        r = ssh(c, "solo", sshkey[0], "cat /root/mark; pgrep -c sleep || true; cat /etc/ssh/ssh_host_ed25519_key.pub")
        assert r.returncode == 0, r.stderr
        mark, sleeps, *key = r.stdout.splitlines()
        assert (mark, sleeps) == ("kept", "0") and "\n".join(key) + "\n" == hostkey  # files kept, processes not
        assert "skipping" in c.run("node-start", STYX_SB_NODE="solo").stderr
        c.run("node-stop", STYX_SB_NODE="solo")  # node-down cleans up a stopped node too
    finally:
        c.run("node-down", check=False, STYX_SB_NODE="solo")
        c.run("net-down", check=False)
    assert_clean(c.status())
    assert list(c.state_dir.iterdir()) == []


def test_node_up_rejects_a_bad_docker_value_before_creating_anything(tmp_path):
    state = tmp_path / "state"
    env = clean_env(STYX_SB_CLUSTER="dkbad", STYX_SB_NODE="head", STYX_SB_IP="10.95.0.2",
                    STYX_SB_PUBKEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0x test", STYX_SB_BRIDGE="sxdkbad",
                    STYX_SB_GATEWAY="10.95.0.1", STYX_SB_DOCKER="yes", STYX_SB_STATE_DIR=str(state),
                    STYX_SB_LOCK_DIR=str(tmp_path / "lock"))
    proc = subprocess.run([str(SANDBOXCTL), "node-up"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "STYX_SB_DOCKER: 'yes' is not allowed (allowed: 0, 1)" in proc.stderr
    assert not state.exists()


def _fake_node(state: Path, cluster: str, node: str) -> Path:
    d = state / cluster / node
    (d / "upper").mkdir(parents=True)
    (d / "node.env").write_text(f"STYX_SB_CLUSTER={cluster}\nSTYX_SB_NODE={node}\n")
    return d


def _wait_for(path: Path, seconds: float = 15) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.2)
    return False


def test_autostop_reaper_stops_the_cluster_on_the_heads_request(tmp_path):
    """The host-side reaper reads the head's request from its root (no sandbox needs to run: node-stop of
    a node with nothing running only records it stopped), stops workers then the head, records it, and
    ignores requests it must not trust (malformed, through a symlink)."""
    if os.geteuid() != 0:
        pytest.skip("sandboxctl's node-stop needs root")
    state, c = tmp_path / "state", "reap1"
    head, worker = _fake_node(state, c, "head"), _fake_node(state, c, "worker-0")
    req = head / "upper/var/lib/styx/autostop/requested"
    req.parent.mkdir(parents=True)
    env = {"STYX_SB_CLUSTER": c, "STYX_SB_STATE_DIR": str(state), "STYX_SB_LOCK_DIR": str(tmp_path / "locks"),
           "STYX_SB_AUTOSTOP_NODES": "worker-0 head", "STYX_SB_REAPER_INTERVAL": "1"}
    record = state / c / ".autostop" / "record"
    try:
        req.write_text("stop now; rm -rf /\n")  # malformed: ignored
        sandboxctl("autostop-reaper-start", **env)
        again = sandboxctl("autostop-reaper-start", **env)  # restarts, one reaper
        assert "restarting" in again.stderr
        time.sleep(2)
        assert not record.exists() and not (head / "stopped").exists()
        target = tmp_path / "elsewhere"
        target.mkdir()
        (target / "requested").write_text("stop 2026-12-02T10:00:00Z\n")
        req.unlink()
        req.parent.rmdir()
        req.parent.symlink_to(target)  # the node's files never lead the host elsewhere
        time.sleep(2)
        assert not record.exists()
        req.parent.unlink()
        req.parent.mkdir()
        req.write_text("stop 2026-12-02T10:00:00Z\n")
        assert _wait_for(record), (state / c / ".autostop" / "reaper.log").read_text()
        assert record.read_text() == "at=2026-12-02T10:00:00Z\naction=stop\nnodes=worker-0 head\n"
        assert (head / "stopped").exists() and (worker / "stopped").exists()
        assert not req.exists()  # acted on once
        log = (state / c / ".autostop" / "reaper.log").read_text()
        assert log.index("node worker-0 of cluster") < log.index("node head of cluster"), log
        pid = int((state / c / ".autostop" / "reaper.pid").read_text())
        assert Path(f"/proc/{pid}").exists()
    finally:
        sandboxctl("autostop-reaper-stop", **env)
    assert not (state / c / ".autostop").exists()
    time.sleep(0.3)
    assert not Path(f"/proc/{pid}/cmdline").exists() or "_reaper" not in Path(f"/proc/{pid}/cmdline").read_text()


def test_autostop_reaper_down_runs_styx_down_with_the_engine_settings_and_stops_when_it_fails(tmp_path):
    """A "down" request: the reaper starts `PYTHON -m styx down --stack STACK --yes` detached, with the
    engine settings it was started with (kept 0600, never in its command line), and ends; a failed down
    stops the sandboxes instead. PYTHON is a fake here: it records its arguments and one setting."""
    if os.geteuid() != 0:
        pytest.skip("sandboxctl's node-stop needs root")
    state, c = tmp_path / "state", "reapdown"
    head, worker = _fake_node(state, c, "head"), _fake_node(state, c, "worker-0")
    req = head / "upper/var/lib/styx/autostop/requested"
    req.parent.mkdir(parents=True)
    py = tmp_path / "fake-python"
    calls = tmp_path / "calls"
    py.write_text(f'#!/bin/bash\necho "$* pass=$PULUMI_CONFIG_PASSPHRASE be=$PULUMI_BACKEND_URL" >>{calls}\n'
                  f'[[ -e {tmp_path}/fail ]] && exit 1\nexit 0\n')
    py.chmod(0o755)
    env = {"STYX_SB_CLUSTER": c, "STYX_SB_STATE_DIR": str(state), "STYX_SB_LOCK_DIR": str(tmp_path / "locks"),
           "STYX_SB_AUTOSTOP_NODES": "worker-0 head", "STYX_SB_REAPER_INTERVAL": "1",
           "STYX_SB_DOWN_STACK": "st-1", "STYX_SB_DOWN_PYTHON": str(py),
           "PULUMI_CONFIG_PASSPHRASE": "pp-not-in-argv", "STYX_BACKEND_URL": "file:///tmp/be"}
    down_env = state / c / ".autostop" / "down.env"
    log = state / ".autostop-down" / f"{c}.log"
    try:
        sandboxctl("autostop-reaper-start", **env)
        assert oct(down_env.stat().st_mode & 0o777) == "0o600"
        pid = int((state / c / ".autostop" / "reaper.pid").read_text())
        assert "pp-not-in-argv" not in Path(f"/proc/{pid}/cmdline").read_text()
        req.write_text("down 2026-12-02T10:00:00Z\n")
        assert _wait_for(calls), log.read_text() if log.exists() else "no log"
        assert calls.read_text() == "-m styx down --stack st-1 --yes pass=pp-not-in-argv be=file:///tmp/be\n"
        time.sleep(1.5)
        assert not Path(f"/proc/{pid}/cmdline").exists() or "_reaper" not in Path(f"/proc/{pid}/cmdline").read_text()
        assert "destroyed by autostop (down)" in log.read_text()
        assert not (head / "stopped").exists()  # the fake down destroyed nothing; it was not stopped either
        # started again with the same request pending: one down per request, the reaper keeps watching
        calls.unlink()
        sandboxctl("autostop-reaper-start", **env)
        time.sleep(2)
        assert not calls.exists()
        # a failing down: the sandboxes are stopped instead, and recorded as a stop
        (tmp_path / "fail").write_text("")
        req.write_text("down 2026-12-02T11:00:00Z\n")
        record = state / c / ".autostop" / "record"
        assert _wait_for(record), log.read_text()
        assert record.read_text() == "at=2026-12-02T11:00:00Z\naction=stop\nnodes=worker-0 head\n"
        assert calls.read_text().startswith("-m styx down --stack st-1 --yes")
        assert (head / "stopped").exists() and (worker / "stopped").exists()
        assert "styx down failed: stopping the sandboxes instead" in log.read_text()
    finally:
        sandboxctl("autostop-reaper-stop", **env)
    assert not (state / c / ".autostop").exists()
