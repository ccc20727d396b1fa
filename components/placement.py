"""`instance_type: auto`: resolved once by the optimizer, recorded in the stack, kept stable.

The choice is stored in a `pulumi.Stash` resource: its output is the value recorded when it was
first created, so a later `up` with a refreshed catalog never silently moves or replaces running
instances. Re-optimising is an explicit action that shows its diff:
`pulumi up --replace '<urn of the <cluster>-placement Stash>'` (or `styx launch --reoptimize`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pulumi

from styx.components.backends import backend_class
from styx.model.config import CONFIG_KEY, ClusterConfig, ConfigError


@dataclass(frozen=True)
class Placement:
    """Where one node group runs: plain values, or Outputs read from the recorded choice."""

    instance_type: pulumi.Input[str]
    # This run's plan (plain): for structural choices (CPU architecture, GPU layout). The recorded
    # instance_type above may be older, but answers the same request.
    planned_type: str = ""
    region: pulumi.Input[str] | None = None
    zone: pulumi.Input[str] | None = None
    spot: pulumi.Input[bool] | None = None
    price_per_node: pulumi.Input[float] | None = None


def needs_auto(cfg: ClusterConfig) -> bool:
    return cfg.head.instance_type == "auto" or any(g.instance_type == "auto" for g in cfg.workers)


def plan(cfg: ClusterConfig) -> dict[str, Any] | None:
    """The optimizer's choice for the whole cluster (a dict), or None when nothing is `auto`.

    Raises ConfigError naming the key when the request is invalid or nothing in the catalog fits.
    """
    if not needs_auto(cfg):
        return None
    from styx.model.catalog.loader import CatalogError, load_catalog
    from styx.model.optimizer import RequestError, request_from_cluster, resolve

    where = f"{CONFIG_KEY}.head.instance_type" if cfg.head.instance_type == "auto" else f"{CONFIG_KEY}.workers"
    try:
        catalog = load_catalog(os.environ.get("STYX_CATALOG_DIR"), clouds=[cfg.cloud])
        request = backend_class(cfg.cloud)().placement_request(request_from_cluster(cfg))
        result = resolve(request, catalog)
    except CatalogError as e:
        raise ConfigError([f"{where}: auto needs an instance catalog for {cfg.cloud}: {e} "
                           "(`styx catalog refresh`, or STYX_CATALOG_DIR=DIR with DIR/<cloud>/vms.csv)"]) from None
    except RequestError as e:
        raise ConfigError([_config_path(cfg, e)]) from None
    if result.choice is None:
        raise ConfigError([f"{where}: auto found no offer that fits: " + "; ".join(result.reasons[:5])])
    return result.choice.to_dict()


def _config_path(cfg: ClusterConfig, e: Exception) -> str:
    """An optimizer error `group.field: msg` as `styx:cluster.<head|workers[i]>.resources.field: msg`."""
    field = getattr(e, "field", "")
    group, _, leaf = field.partition(".")
    groups = {"head": "head", **{g.name: f"workers[{i}]" for i, g in enumerate(cfg.workers)}}
    where = groups.get(group)
    text = str(e)
    if where and leaf:
        return f"{CONFIG_KEY}.{where}.resources.{leaf}{text[len(field):]}"
    return f"{CONFIG_KEY}.resources: {text}"


def record(cfg: ClusterConfig, choice: dict[str, Any], parent: pulumi.Resource) -> dict[str, Placement]:
    """Record the choice in state (first value wins) and give each group its Placement."""
    stash = pulumi.Stash(f"{cfg.name}-placement", input=choice, opts=pulumi.ResourceOptions(parent=parent))
    kept = stash.output

    def node(c: dict[str, Any], group: str) -> dict[str, Any]:
        return next(n for n in c["nodes"] if n["group"] == group)

    out: dict[str, Placement] = {}
    for group in [n["group"] for n in choice["nodes"]]:
        out[group] = Placement(
            instance_type=kept.apply(lambda c, g=group: node(c, g)["instance_type"]),
            planned_type=node(choice, group)["instance_type"],
            region=kept.apply(lambda c: c["region"]),
            zone=kept.apply(lambda c: c.get("zone")),
            spot=kept.apply(lambda c, g=group: node(c, g)["spot"]),
            price_per_node=kept.apply(lambda c, g=group: node(c, g)["price_per_node"]),
        )
    return out
