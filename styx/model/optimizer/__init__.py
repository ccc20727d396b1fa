"""Resource optimizer: the cheapest (cloud, region, zone, instance type, spot) for a cluster.

A user asks for resources (``accelerators: A100:8``, ``cpus: 8+``, ``memory: 64+``, ``spot: true``),
optionally a set of acceptable accelerators (``any_of``: cheapest wins) or a preference list
(``ordered``: the first feasible one wins), limited to some clouds/regions/zones. :func:`resolve`
answers with a :class:`Plan`: the cheapest feasible :class:`Choice`, the next-cheapest alternatives,
and the reason each other cloud/region was excluded.

Semantics (SkyPilot's, so the answers agree):

* ``cpus``/``memory``: ``N`` means exactly N, ``N+`` at least N; memory is GiB, and ``Nx`` means at
  least N GiB per vCPU.
* ``A100`` means ``A100:1``; names match case-insensitively (``a100`` -> ``A100``).
* Prices are $/hour per node; the cluster's price is the sum over node groups of count x price.
* A cluster is placed in ONE cloud, ONE region and, where the cloud has zones (AWS, GCP), ONE zone:
  Ray needs a private network between the nodes, and keeping GPU nodes in one zone keeps
  placement groups, capacity reservations and inter-node traffic simple. Clouds without zones in
  their catalog (Lambda, Azure) are placed per region (``zone`` is None). AWS zones are zone IDs
  (``use1-az4``).
* Ties are broken deterministically by (price, cloud, region, zone, instance types).
* Spot: an offer without a spot price is not available as spot (Lambda has no spot at all);
  empty, zero and sentinel prices mean unavailable, never free (a GCP machine with built-in GPUs whose
  host row is 0.0, like ``a4-highgpu-8g``, is priced by its accelerator rows: the catalog composes it).


The package has three parts, each with its own module: :mod:`.request` (parsing and checking what is
asked: :func:`parse_request`, :class:`Request`, :class:`Blocklist`), :mod:`.search` (:func:`resolve`:
the cheapest feasible placement, over typed :class:`~styx.model.optimizer.search.Candidate` s) and
:mod:`.explain` (why each other cloud/region was excluded); :mod:`.plan` holds the result types.
Accelerator and size strings are parsed by :mod:`styx.model.grammar`, the one grammar styx has.

Plain dataclasses in and out, standard library only: no Pulumi, no pydantic, no pandas.
"""

from __future__ import annotations

from .plan import Choice, Exclusion, NodeChoice, Plan
from .request import (
    KNOWN_CLOUDS,
    AcceleratorSpec,
    Block,
    Blocklist,
    NodeGroupRequest,
    Quantity,
    Request,
    RequestError,
    parse_request,
    request_from_cluster,
)
from .search import Candidate, resolve

__all__ = [
    "KNOWN_CLOUDS",
    "AcceleratorSpec",
    "Block",
    "Blocklist",
    "Candidate",
    "Choice",
    "Exclusion",
    "NodeChoice",
    "NodeGroupRequest",
    "Plan",
    "Quantity",
    "Request",
    "RequestError",
    "parse_request",
    "request_from_cluster",
    "resolve",
]
