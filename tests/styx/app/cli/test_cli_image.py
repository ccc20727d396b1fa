"""`styx image create|list|delete` against fake engines (the clusters' and the image stacks'): the clear
errors (a bad name, a name taken, an unknown node, a stack not launched or unknown, a cloud without
images), the list, and a delete of an unknown image."""

from __future__ import annotations

import json

import pytest
from cli_fakes import FakeEngine, FakeStack, local_cluster
from click.testing import CliRunner

from styx.app import images
from styx.app.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def image_engine(monkeypatch):
    fe = FakeEngine()
    monkeypatch.setattr(images, "image_engine", lambda backend: fe)
    return fe


def _stack(engine: FakeEngine, name: str, cluster: dict | None, nodes: list[str], state: list | None = None):
    st = FakeStack(engine, name)
    st._cluster = cluster
    st._outputs = {"nodes": [{"name": n} for n in nodes]} if nodes else {}
    st.deployment = lambda: {"resources": state or []}  # type: ignore[method-assign]
    engine.stacks[name] = st
    return st


def _sandbox(name: str, node: str) -> dict:
    return {"type": "command:local:Command", "urn": f"urn:pulumi:x::styx::t::{name}-{node}-sandbox", "outputs": {}}


def test_create_names_what_is_wrong(fake_engine, image_engine):
    c = local_cluster()
    _stack(fake_engine, "demo", c, ["head", "worker-0"], [_sandbox(c["name"], "head")])
    _stack(fake_engine, "empty", c, [])
    r = run("image", "create", "--name", "Ray_Base", "-s", "demo")
    assert r.exit_code == 2 and "--name: 'Ray_Base' is not an image name (allowed: lowercase" in r.output
    r = run("image", "create", "--name", "ray-base", "--node", "worker-9", "-s", "demo")
    assert r.exit_code == 2 and "--node: no node 'worker-9' in stack 'demo' (nodes: head, worker-0)" in r.output
    r = run("image", "create", "--name", "ray-base", "-s", "empty")
    assert r.exit_code == 1 and "stack 'empty' is not launched (no nodes): run `styx launch` first" in r.output
    r = run("image", "create", "--name", "ray-base", "-s", "nope")
    assert r.exit_code == 1 and "no cluster (stack) named 'nope'" in r.output
    # the node is listed but its machine is not in the state (a launch that failed before it)
    r = run("image", "create", "--name", "ray-base", "--node", "worker-0", "-s", "demo")
    assert r.exit_code == 1 and "node worker-0 of stack 'demo':" in r.output and "demo-worker-0-sandbox" in r.output
    _stack(fake_engine, "lab", {"name": "lab", "cloud": "ssh", "head": {"host": {"host": "192.0.2.1"}}}, ["head"])
    r = run("image", "create", "--name", "ray-base", "-s", "lab")
    assert r.exit_code == 2 and "cloud ssh cannot make images of its nodes" in r.output


def test_create_refuses_a_name_taken(fake_engine, image_engine):
    _stack(fake_engine, "demo", local_cluster(), ["head"])
    taken = _stack(image_engine, "ray-base", None, [])
    taken._outputs = {"image": "ray-base", "stack": "old", "node": "head"}
    r = run("image", "create", "--name", "ray-base", "-s", "demo", "--json")
    assert r.exit_code == 2
    body = json.loads(r.stdout)
    assert body["ok"] is False and "image 'ray-base' exists already (made from old/head)" in body["error"]


def test_the_spec_an_image_stack_gets(fake_engine):
    c = local_cluster()
    _stack(fake_engine, "demo", c, ["head"], [_sandbox(c["name"], "head")])
    spec = images.source_spec("ray-base", "head", "demo", None)
    assert spec["name"] == "ray-base" and spec["cloud"] == "local" and spec["stack"] == "demo"
    assert spec["source"]["cluster"] == c["name"] and spec["source"]["node"] == "head"
    assert spec["created"].endswith("Z")


def test_list_and_delete(image_engine):
    st = _stack(image_engine, "ray-base", None, [])
    st._outputs = {"name": "ray-base", "image": "ray-base", "cloud": "local", "stack": "demo", "node": "head",
                   "created": "2026-12-04T18:00:00Z", "cluster": "demo"}
    r = run("image", "list", "--json")
    assert r.exit_code == 0
    (rec,) = json.loads(r.stdout)["images"]
    assert rec["image"] == "ray-base" and rec["stack"] == "demo"
    assert "ray-base  local  ray-base  from demo/head" in run("image", "list").output
    r = run("image", "delete", "other")
    assert r.exit_code == 2 and "no image 'other' (images: ray-base)" in r.output
    r = run("image", "delete", "ray-base", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["deleted"] is True
    assert "ray-base" not in image_engine.stacks
    assert run("image", "list").output.strip() == "no images"


def _aws(fake_engine, setup: dict) -> None:
    cluster = {"name": "lab", "cloud": "aws", "region": "us-east-1", "setup": setup}
    state = [{"type": "aws:ec2/instance:Instance", "urn": "urn:pulumi:x::styx::t::lab-head", "outputs": {"id": "i-1"}}]
    _stack(fake_engine, "lab", cluster, ["head"], state)


def test_a_cloud_image_with_the_clusters_secrets_needs_include_secrets(fake_engine, image_engine):
    _aws(fake_engine, {"secret_env": {"HF_TOKEN": "secure:x"}})
    r = run("image", "create", "--name", "ray-base", "-s", "lab")
    assert r.exit_code == 2
    assert "--include-secrets: an image on cloud aws is node head's disk as it is" in r.output
    assert "secret env HF_TOKEN, the Ray auth token" in r.output and "secure:x" not in r.output
    spec = images.source_spec("ray-base", "head", "lab", None, include_secrets=True)
    assert spec["source"]["instance_id"] == "i-1"


def test_a_cloud_image_without_secrets_and_a_local_one_need_no_flag(fake_engine):
    _aws(fake_engine, {"ray": {"auth": "none"}})
    assert images.source_spec("ray-base", "head", "lab", None)["cloud"] == "aws"
    c = local_cluster()
    c.setdefault("setup", {})["secret_env"] = {"HF_TOKEN": "secure:x"}  # sandboxctl strips /etc/styx
    _stack(fake_engine, "demo", c, ["head"], [_sandbox(c["name"], "head")])
    assert images.source_spec("ray-base", "head", "demo", None)["cloud"] == "local"
