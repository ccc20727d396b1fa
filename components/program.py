"""The program body shared by `__main__.py`, the Automation API (inline) and tests."""

from __future__ import annotations

from pathlib import Path

import pulumi
from styx.components import placement
from styx.components.backends import get_backend, validate
from styx.components.cluster import Cluster
from styx.components.filesync import FileSyncError, pack

from styx.model.config import CONFIG_KEY, ConfigError


def read_config(config: pulumi.Config) -> object:
    """The raw `styx:cluster` object (secret-marked when it holds `secure:` values)."""
    return config.get_object("cluster")


def build(config: pulumi.Config, base_dir: Path) -> Cluster:
    """Validate everything before registering anything; a bad config is one clean error, no traceback.

    The config checks are `styx.components.backends.validate` (the same as `styx validate`); then the host
    preflight of the backend (`Backend.check`: kubectl, the sandbox), which only the program runs.
    """
    try:
        checked = validate(read_config(config), base_dir)  # the model, the cloud's rules, the catalog, files
        cfg = checked.cfg
        for w in checked.warnings:
            pulumi.log.warn(w.removeprefix("warning: "))
        backend = get_backend(cfg.cloud)
        problems = backend.check(cfg)
        if problems:
            raise ConfigError(list(dict.fromkeys(problems)))
        sync = pack(cfg.setup.file_mounts, base_dir) if cfg.setup.file_mounts else None
        choice = placement.plan(cfg)  # instance_type: auto -> the optimizer, before anything exists
        cluster = Cluster(cfg, base_dir, backend=backend, sync=sync, choice=choice)
    except (ConfigError, FileSyncError) as e:
        raise pulumi.RunError(f"invalid {CONFIG_KEY}:\n  " + "\n  ".join(str(e).splitlines())) from None
    cluster.export()
    return cluster
