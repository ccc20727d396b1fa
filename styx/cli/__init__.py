"""The `styx` command line (click)."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """styx: GPU/ML clusters as code."""


# --------------------------------------------------------------------------- optimizer + catalogs
# (styx/cli/optimize.py: `styx optimize`, `styx show-gpus`, `styx catalog refresh|show`)
from styx.cli.optimize import catalog_group, optimize, show_gpus  # noqa: E402

main.add_command(optimize)
main.add_command(show_gpus)
main.add_command(catalog_group)
# --------------------------------------------------------------------------- end optimizer + catalogs
