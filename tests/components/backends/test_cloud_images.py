"""A node booting from an image made by `styx image create`, under mocks: its AMI id on AWS (a node's
`image`), its self link on GCP (the boot disk's image, treated as a custom image)."""

from __future__ import annotations

import pytest
from test_aws_mocks import INSTANCE, aws_cluster, by_name
from test_gcp_mocks import gcp_cluster, gcp_runner

SELF_LINK = "https://www.googleapis.com/compute/v1/projects/p/global/images/styx-ray-base"


@pytest.fixture
def gcp_program(monkeypatch, tmp_path):
    yield from gcp_runner(monkeypatch, tmp_path)


def test_aws_workers_boot_from_the_image_and_the_head_from_the_default(aws_program):
    cluster = aws_cluster(aws={"ssh_cidrs": ["203.0.113.0/24"]})
    for g in cluster["workers"]:
        g["image"] = "ami-0123456789abcdef0"  # `styx image create` printed it
    inst = by_name(aws_program(cluster), INSTANCE)
    workers = [r for n, r in inst.items() if n != "demo-head"]
    assert workers and all(r.inputs["ami"] == "ami-0123456789abcdef0" for r in workers)
    assert inst["demo-head"].inputs["ami"] != "ami-0123456789abcdef0"


def test_gcp_node_boots_from_the_images_self_link(gcp_program):
    cluster = gcp_cluster()
    cluster["head"]["image"] = SELF_LINK
    rec = gcp_program(cluster)
    head = by_name(rec, "gcp:compute/instance:Instance")["demo-head"].inputs
    assert head["bootDisk"]["initializeParams"]["image"] == SELF_LINK
