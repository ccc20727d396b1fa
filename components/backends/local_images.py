"""Images on cloud local: a node's root as its phases left it, copied by `sandboxctl image-create` into
`local.cache_dir/images/<name>` (without what belongs to that node or its cluster: see sandbox/README.md),
and the root a later sandbox mounts its overlay on when its `image` names it (`head.image`,
`workers[].image`) instead of the Debian base.

A mixin of `LocalBackend` (components/backends/local.py), kept apart from the sandboxes themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

from styx.components.backends.base import machine_state, node_specs
from styx.model.config import CONFIG_KEY, ClusterConfig

# An image's name: a hostname-like label (the same rule as `styx image create --name`, GCP's image names)
IMAGE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def image_dir(cache_dir: str, name: str) -> Path:
    return Path(cache_dir) / "images" / name


def image_ready(cache_dir: str, name: str) -> bool:
    """Whether image `name` is complete under `cache_dir` (sandboxctl writes `.complete` last)."""
    d = image_dir(cache_dir, name)
    return (d / ".complete").exists() and (d / "rootfs").is_dir()


class LocalImages:
    """`Feature.IMAGES` for cloud local (the image is plain files on this host: no cloud resource)."""

    image_strips_secrets = True  # sandboxctl image-create leaves /etc/styx and every key out

    def image_problems(self, cfg: ClusterConfig) -> list[str]:
        """A node's `image` on cloud local is the name of a local image (pure: the name's spelling)."""
        return [f"{CONFIG_KEY}.{where}.image: {spec.image!r} is not a local image name (allowed: lowercase "
                "letters, digits and '-', max 63 characters, as `styx image create --name` makes them)"
                for where, spec in node_specs(cfg) if spec.image and not IMAGE_NAME.match(spec.image)]

    def image_check(self, cfg: ClusterConfig) -> list[str]:
        """Host preflight: every image a node names exists in `local.cache_dir` (before anything is made)."""
        return [f"{CONFIG_KEY}.{where}.image: no local image {spec.image!r} in "
                f"{image_dir(cfg.local.cache_dir, spec.image).parent} (make one with `styx image create "
                f"--node NODE --name {spec.image}`; `styx image list` shows them)"
                for where, spec in node_specs(cfg)
                if spec.image and IMAGE_NAME.match(spec.image) and not image_ready(cfg.local.cache_dir, spec.image)]

    def image_source(self, cluster: Mapping[str, Any], node: str,
                     resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        cfg = ClusterConfig.model_validate(cluster)
        machine_state(resources, "command:local:Command", f"{cfg.name}-{node}-sandbox")  # LookupError: not there
        # the cluster's own files are left out too: what it synced (file_mounts) and its workdir
        strip = {m.remote for m in cfg.setup.file_mounts} | ({cfg.setup.workdir} if cfg.setup.workdir else set())
        return {"cluster": cfg.name, "node": node, "state_dir": cfg.local.state_dir,
                "cache_dir": cfg.local.cache_dir, "strip": sorted(strip)}

    def image(self, name: str, source: Mapping[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Input[str]:
        from pulumi_command import local

        from styx.components.backends.local import _ctl

        env = {"STYX_SB_CLUSTER": source["cluster"], "STYX_SB_NODE": source["node"], "STYX_SB_IMAGE": name,
               "STYX_SB_STATE_DIR": source["state_dir"], "STYX_CACHE_DIR": source["cache_dir"]}
        if source.get("strip"):
            env["STYX_SB_IMAGE_STRIP"] = "\n".join(source["strip"])
        made = local.Command(
            f"image-{name}",
            create=_ctl("image-create", env),
            delete=_ctl("image-delete", {k: env[k] for k in ("STYX_SB_IMAGE", "STYX_SB_STATE_DIR", "STYX_CACHE_DIR")}),
            triggers=[source["cluster"], source["node"], source["cache_dir"]],
            logging=local.Logging.STDERR,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)),
        )
        return made.stdout.apply(lambda _: name)
