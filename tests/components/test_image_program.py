"""Images under Pulumi mocks: the image stack's program (components/image.py) on each cloud that makes them
(local: `sandboxctl image-create`, AWS: `aws.ec2.AmiFromInstance`, GCP: a snapshot of the boot disk and a
`gcp.compute.Image` of it), what each backend reads from the cluster's state (`image_source`), and a node's
`image` on cloud local (the sandbox's root, its trigger, the checks)."""

from __future__ import annotations

import asyncio
import json

import mocking
import pulumi
import pytest

from styx.components.backends import get_backend, validate
from styx.components.backends.base import Feature
from styx.model.config import ConfigError, parse_cluster

SB = "command:local:Command"
AMI = "aws:ec2/amiFromInstance:AmiFromInstance"
SNAP = "gcp:compute/snapshot:Snapshot"
GIMG = "gcp:compute/image:Image"


def run_image(spec: dict) -> mocking.Recorder:
    """The image stack's program once under mocks, with `styx:image` = spec."""
    from components.image import build

    rec = mocking.Recorder()
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(mocking.make_mocks(rec), project="styx-images", stack=spec["name"], preview=False)
    pulumi.runtime.set_all_config({"styx:image": json.dumps(spec)})
    exported: dict = {}
    real = pulumi.export
    pulumi.export = lambda k, v: exported.__setitem__(k, v)  # type: ignore[assignment]
    try:
        build(pulumi.Config("styx"))
        loop = asyncio.get_event_loop()
        rec.outputs = {k: mocking._resolve(loop, v) for k, v in exported.items()}
        mocking._drain(loop)
    finally:
        pulumi.export = real  # type: ignore[assignment]
    return rec


def _spec(cloud: str, source: dict) -> dict:
    return {"name": "ray-base", "cloud": cloud, "cluster": "demo", "stack": "demo", "node": "head",
            "created": "2026-12-04T18:00:00Z", "source": source}


def test_every_cloud_with_machines_to_copy_makes_images_and_the_others_say_so():
    assert all(Feature.IMAGES in get_backend(c).features for c in ("local", "aws", "gcp"))
    for cloud in ("ssh", "kubernetes"):
        with pytest.raises(NotImplementedError, match=f"cloud {cloud} cannot make images"):
            get_backend(cloud).image_source({"name": "x", "cloud": cloud}, "head", [])


def test_local_image_is_one_command_whose_delete_removes_it():
    src = {"cluster": "demo", "node": "head", "state_dir": "/var/lib/styx/sandbox", "cache_dir": "/var/cache/styx",
           "strip": ["/data", "/work"]}
    rec = run_image(_spec("local", src))
    (cmd,) = rec.of_type(SB)
    assert cmd.name == "image-ray-base"
    assert cmd.inputs["create"].endswith("sandboxctl.sh image-create")
    for part in ("STYX_SB_CLUSTER=demo", "STYX_SB_NODE=head", "STYX_SB_IMAGE=ray-base",
                 "STYX_CACHE_DIR=/var/cache/styx", "STYX_SB_IMAGE_STRIP=", "/data"):
        assert part in cmd.inputs["create"], part
    delete = cmd.inputs["delete"]
    assert delete.endswith("sandboxctl.sh image-delete") and "STYX_SB_IMAGE=ray-base" in delete
    assert rec.outputs["image"] == "ray-base" and rec.outputs["stack"] == "demo" and rec.outputs["node"] == "head"


def test_aws_image_is_an_ami_from_the_nodes_instance():
    rec = run_image(_spec("aws", {"instance_id": "i-0abc", "region": "us-east-1", "cluster": "demo",
                                  "node": "head"}))
    (ami,) = rec.of_type(AMI)
    assert ami.inputs["sourceInstanceId"] == "i-0abc" and ami.inputs["region"] == "us-east-1"
    assert ami.inputs["snapshotWithoutReboot"] is False  # AWS stops the instance: a consistent disk
    assert ami.inputs["name"] == "styx-ray-base"
    assert ami.inputs["tags"] == {"Name": "styx-ray-base", "styx:image": "ray-base", "styx:cluster": "demo",
                                  "styx:node": "head"}
    assert rec.outputs["image"] == "image-ray-base_id"  # the AMI id: what a node's image / aws.ami takes


def test_gcp_image_is_made_from_a_snapshot_of_the_boot_disk():
    disk = "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/disks/demo-head"
    rec = run_image(_spec("gcp", {"disk": disk, "zone": "us-central1-a", "project": "p", "cluster": "demo",
                                  "node": "head"}))
    (snap,) = rec.of_type(SNAP)
    (img,) = rec.of_type(GIMG)
    assert snap.inputs["sourceDisk"] == disk and snap.inputs["zone"] == "us-central1-a"
    assert img.inputs["project"] == "p" and img.inputs["name"].startswith("styx-ray-base")
    assert img.inputs["labels"]["styx-image"] == "ray-base" and img.inputs["labels"]["managed-by"] == "styx"


def _state(*resources: tuple[str, str, dict]) -> list[dict]:
    return [{"type": t, "urn": f"urn:pulumi:demo::styx::x${t}::{n}", "outputs": o} for t, n, o in resources]


def test_image_source_reads_the_nodes_machine_from_the_state():
    aws_state = _state(("aws:ec2/instance:Instance", "demo-head", {"id": "i-0head"}),
                       ("aws:ec2/instance:Instance", "demo-worker-0", {"id": "i-0w0"}))
    got = get_backend("aws").image_source({"name": "demo", "cloud": "aws", "region": "eu-west-1"}, "worker-0",
                                          aws_state)
    assert got == {"instance_id": "i-0w0", "region": "eu-west-1", "cluster": "demo", "node": "worker-0"}
    gcp_state = _state(("gcp:compute/instance:Instance", "demo-head",
                        {"bootDisk": {"source": "disks/demo-head"}, "zone": "z", "project": "p"}))
    assert get_backend("gcp").image_source({"name": "demo", "cloud": "gcp"}, "head", gcp_state)["disk"] == \
        "disks/demo-head"
    cluster = mocking.local_cluster(setup={"workdir": "/work", "file_mounts": [{"local": "examples",
                                                                                "remote": "/data/ex"}]})
    local_state = _state((SB, "demo-head-sandbox", {}))
    got = get_backend("local").image_source(cluster, "head", local_state)
    assert got["cluster"] == "demo" and got["strip"] == ["/data/ex", "/work"]
    for cloud, state in (("aws", aws_state), ("gcp", gcp_state), ("local", local_state)):
        c = cluster if cloud == "local" else {"name": "demo", "cloud": cloud}
        with pytest.raises(LookupError, match="demo-worker-7"):
            get_backend(cloud).image_source(c, "worker-7", state)


# ---------------------------------------------------------------- a node's image on cloud local


def test_a_local_node_with_an_image_boots_from_it_and_a_new_image_makes_a_new_sandbox():
    cluster = mocking.local_cluster(head={"image": "ray-base"})
    rec = mocking.run_program(cluster)
    head, worker = rec.named("demo-head-sandbox").inputs, rec.named("demo-worker-0-sandbox").inputs
    assert "STYX_SB_IMAGE=ray-base" in head["create"] and "STYX_SB_IMAGE" not in worker["create"]
    assert "image:ray-base" in head["triggers"]
    plain = mocking.run_program(mocking.local_cluster()).named("demo-head-sandbox").inputs
    assert not any(str(t).startswith("image:") for t in plain["triggers"])  # no image: the sandbox as before
    assert head["triggers"][: len(plain["triggers"])] == plain["triggers"]


def test_a_local_image_name_is_checked_and_a_missing_image_fails_the_preflight(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as e:
        validate(mocking.local_cluster(workers=[{"name": "worker", "count": 1, "image": "Ubuntu:22.04"}]))
    assert "styx:cluster.workers[0].image: 'Ubuntu:22.04' is not a local image name" in str(e.value)
    cfg = parse_cluster(mocking.local_cluster(head={"image": "ray-base"}, local={"cache_dir": str(tmp_path)}))
    monkeypatch.setenv("STYX_LOCAL_PREFLIGHT", "1")
    (line,) = get_backend("local").check(cfg)
    assert line.startswith(f"styx:cluster.head.image: no local image 'ray-base' in {tmp_path}/images")
    assert "styx image create --node NODE --name ray-base" in line
