"""Benchmark (issue 17): where the CPU of one `up` of `parallel_bench.py`'s cluster goes, by process kind.

N nodes (default 32) × (sandbox + wait_ssh gate + 3 custom scripts `sleep 5`), the cluster of
`parallel_bench.py`, `parallel=256`. During the `up` the kernel's process accounting (acct(2), v3
records: pid, ppid, comm, user + system CPU of every process that exits) writes to a file in a temp
dir; at the end of the `up` the processes still alive (the nodes' sshd, their launchers) are read from
/proc. Every process is attributed by its ancestry: below this process (the inline program), below
the pulumi CLI, a provider plugin, its local commands (sandboxctl), or below a node's sshd (PID 1 of
the node: its per-connection sshd processes and the phases' shells). Other engineers' processes on
the host are not below either and are left out; the host's total busy CPU (/proc/stat) is printed
beside the attributed sum. Needs root (acct(2) is host-wide; it is switched off in a `finally`).

    .venv/bin/python bench/cpu_profile_bench.py [--nodes 32] [--subnet CIDR] [--prefix NAME] [--json OUT]
                                                [--perf perf.data]

--perf: `perf record -a -g` of the whole host during the up (then e.g. `perf report -i perf.data --sort comm`,
`--comm pulumi --sort sym`): the time of short processes too, kernel included, which acct's 10 ms ticks round
away.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WIDE_PARALLEL, BenchStack, json_dump, loadavg, log, machine_line, rm_tree, table
from parallel_bench import cluster

ACCT_V3 = struct.Struct("<ccHIIIIIIf8H16s")  # include/uapi/linux/acct.h struct acct_v3 (64 bytes)
AHZ = 100
STATE_DIR = Path(os.environ.get("STYX_SB_STATE_DIR", "/var/lib/styx/sandbox"))
TICK = os.sysconf("SC_CLK_TCK")
PERF_HZ = 199


def comp_t(c: int) -> float:
    return ((c & 0x1FFF) << (3 * (c >> 13))) / AHZ


def read_acct(path: Path) -> list[dict]:
    data = path.read_bytes()
    out = []
    for off in range(0, len(data) - ACCT_V3.size + 1, ACCT_V3.size):
        f = ACCT_V3.unpack_from(data, off)
        if f[1] != b"\x03":
            continue
        out.append({"pid": f[6], "ppid": f[7], "btime": f[8], "cpu": comp_t(f[10]) + comp_t(f[11]),
                    "comm": f[18].split(b"\0", 1)[0].decode(errors="replace"), "alive": False})
    return out


def proc_self_cpu(pid: int) -> tuple[int, str, float] | None:
    """(ppid, comm, own user+system CPU s) of a live process."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), comm, (int(rest[11]) + int(rest[12])) / TICK


def busy_cpu() -> float:
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK  # all but idle and iowait


class Sampler(threading.Thread):
    """pid -> command line of the processes below this one, every 0.5 s (to tell the providers apart:
    their comm is the same 15 characters)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.cmd: dict[int, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for d in os.listdir("/proc"):
                if d.isdigit() and int(d) not in self.cmd:
                    try:
                        c = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ")[:160].decode(errors="replace")
                    except OSError:
                        continue
                    if "pulumi-resource" in c:
                        self.cmd[int(d)] = c


def classify(recs: list[dict], me: int, node_roots: dict[int, str], cmd: dict[int, str]) -> dict:
    by_pid: dict[int, dict] = {}
    for r in recs:  # the last record of a pid wins (pid reuse within one run is rare here)
        by_pid[r["pid"]] = r

    def kind(pid: int) -> tuple[str, str] | None:
        chain = []
        p, hops = pid, 0
        while p and hops < 64:
            if p == me:
                break
            if p in node_roots:
                chain.append(p)
                return node_kind(chain)
            r = by_pid.get(p)
            if r is None:
                return None
            chain.append(p)
            p, hops = r["ppid"], hops + 1
        if p != me or not chain:
            return None
        return host_kind(chain)

    def comm(p: int) -> str:
        return by_pid[p]["comm"]

    def node_kind(chain: list[int]) -> tuple[str, str]:
        # chain: the process ... the node's root (its launcher or sshd as PID 1)
        root = chain[-1]
        if len(chain) == 1:
            return "node", f"{node_roots[root]} (self)"
        below = chain[:-1]
        c = comm(chain[0])
        if node_roots[root] == "launcher":
            return "node", "launcher: namespaces (unshare, ip netns exec)"
        if not any(comm(x) == "sshd" for x in below):
            return "node", f"init before sshd: {c}"
        if all(comm(x) == "sshd" for x in below):
            return "node", "sshd per connection (pre-auth, re-exec, key exchange, session)"
        return "node", f"phase: {c}"

    def host_kind(chain: list[int]) -> tuple[str, str]:
        # chain: the process ... a direct child of this process
        top = chain[-1]
        if comm(top) != "pulumi":
            return "host", f"other child of the bench: {comm(chain[0])}"
        if len(chain) == 1:
            return "host", "pulumi CLI (engine)"
        plugin = chain[-2]
        name = cmd.get(plugin, comm(plugin))
        pname = "pulumi-resource-command" if "command" in name else (
            "pulumi-resource-tls" if "tls" in name else name.split()[0].rsplit("/", 1)[-1])
        if len(chain) == 2:
            return "host", f"provider {pname}"
        return "host", f"local command (under {pname}): {comm(chain[0])}"

    cpu: dict[tuple[str, str], float] = collections.defaultdict(float)
    count: dict[tuple[str, str], int] = collections.defaultdict(int)
    kinds: dict[int, tuple[str, str]] = {}
    left = 0.0
    for pid, r in by_pid.items():
        k = kind(pid)
        if k is None:
            left += r["cpu"]
            continue
        kinds[pid] = k
        cpu[k] += r["cpu"]
        count[k] += 1
    return {"cpu": cpu, "count": count, "unattributed": left, "kinds": kinds}


BENCH_KIND = ("host", "bench process (inline program, Automation API, this bench's sampler)")


def perf_cpu(path: str, kinds: dict[int, tuple[str, str]], hz: int) -> tuple[dict[tuple[str, str], float], float]:
    """CPU s per kind from `perf record -a` samples (by process id), and the total of all samples."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "pid", "-G"], capture_output=True, text=True,
                         check=True).stdout.split()
    samples = collections.Counter(int(x) for x in out if x.isdigit())
    cpu: dict[tuple[str, str], float] = collections.defaultdict(float)
    for pid, c in samples.items():
        if pid in kinds:
            cpu[kinds[pid]] += c / hz
    return cpu, sum(samples.values()) / hz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--subnet", default="10.133.0.0/24")
    ap.add_argument("--prefix", default="bench-cpu")
    ap.add_argument("--json")
    ap.add_argument("--perf", help="also `perf record -a -g` (cpu-clock, 199 Hz) during the up into this file")
    ap.add_argument("--no-stack-trace", action="store_true",
                    help="experiment: the Python SDK sends no stack trace with each resource (monkeypatched here)")
    args = ap.parse_args()
    n = args.nodes
    if args.no_stack_trace:
        from pulumi.runtime import resource as sdk_resource

        sdk_resource._get_stack_trace = lambda: sdk_resource.source_pb2.StackTrace()
    name = f"{args.prefix}-{n}-cpu"
    tmp = Path(tempfile.mkdtemp(prefix=f"styx-{name}-"))
    acct_file = tmp / "acct"
    acct_file.touch()
    libc = ctypes.CDLL(None, use_errno=True)
    print(f"machine: {machine_line()}")
    stack = None
    sampler = Sampler()
    try:
        stack = BenchStack(name, cluster(name, n, args.subnet), tmp)
        load0 = loadavg()
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        busy0, t0 = busy_cpu(), time.monotonic()
        if libc.acct(str(acct_file).encode()) != 0:
            sys.exit(f"acct(2): {os.strerror(ctypes.get_errno())}")
        sampler.start()
        perf = None if not args.perf else subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(PERF_HZ), "-a", "-g", "-o", args.perf],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            log(f"N={n}: up (load {load0})")
            run = stack.up(parallel=WIDE_PARALLEL)
            roots: dict[int, str] = {}
            live: list[dict] = []
            for nd in (STATE_DIR / name).glob("*/"):
                for f, what in (("init.pid", "sshd as the node's PID 1 (+ the init's bash before exec)"),
                                ("launcher.pid", "launcher")):
                    try:
                        pid = int((nd / f).read_text())
                    except (OSError, ValueError):
                        continue
                    roots[pid] = what
                    if (st := proc_self_cpu(pid)) is not None:
                        live.append({"pid": pid, "ppid": st[0], "comm": st[1], "cpu": st[2], "alive": True,
                                     "btime": 0})
        finally:
            libc.acct(None)
            sampler.stop.set()
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait(60)
        wall, busy = time.monotonic() - t0, busy_cpu() - busy0
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        me_cpu = self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
        recs = read_acct(acct_file) + live
        got = classify(recs, os.getpid(), roots, sampler.cmd)
        kinds = {**got["kinds"], os.getpid(): BENCH_KIND}
        pcpu, ptotal = perf_cpu(args.perf, kinds, PERF_HZ) if args.perf else ({}, 0.0)
        acct_cpu = {BENCH_KIND: me_cpu, **got["cpu"]}
        count = {BENCH_KIND: 1, **got["count"]}
        rows = []
        for k in sorted(set(acct_cpu) | set(pcpu), key=lambda k: -max(acct_cpu.get(k, 0), pcpu.get(k, 0))):
            rows.append([k[0], k[1], count.get(k, 0), acct_cpu.get(k, 0.0), pcpu.get(k) if args.perf else None,
                         max(acct_cpu.get(k, 0), pcpu.get(k, 0)) / n])
        best = pcpu if args.perf else acct_cpu
        host = sum(v for (s, _), v in best.items() if s == "host")
        nodes = sum(v for (s, _), v in best.items() if s == "node")
        print()
        print(table(f"CPU of one `up` of {n} nodes x (gate + 3 x sleep 5), {run.seconds:.1f} s wall, "
                    f"load before {load0}",
                    ["side", "process kind", "processes", "CPU s (acct)", "CPU s (perf)", "CPU s per node"], rows))
        print(f"\nattributed: host {host:.1f} s + nodes {nodes:.1f} s = {host + nodes:.1f} CPU s over {wall:.1f} s "
              f"({(host + nodes) / wall:.2f} cores); host busy in that time (all processes, kernel included): "
              f"{busy:.1f} CPU s ({busy / wall:.2f} cores); records not below this process or a node: "
              f"{got['unattributed']:.1f} CPU s; resources {sum(run.changes.values())}")
        if args.perf:
            print(f"perf: {ptotal:.1f} CPU s sampled on the whole host, {sum(pcpu.values()):.1f} of them in the "
                  "processes above (acct's ticks round a process under 10 ms down to 0: the perf column counts them)")
        print(f"load after: {loadavg()}")
        json_dump(args.json, {"machine": machine_line(), "args": vars(args), "rows": rows, "wall": run.seconds,
                              "busy": busy, "load_before": load0,
                              "records": recs, "roots": roots, "perf_total": ptotal, "providers": sampler.cmd,
                              "me": os.getpid()})
        log(f"N={n}: destroy")
        stack.destroy(parallel=WIDE_PARALLEL)
    finally:
        if stack is not None:
            stack.teardown()
        rm_tree(tmp)


if __name__ == "__main__":
    main()
