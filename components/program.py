"""The program body shared by `__main__.py`, the Automation API (inline) and tests; `define` is also
the way to put a styx Cluster inside your own Pulumi program (examples/pulumi-program/)."""

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


def stopped_nodes(config: pulumi.Config) -> frozenset[str]:
    """The nodes `styx stop` stopped: the keys of `styx:power`.stopped (written by styx, never by hand)."""
    rec = config.get_object("power")
    stopped = rec.get("stopped") if isinstance(rec, dict) else None
    return frozenset(stopped) if isinstance(stopped, dict) else frozenset()


def define(cluster: object, base_dir: Path, *, opts: pulumi.ResourceOptions | None = None,
           stopped: frozenset[str] = frozenset(), ray_workers_after_head: bool = False) -> Cluster:
    """A `styx:index:Cluster` from a cluster object (the `styx:cluster` shape: a dict as in a stack
    file), validated before anything is registered; a bad config is one clean `pulumi.RunError`.

    The config checks are `styx.components.backends.validate` (the same as `styx validate`); then the host
    preflight of the backend (`Backend.check`: kubectl, the sandbox), which only the program runs.
    `base_dir` is where relative paths (file mounts, custom scripts) start. Nothing is exported: use
    the Cluster's outputs (`head_ip`, `ray_address`, `node_list`, ...) or `cluster.export()`.
    `stopped`: nodes whose machines stay stopped (clouds that stop through the program: AWS, GCP).
    `ray_workers_after_head`: the workers' Ray after the head's, whatever setup.ray.worker_start says (repair).
    """
    try:
        checked = validate(cluster, base_dir)  # the model, the cloud's rules, the catalog, files
        cfg = checked.cfg
        for w in checked.warnings:
            pulumi.log.warn(w.removeprefix("warning: "))
        backend = get_backend(cfg.cloud)
        problems = backend.check(cfg)
        if problems:
            raise ConfigError(list(dict.fromkeys(problems)))
        sync = pack(cfg.setup.file_mounts, base_dir) if cfg.setup.file_mounts else None
        choice = placement.plan(cfg)  # instance_type: auto -> the optimizer, before anything exists
        return Cluster(cfg, base_dir, backend=backend, sync=sync, choice=choice, opts=opts, stopped=stopped,
                       ray_workers_after_head=ray_workers_after_head)
    except (ConfigError, FileSyncError) as e:
        raise pulumi.RunError(f"invalid {CONFIG_KEY}:\n  " + "\n  ".join(str(e).splitlines())) from None


def build(config: pulumi.Config, base_dir: Path, *, ray_workers_after_head: bool = False) -> Cluster:
    """styx's own program: the Cluster of `styx:cluster`, its outputs exported as the stack's."""
    cluster = define(read_config(config), base_dir, stopped=stopped_nodes(config),
                     ray_workers_after_head=ray_workers_after_head)
    cluster.export()
    return cluster
