"""`toolchain/run-k8s.sh down` for real, inside a network namespace of its own (iptables rules are per
namespace, so the host's stay untouched): on no cluster it is a clean no-op, and what a killed
kubelet, kube-proxy and CNI leave in iptables (jumps with quoted comments, which a word split of
`iptables -S` breaks) is removed, the host-wide rules of others kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.sandbox

# what a kubelet/kube-proxy and CNI's bridge plugin leave behind (their own comments, quotes included)
LEFT = [
    "-t filter -N KUBE-FIREWALL",
    "-t filter -N KUBE-NODEPORTS",
    "-t filter -A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
    "-t filter -A OUTPUT -j KUBE-FIREWALL",
    "-t filter -A INPUT -j KUBE-FIREWALL",
    "-t nat -N KUBE-KUBELET-CANARY",
    "-t nat -N KUBE-POSTROUTING",
    "-t nat -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
    "-t mangle -N KUBE-KUBELET-CANARY",
    "-t nat -N CNI-0123456789abcdef01234567",
    "-t nat -A POSTROUTING -s 172.31.0.7/32 -m comment --comment "
    "\"name: \\\"styx-k8s\\\" id: \\\"0f0f\\\"\" -j CNI-0123456789abcdef01234567",
]
KEEP = "-t nat -A POSTROUTING -s 10.111.0.0/24 -m comment --comment \"a rule of another project\" -j MASQUERADE"


@pytest.fixture
def netns():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        pytest.skip("needs root, ip and iptables (a network namespace of its own)")
    name = f"styxk8sdown{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ns_sh(ns: str, script: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, "bash", "-c", script], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False, timeout=120)


def rules(ns: str) -> str:
    return ns_sh(ns, "for t in filter nat mangle; do echo \"== $t\"; iptables -t $t -S; done").stdout


def down(ns: str, tmp: Path) -> subprocess.CompletedProcess:
    """`run-k8s.sh down` with a state dir, STYX_HOME and toolchain dir of its own (no Go on PATH:
    install-k8s.sh gives up at once, so no kube-proxy --cleanup does the work for it)."""
    return ns_sh(ns, f"bash {ROOT}/toolchain/run-k8s.sh down", STYX_HOME=str(tmp / "home"),
                 STYX_TOOLCHAIN_DIR=str(tmp / "toolchain"), STYX_K8S_STATE=str(tmp / "state"),
                 PATH="/usr/sbin:/usr/bin:/sbin:/bin")


def test_down_on_no_cluster_is_a_clean_no_op(netns, tmp_path):
    before = rules(netns)
    r = down(netns, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "cluster down" in r.stderr
    assert rules(netns) == before


def test_down_removes_what_the_kubelet_and_cni_left_even_with_quoted_comments(netns, tmp_path):
    script = "set -e\n" + "\n".join(f"iptables {r}" for r in [*LEFT, KEEP])
    made = ns_sh(netns, script)
    assert made.returncode == 0, made.stderr
    assert "KUBE-NODEPORTS" in rules(netns) and "CNI-0123456789abcdef01234567" in rules(netns)
    r = down(netns, tmp_path)
    assert r.returncode == 0, r.stderr
    left = rules(netns)
    assert "KUBE-" not in left and "CNI-" not in left, left
    assert "a rule of another project" in left and "MASQUERADE" in left, left
