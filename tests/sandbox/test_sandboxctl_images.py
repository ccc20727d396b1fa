"""sandboxctl.sh image-create / image-delete on a node root made by hand (no namespaces or mounts):
what an image keeps, what it never holds, and the clear refusals."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sbctl_helpers import SANDBOXCTL, clean_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxctl image-create needs root")

SECRETS = [
    "root/.ssh/authorized_keys", "home/ubuntu/.ssh/authorized_keys", "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_ecdsa_key.pub", "etc/styx/env.sh", "etc/styx/ray-auth-token", "etc/styx/ray-auth.env",
    "var/log/styx/env_vars.log", "tmp/ray/session_latest/logs/raylet.out", "var/tmp/spill",
    "var/lib/styx/generations/ray", "var/lib/styx/ray.started", "var/lib/styx/file_sync/manifest",
    "root/.cache/uv/wheel", "root/.bash_history", "data/synced/train.json", "work/notes.txt",
]
KEPT = ["opt/styx/venv/bin/ray", "usr/bin/htop", "var/lib/styx/lib/abc.sh", "etc/ssh/sshd_config",
        "etc/hostname", "var/log/dpkg.log"]


def _node(state: Path, cluster: str = "iimg", node: str = "head") -> Path:
    merged = state / cluster / node / "merged"
    for rel in SECRETS + KEPT:
        p = merged / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content of {rel}\n")
    (merged / "opt/styx/venv/bin/ray").chmod(0o755)
    (state / cluster / node / "node.env").write_text(f"STYX_SB_CLUSTER={cluster}\nSTYX_SB_NODE={node}\n"
                                                     "ROOTFS=/var/cache/styx/base/x/rootfs\n")
    return merged


def _ctl(sub: str, tmp: Path, **env: str) -> subprocess.CompletedProcess:
    e = clean_env(STYX_SB_STATE_DIR=str(tmp / "state"), STYX_CACHE_DIR=str(tmp / "cache"),
                  STYX_SB_LOCK_DIR=str(tmp / "lock"), **env)
    return subprocess.run([str(SANDBOXCTL), sub], env=e, capture_output=True, text=True, timeout=120)


def test_image_create_keeps_the_installs_and_strips_what_belongs_to_the_node(tmp_path):
    _node(tmp_path / "state")
    p = _ctl("image-create", tmp_path, STYX_SB_CLUSTER="iimg", STYX_SB_NODE="head", STYX_SB_IMAGE="img-a",
             STYX_SB_IMAGE_STRIP="/data/synced\n/work")
    assert p.returncode == 0, p.stderr
    d = tmp_path / "cache" / "images" / "img-a"
    assert p.stdout.strip() == str(d)
    root = d / "rootfs"
    for rel in KEPT:
        assert (root / rel).read_text() == f"content of {rel}\n", rel
    assert os.access(root / "opt/styx/venv/bin/ray", os.X_OK)
    for rel in SECRETS:
        assert not (root / rel).exists(), rel
    # the folders stay (node-up writes the new node's key into /root/.ssh), emptied
    assert (root / "root/.ssh").is_dir() and oct((root / "root/.ssh").stat().st_mode & 0o7777) == "0o700"
    assert (root / "tmp").is_dir() and oct((root / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert list((root / "etc/styx").iterdir()) == []
    manifest = (d / "manifest").read_text()
    assert "cluster=iimg\nnode=head\n" in manifest and "base=/var/cache/styx/base/x/rootfs" in manifest
    assert (d / ".complete").exists()


def test_image_create_refuses_a_taken_name_an_unknown_node_and_a_bad_name(tmp_path):
    _node(tmp_path / "state")
    env = {"STYX_SB_CLUSTER": "iimg", "STYX_SB_NODE": "head", "STYX_SB_IMAGE": "img-b"}
    assert _ctl("image-create", tmp_path, **env).returncode == 0
    again = _ctl("image-create", tmp_path, **env)
    assert again.returncode == 2 and "image 'img-b' already exists" in again.stderr
    gone = _ctl("image-create", tmp_path, **{**env, "STYX_SB_NODE": "worker-9", "STYX_SB_IMAGE": "img-c"})
    assert gone.returncode == 1 and "node worker-9 of cluster iimg has no root here" in gone.stderr
    bad = _ctl("image-create", tmp_path, **{**env, "STYX_SB_IMAGE": "Bad_Name"})
    assert bad.returncode == 2 and "invalid image name 'Bad_Name'" in bad.stderr
    rel = _ctl("image-create", tmp_path, **{**env, "STYX_SB_IMAGE": "img-d", "STYX_SB_IMAGE_STRIP": "data"})
    assert rel.returncode == 2 and "STYX_SB_IMAGE_STRIP: 'data' is not an absolute path" in rel.stderr


def test_image_delete_refuses_while_a_node_sits_on_it_then_removes_it(tmp_path):
    _node(tmp_path / "state")
    assert _ctl("image-create", tmp_path, STYX_SB_CLUSTER="iimg", STYX_SB_NODE="head",
                STYX_SB_IMAGE="img-e").returncode == 0
    d = tmp_path / "cache" / "images" / "img-e"
    user = tmp_path / "state" / "iother" / "head"
    user.mkdir(parents=True)
    (user / "node.env").write_text(f"STYX_SB_NODE=head\nROOTFS={d}/rootfs\n")
    busy = _ctl("image-delete", tmp_path, STYX_SB_IMAGE="img-e")
    assert busy.returncode == 1 and "image img-e is the root of running nodes (iother/head" in busy.stderr
    assert d.exists()
    (user / "node.env").unlink()
    assert _ctl("image-delete", tmp_path, STYX_SB_IMAGE="img-e").returncode == 0
    assert not d.exists()
    again = _ctl("image-delete", tmp_path, STYX_SB_IMAGE="img-e")
    assert again.returncode == 0 and "nothing to do" in again.stderr

