"""styx: read `styx:cluster`, validate it, build the Cluster, export its outputs."""

from pathlib import Path

import pulumi

from styx.components.program import build

build(pulumi.Config("styx"), Path(__file__).resolve().parent)
