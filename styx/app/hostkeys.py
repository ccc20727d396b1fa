"""Pinned SSH host keys on styx's own connections (`styx ssh/exec/cp/dashboard/job`).

Every node's host key is in the stack's outputs (`nodes[].host_key`: made by styx and installed at
creation, or scanned once from an adopted host). styx writes them to one known_hosts file per cluster,
`$STYX_HOME/known_hosts/<cluster>`, each under the alias `styx-<cluster>-<node>` (`HostKeyAlias`: the
same line works whatever address the node is reached at), and runs ssh with `StrictHostKeyChecking=yes`:
a node that shows another key is refused before anything is sent to it, and styx says so and how to
accept a legitimately new key (`accept_hint`).

Benchmarks and end-to-end tests dial nodes by address: `PinnedHosts` gives them the same pinning (the
same file format and aliases, in a file of their own) for a node known by its address.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styx.app.engine import styx_home
from styx.app.project import EXIT_FAILED, StyxError

# What ssh (OpenSSH) and the command provider (Go's x/crypto/ssh) print when the key is not the pinned one.
_REFUSED = re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key mismatch")


def alias(cluster: str, node: str) -> str:
    return f"styx-{cluster}-{node}"


def known_hosts_path(cluster: str) -> Path:
    return styx_home() / "known_hosts" / cluster


def write_known_hosts(cluster: str, outputs: dict[str, Any], path: Path | None = None) -> Path:
    """The cluster's known_hosts file (`path`, default `known_hosts_path`), rewritten (atomically) from the
    stack's outputs. A node without a pinned key (a cluster launched by an earlier styx) is an error:
    `styx launch` pins them."""
    lines, missing = [], []
    for n in outputs.get("nodes") or []:
        key = n.get("host_key")
        if not key:
            missing.append(str(n.get("name")))
            continue
        lines.append(f"{alias(cluster, n['name'])} {key}\n")
    jump = outputs.get("ssh_jump") or {}
    if jump.get("name") == "bastion" and jump.get("host_key"):
        lines.append(f"{alias(cluster, 'bastion')} {jump['host_key']}\n")
    if missing:
        raise StyxError(f"no pinned SSH host key for node(s) {', '.join(missing)} of cluster {cluster} in the stack "
                        "(launched by an earlier styx); run `styx launch` once to pin every node's host key",
                        EXIT_FAILED)
    path = path or known_hosts_path(cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(lines)
    if not path.exists() or path.read_text() != text:
        # a temp file of its own per writer: styx drift and exec --all write it from several threads
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path


def ssh_options(cluster: str, node: str, known_hosts: str) -> list[str]:
    """ssh options that accept only the node's pinned key."""
    return ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"HostKeyAlias={alias(cluster, node)}",
            "-o", "UpdateHostKeys=no"]


@dataclass(frozen=True)
class PinnedHosts:
    """The pinned host keys of a cluster's nodes for a caller that knows a node by its address (the
    benchmarks, the end-to-end tests): the known_hosts file and which node each address is."""

    cluster: str
    known_hosts: Path
    nodes: dict[str, str]  # address (host, private_ip) -> node name

    @classmethod
    def write(cls, cluster: str, outputs: dict[str, Any], path: Path) -> PinnedHosts:
        """`path` written from `outputs` (as write_known_hosts does: every node needs its `host_key`)."""
        write_known_hosts(cluster, outputs, path)
        nodes: dict[str, str] = {}
        for n in outputs.get("nodes") or []:
            for address in (n.get("host"), n.get("private_ip")):
                if address:
                    nodes.setdefault(address, n["name"])
        return cls(cluster, path, nodes)

    def options(self, address: str) -> list[str]:
        """ssh options that accept only the pinned key of the node at `address`."""
        node = self.nodes.get(address)
        if node is None:
            raise KeyError(f"{address} is not an address of a node of cluster {self.cluster}: no host key to pin")
        return ssh_options(self.cluster, node, str(self.known_hosts))


def refused(text: str | None) -> bool:
    """Whether ssh's (or the provider's) error says the host key was not the pinned one."""
    return bool(text) and bool(_REFUSED.search(text or ""))


def accept_hint(cluster: str, node: str, outputs: dict[str, Any]) -> str:
    """What to do about a node that showed another host key."""
    urn = (outputs.get("host_key_urns") or {}).get(node)
    source = next((n.get("host_key_source") for n in outputs.get("nodes") or [] if n.get("name") == node), None)
    if urn:
        parts = urn.split(":")
        stack = parts[2] if len(parts) > 3 and parts[0] == "urn" else "<stack>"  # urn:pulumi:STACK::...
        what = ("scan its key again (trust on first use)" if source == "first use"
                else "replace the machine (a new one that serves the styx host key again; its setup re-runs)")
        how = f"pulumi up -s {stack} --replace '{urn}'"
    else:
        what, how = "replace it", "pulumi up --replace <the node's machine URN>"
    return (f"styx: node {node} of cluster {cluster} did not present its pinned SSH host key: refused, nothing "
            "was sent to it. Someone on the path may be impersonating the node. If its key changed legitimately "
            f"(rebuilt or re-keyed outside styx), {what}: {how}")
