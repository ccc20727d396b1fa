"""The program of an image stack (`styx image create`): one image of one node, made declaratively by the
source cluster's backend (`Backend.image`: an `aws.ec2.AmiFromInstance`, a `gcp.compute.Image` of the
boot disk, a local image under `local.cache_dir`), so `styx image delete` is a `pulumi destroy`.

The stack's one config value `styx:image` (plain JSON written by styx.app.images):
`{name, cloud, cluster, stack, node, source}`, `source` being the backend's `image_source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from styx.components.backends import get_backend
from styx.components.backends.base import Feature

IMAGE_KEY = "styx:image"


def define_image(spec: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> pulumi.Input[str]:
    """Register the image `spec` describes; returns what a node's `image` is set to for it."""
    backend = get_backend(str(spec.get("cloud")))
    if Feature.IMAGES not in backend.features:
        raise pulumi.RunError(f"{IMAGE_KEY}.cloud: cloud {backend.name} cannot make images of its nodes")
    return backend.image(str(spec["name"]), spec["source"], opts or pulumi.ResourceOptions())


def build(config: pulumi.Config) -> None:
    """`styx:image` -> the image, and the outputs `styx image list` shows."""
    spec = config.require_object("image")
    if not isinstance(spec, dict):
        raise pulumi.RunError(f"{IMAGE_KEY}: expected an object, got {type(spec).__name__}")
    pulumi.export("image", define_image(spec))
    for k in ("name", "cloud", "cluster", "stack", "node", "created"):
        pulumi.export(k, spec.get(k))
