"""The program body shared by `__main__.py`, the Automation API (inline) and tests."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components import placement
from components.backends import get_backend
from components.cluster import Cluster
from components.filesync import FileSyncError, pack
from styx.config import CONFIG_KEY, ClusterConfig, ConfigError, parse_cluster


def read_config(config: pulumi.Config) -> object:
    """The raw `styx:cluster` object (secret-marked when it holds `secure:` values)."""
    return config.get_object("cluster")


def build(config: pulumi.Config, base_dir: Path) -> Cluster:
    """Validate everything before registering anything; a bad config is one clean error, no traceback."""
    try:
        cfg = parse_cluster(read_config(config))
        backend = get_backend(cfg.cloud)
        problems = backend.check(cfg) + _file_problems(cfg, base_dir)
        if problems:
            raise ConfigError(problems)
        sync = pack(cfg.setup.file_mounts, base_dir) if cfg.setup.file_mounts else None
        choice = placement.plan(cfg)  # instance_type: auto -> the optimizer, before anything exists
        cluster = Cluster(cfg, base_dir, backend=backend, sync=sync, choice=choice)
    except (ConfigError, FileSyncError) as e:
        raise pulumi.RunError(f"invalid {CONFIG_KEY}:\n  " + "\n  ".join(str(e).splitlines())) from None
    cluster.export()
    return cluster


def _file_problems(cfg: ClusterConfig, base_dir: Path) -> list[str]:
    """Files the config names must exist before anything is created."""
    out = []
    for i, cs in enumerate(cfg.setup.custom_scripts):
        if cs.file and not (base_dir / cs.file).is_file():
            out.append(f"{CONFIG_KEY}.setup.custom_scripts[{i}].file: {cs.file!r} not found (relative to {base_dir})")
    for i, m in enumerate(cfg.setup.file_mounts):
        if not (base_dir / m.local).exists():
            out.append(f"{CONFIG_KEY}.setup.file_mounts[{i}].local: {m.local!r} not found (relative to {base_dir})")
    if cfg.ssh.private_key_file and not Path(cfg.ssh.private_key_file).expanduser().is_file():
        out.append(f"{CONFIG_KEY}.ssh.private_key_file: {cfg.ssh.private_key_file!r} not found")
    return out
