"""Pinned SSH host keys under Pulumi mocks: one generated key per node (a secret, installed by the
backend), `hostKey` on every SSH connection, trust on first use for adopted hosts, the outputs."""

from __future__ import annotations

import pytest
from mocking import Secret, is_secret_input, local_cluster, run_program

from styx.components.keys import parse_keyscan

MOCK_PUBLIC = "ssh-ed25519 AAAAMOCK"  # tests/mocking.py: every ssh-keygen answers this key
SSH_TYPES = ("command:remote:Command", "command:remote:CopyToRemote")


def _ssh_resources(rec):
    return [r for r in rec.resources if r.typ in SSH_TYPES]


def test_every_connection_pins_the_nodes_host_key(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    c = local_cluster()
    c["setup"]["file_mounts"] = [{"local": "src", "remote": "/opt/app/src"}]
    rec = run_program(c, tmp_path)
    ssh = _ssh_resources(rec)
    assert {r.typ for r in ssh} == set(SSH_TYPES), "phases and the file mounts' copy"
    for r in ssh:
        assert r.inputs["connection"]["hostKey"] == MOCK_PUBLIC, r.name


def test_one_generated_host_key_per_node_installed_by_the_sandbox_from_stdin():
    rec = run_program(local_cluster())
    gens = [r.name for r in rec.of_type("command:local:Command") if r.name.endswith("-host-key")]
    assert sorted(gens) == ["demo-head-host-key", "demo-worker-0-host-key", "demo-worker-1-host-key"]  # any order
    for node in ("head", "worker-0", "worker-1"):
        sb = rec.named(f"demo-{node}-sandbox")
        assert is_secret_input(sb.raw["stdin"]), "the private host key travels as a secret"
        assert sb.inputs["stdin"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert "PRIVATE KEY" not in sb.inputs["create"] and "STYX_SB_HOST_KEY=stdin" in sb.inputs["create"], \
            "never in the command text"
        assert len(sb.inputs["triggers"]) == 5, "not a trigger: a new host key is an update, not a new sandbox"
    gen = rec.named("demo-head-host-key")
    assert gen.inputs["logging"] == "none"


def test_outputs_carry_public_keys_only():
    rec = run_program(local_cluster())
    nodes = rec.outputs["nodes"]
    assert [n["host_key"] for n in nodes] == [MOCK_PUBLIC] * 3
    assert {n["host_key_source"] for n in nodes} == {"generated"}
    assert "PRIVATE" not in str(rec.outputs["nodes"])
    urns = rec.outputs["host_key_urns"]
    assert set(urns) == {"head", "worker-0", "worker-1"}
    assert urns["worker-0"].endswith("::demo-worker-0-sandbox"), "a generated key is accepted by a new machine"
    assert not isinstance(rec.outputs["nodes"], Secret)


def test_adopted_hosts_are_scanned_once_then_pinned():
    rec = run_program({"name": "adopt", "cloud": "ssh", "head": {"host": "192.0.2.10"},
                       "workers": [{"hosts": [{"host": "192.0.2.11", "port": 2222}]}]})
    scan = rec.named("adopt-worker-0-host-key-scan")
    assert "ssh-keyscan" in scan.inputs["create"] and "-p 2222 192.0.2.11" in scan.inputs["create"]
    assert scan.inputs["triggers"] == ["192.0.2.11", 2222], "a new address is a new first use"
    assert not [r for r in rec.of_type("command:local:Command") if r.name.endswith("-host-key")], \
        "styx installs no key on an adopted host"
    for r in _ssh_resources(rec):
        assert r.inputs["connection"]["hostKey"] == "ssh-ed25519 AAAASCANNED", r.name
    nodes = {n["name"]: n for n in rec.outputs["nodes"]}
    assert nodes["worker-0"]["host_key_source"] == "first use"
    assert rec.outputs["host_key_urns"]["worker-0"].endswith("::adopt-worker-0-host-key-scan")


@pytest.mark.parametrize(("text", "key"), [
    ("h ssh-rsa AAAR\nh ssh-ed25519 AAAE\n", "ssh-ed25519 AAAE"),
    ("# 10.0.0.1:22 SSH-2.0-OpenSSH\n[h]:2222 ecdsa-sha2-nistp256 AAAC\n", "ecdsa-sha2-nistp256 AAAC"),
])
def test_parse_keyscan_prefers_ed25519(text, key):
    assert parse_keyscan(text) == key


def test_parse_keyscan_without_a_key_fails():
    with pytest.raises(ValueError, match="no host key"):
        parse_keyscan("# nothing\n")


# --------------------------------------------------------------------------- private nodes (ssh.jump)


def test_jump_head_workers_through_the_heads_pinned_connection():
    rec = run_program(local_cluster(ssh={"jump": "head"}))
    for r in _ssh_resources(rec):
        conn = r.inputs["connection"]
        if r.name.startswith("demo-head-"):
            assert "proxy" not in conn, r.name
            continue
        assert conn["host"].startswith("10.77.0.1"), "the worker's own (private) address, dialed from the head"
        proxy = conn["proxy"]
        assert proxy["host"] == "10.77.0.2" and proxy["port"] == 22 and proxy["user"] == "root", r.name
        assert proxy["hostKey"] == MOCK_PUBLIC and proxy["privateKey"].startswith("-----BEGIN"), r.name
        assert proxy["dialErrorLimit"] == (-1 if r.name.endswith("wait_ssh") else 10), r.name
    for node, private in (("head", "0"), ("worker-0", "1"), ("worker-1", "1")):
        assert f"STYX_SB_PRIVATE={private}" in rec.named(f"demo-{node}-sandbox").inputs["create"]
    nodes = {n["name"]: n for n in rec.outputs["nodes"]}
    assert "private" not in nodes["head"] and nodes["worker-1"]["private"] is True
    assert rec.outputs["ssh_jump"] == {"name": "head", "host": "10.77.0.2", "port": 22, "user": "root",
                                       "host_key": MOCK_PUBLIC}


def test_jump_bastion_every_node_through_it_its_key_scanned_once():
    rec = run_program(local_cluster(ssh={"jump": "ops@bastion.example.com:2200"}))
    scan = rec.named("demo-bastion-host-key-scan")
    assert "-p 2200 bastion.example.com" in scan.inputs["create"]
    for r in _ssh_resources(rec):
        proxy = r.inputs["connection"]["proxy"]
        assert (proxy["host"], proxy["port"], proxy["user"]) == ("bastion.example.com", 2200, "ops"), r.name
        assert proxy["hostKey"] == "ssh-ed25519 AAAASCANNED", r.name
    assert all(n["private"] for n in rec.outputs["nodes"])
    assert rec.outputs["host_key_urns"]["bastion"].endswith("::demo-bastion-host-key-scan")
    # the printed tunnel to the (private) head goes through the bastion too
    assert " -J ops@bastion.example.com:2200 -p 22 root@10.77.0." in rec.outputs["dashboard"]


@pytest.mark.parametrize(("cluster", "needle"), [
    ({"name": "j", "cloud": "local", "ssh": {"jump": "the head"}},
     "styx:cluster.ssh.jump: 'the head' is not allowed: allowed: head (workers reached through the head), "
     "or a bastion [USER@]HOST[:PORT]"),
    ({"name": "j", "cloud": "ssh", "head": {"host": "192.0.2.1"}, "ssh": {"jump": "head"}},
     "styx:cluster.ssh.jump: not supported for cloud ssh yet"),
])
def test_bad_jump_is_refused_before_anything(cluster, needle):
    import pulumi

    with pytest.raises(pulumi.RunError) as e:
        run_program(cluster)
    assert needle in str(e.value)
