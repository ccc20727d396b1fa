"""Cloud-neutral ingress model and the two network invariants.

Each cloud module turns its resource properties into `Ingress` rules (one registry entry per
resource type, see INGRESS_EXTRACTORS); the checks here never look at a cloud's property names.

Invariants:
- world ingress: a rule whose source is the whole internet (0.0.0.0/0, ::/0) may only open TCP 22.
  styx only creates such a rule when the user lists 0.0.0.0/0 in ssh_cidrs, and then for SSH only;
- Ray ports: no rule lets a non-internal source (anything outside RFC 1918, 100.64/10 and fc00::/7)
  reach a Ray port, whatever the protocol or port range (8000-65535 covers 8265 and 10001).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

ALL_PORTS = ((0, 65535),)
SSH = ((22, 22),)

# Ray's fixed ports (GCS, dashboard, client, dashboard agent) and its default worker port range.
DEFAULT_RAY_PORTS: tuple[str, ...] = ("6379", "8265", "10001", "52365", "10002-19999")

INTERNAL_NETS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


@dataclass(frozen=True)
class Ingress:
    """One way into a machine: who (CIDRs) may reach what (protocol + inclusive port ranges)."""

    where: str  # e.g. "ingress[0]", for messages
    sources: tuple[str, ...]  # CIDRs; rules sourced from tags/groups only have none
    protocol: str  # "tcp" | "udp" | "icmp" | "all" | another protocol name/number
    ports: tuple[tuple[int, int], ...]  # () when the protocol has no ports (icmp)

    def describe(self) -> str:
        if self.protocol == "all":
            return "all traffic"
        if not self.ports:
            return self.protocol
        return self.protocol + "/" + ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ports)


# resource type -> props -> ingress rules. Cloud modules register here (aws.py, gcp.py).
INGRESS_EXTRACTORS: dict[str, Callable[[Mapping], list[Ingress]]] = {}


def network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError:
        return None


def is_world(cidr: str) -> bool:
    net = network(cidr)
    return net is not None and net.prefixlen == 0


def is_internal(cidr: str) -> bool:
    """Inside private address space (a peered VPC, a VPN). Unparseable sources count as not internal."""
    net = network(cidr)
    if net is None:
        return False
    return any(net.version == i.version and net.subnet_of(i) for i in INTERNAL_NETS)  # type: ignore[arg-type]


def normalize_protocol(p: object) -> str:
    s = str(p if p is not None else "all").strip().lower()
    return {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "icmpv6": "icmpv6"}.get(s, s)


def has_ports(protocol: str) -> bool:
    return protocol in ("tcp", "udp", "sctp", "all")


def port_range(from_port: object, to_port: object, protocol: str) -> tuple[tuple[int, int], ...]:
    """AWS-style from/to ports; -1, missing or the "all" protocol mean every port."""
    if protocol == "all":
        return ALL_PORTS
    if not has_ports(protocol):
        return ()
    try:
        a = int(from_port)  # type: ignore[arg-type]
        b = int(to_port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ALL_PORTS
    if a < 0 or b < 0:
        return ALL_PORTS
    return ((min(a, b), max(a, b)),)


def parse_port_specs(specs: Iterable[object]) -> tuple[tuple[int, int], ...]:
    """["22", "8000-9000", 443] -> ((22, 22), (8000, 9000), (443, 443)); unparseable -> every port."""
    out: list[tuple[int, int]] = []
    for s in specs:
        if isinstance(s, (int, float)) and not isinstance(s, bool):  # JSON config numbers may arrive as floats
            out.append((int(s), int(s)))
            continue
        text = str(s).strip()
        try:
            if "-" in text:
                a, b = (int(x) for x in text.split("-", 1))
            else:
                a = b = int(text)
        except ValueError:
            return ALL_PORTS
        out.append((min(a, b), max(a, b)))
    return tuple(out)


def covers(ranges: Sequence[tuple[int, int]], lo: int, hi: int) -> bool:
    """Does any range overlap [lo, hi]?"""
    return any(a <= hi and lo <= b for a, b in ranges)


def world_ingress_problems(rule: Ingress) -> list[str]:
    out = []
    for src in rule.sources:
        if is_world(src) and not (rule.protocol == "tcp" and tuple(rule.ports) == SSH):
            out.append(f"{rule.where}: {src} (the whole internet) may only reach tcp/22, but this rule opens "
                       f"{rule.describe()}")
    return out


def ray_port_problems(rule: Ingress, ray_ports: Iterable[object] = DEFAULT_RAY_PORTS) -> list[str]:
    if not has_ports(rule.protocol):
        return []
    out = []
    ranges = parse_port_specs(ray_ports)
    for src in rule.sources:
        if is_internal(src):
            continue
        hit = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges if covers(rule.ports, a, b)]
        if hit:
            out.append(f"{rule.where}: {src} is outside the private ranges and this rule ({rule.describe()}) "
                       f"reaches Ray port(s) {', '.join(hit)}; Ray is only reachable between the cluster's nodes "
                       "and through SSH tunnels")
    return out


def as_list(v: object) -> list:
    """A property that may be missing, one value, or a list (policy props are Mapping/Sequence proxies)."""
    if v is None:
        return []
    if isinstance(v, (str, bytes, Mapping)):
        return [v]
    if isinstance(v, Sequence):
        return list(v)
    return [v]
