"""styx's own ssh pins each node's host key: a known_hosts file per cluster from the stack's outputs."""

from __future__ import annotations

import os
import stat

import pytest

from styx.app import hostkeys, remote
from styx.app.project import StyxError

URN = "urn:pulumi:hk-stack::styx::styx:index:Cluster$styx:index:Node$command:local:Command::hk1-worker-0-sandbox"
OUTPUTS = {
    "nodes": [
        {"name": "head", "role": "head", "host": "10.91.0.2", "private_ip": "10.91.0.2",
         "host_key": "ssh-ed25519 AAAAHEAD", "host_key_source": "generated"},
        {"name": "worker-0", "role": "worker", "host": "10.91.0.10", "private_ip": "10.91.0.10",
         "host_key": "ssh-ed25519 AAAAW0", "host_key_source": "generated"},
    ],
    "ssh_user": "root",
    "ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nX\n-----END OPENSSH PRIVATE KEY-----\n",
    "host_key_urns": {"worker-0": URN},
}
CLUSTER = {"name": "hk1", "cloud": "local"}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STYX_HOME", str(tmp_path))
    return tmp_path


def test_known_hosts_file_per_cluster_and_strict_checking(home):
    t = remote.target_for(OUTPUTS, CLUSTER, "worker-0")
    path = home / "known_hosts" / "hk1"
    assert t.known_hosts == str(path)
    assert path.read_text() == "styx-hk1-head ssh-ed25519 AAAAHEAD\nstyx-hk1-worker-0 ssh-ed25519 AAAAW0\n"
    argv = remote.ssh_argv(t, "/k")
    joined = " ".join(argv)
    assert "StrictHostKeyChecking=yes" in joined and "StrictHostKeyChecking=no" not in joined
    assert f"UserKnownHostsFile={path}" in joined and "HostKeyAlias=styx-hk1-worker-0" in joined
    assert "UserKnownHostsFile=/dev/null" not in joined


def test_a_node_without_a_pinned_key_is_refused():
    old = {**OUTPUTS, "nodes": [{**n} for n in OUTPUTS["nodes"]]}
    del old["nodes"][1]["host_key"]
    with pytest.raises(StyxError, match=r"no pinned SSH host key for node\(s\) worker-0 .*run `styx launch`"):
        remote.target_for(old, CLUSTER, "head")


def test_accept_hint_names_the_node_and_the_replace_command():
    h = hostkeys.accept_hint("hk1", "worker-0", OUTPUTS)
    assert "node worker-0 of cluster hk1 did not present its pinned SSH host key: refused" in h
    assert f"pulumi up -s hk-stack --replace '{URN}'" in h
    assert hostkeys.refused("Host key verification failed.\n")
    assert hostkeys.refused("ssh: handshake failed: ssh: host key mismatch")
    assert not hostkeys.refused("Connection refused")


def test_run_on_adds_the_hint_when_ssh_refuses_the_key(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Host key verification failed.' >&2\nexit 255\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    r = remote.run_on(remote.target_for(OUTPUTS, CLUSTER, "worker-0"), "true")
    assert r.exit_code == 255
    assert "node worker-0 of cluster hk1 did not present its pinned SSH host key" in r.stderr


def test_the_known_hosts_file_is_written_safely_from_many_threads(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from styx.app import hostkeys

    monkeypatch.setenv("STYX_HOME", str(tmp_path))
    outs = [{"nodes": [{"name": f"n{i}", "host_key": f"ssh-ed25519 AAAA{j}"} for i in range(3)]} for j in range(8)]
    with ThreadPoolExecutor(8) as pool:  # styx drift dials every node at once: each writes the file
        paths = list(pool.map(lambda o: hostkeys.write_known_hosts("c", o), outs * 4))
    assert len(set(paths)) == 1 and paths[0].read_text().count("\n") == 3
    assert [p.name for p in paths[0].parent.iterdir()] == ["c"]  # no temp file left behind


def test_pinned_hosts_pin_a_node_known_by_its_address(tmp_path, home):
    pins = hostkeys.PinnedHosts.write("hk1", OUTPUTS, tmp_path / "bench" / "known_hosts")
    assert pins.known_hosts.read_text() == "styx-hk1-head ssh-ed25519 AAAAHEAD\nstyx-hk1-worker-0 ssh-ed25519 AAAAW0\n"
    assert not (home / "known_hosts").exists()  # not styx's own file
    joined = " ".join(pins.options("10.91.0.10"))
    assert "StrictHostKeyChecking=yes" in joined and "HostKeyAlias=styx-hk1-worker-0" in joined
    assert f"UserKnownHostsFile={pins.known_hosts}" in joined
    with pytest.raises(KeyError, match=r"10\.91\.0\.99 is not an address of a node of cluster hk1"):
        pins.options("10.91.0.99")
