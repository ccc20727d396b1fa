"""The `styx` command line (click)."""

from __future__ import annotations

import click


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("styx")
    except PackageNotFoundError:  # running from a checkout without `pip install -e .`
        return "0.1.0"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=_version(), prog_name="styx")
def main() -> None:
    """styx: GPU/ML clusters as code.

    Exit codes: 0 ok, 1 the operation failed, 2 bad usage or config. With --json, stdout carries one
    JSON object and progress goes to stderr.
    """


# --------------------------------------------------------------------------- optimizer + catalogs
# (styx/app/cli/optimize.py: `styx optimize`, `styx show-gpus`, `styx catalog refresh|show`)
from styx.app.cli.optimize import catalog_group, optimize, show_gpus  # noqa: E402

main.add_command(optimize)
main.add_command(show_gpus)
main.add_command(catalog_group)
# --------------------------------------------------------------------------- end optimizer + catalogs

# --------------------------------------------------------------------------- cluster lifecycle
# (styx/app/cli/{launch,preview,status,remote,down,power,check,validate}.py)
from styx.app.cli.check import check  # noqa: E402
from styx.app.cli.down import down  # noqa: E402
from styx.app.cli.job import job  # noqa: E402
from styx.app.cli.launch import launch  # noqa: E402
from styx.app.cli.power import autostop, start, stop  # noqa: E402
from styx.app.cli.preview import preview  # noqa: E402
from styx.app.cli.remote import cp, dashboard, exec_, ssh  # noqa: E402
from styx.app.cli.status import cost_report, status  # noqa: E402
from styx.app.cli.validate import validate  # noqa: E402

for _cmd in (launch, preview, status, ssh, exec_, cp, job, dashboard, down, stop, start, autostop, check, cost_report,
             validate):
    main.add_command(_cmd)
# --------------------------------------------------------------------------- end cluster lifecycle

# --------------------------------------------------------------------------- drift
# (styx/app/cli/drift.py: `styx drift`, `styx repair`)
from styx.app.cli.drift import drift, repair  # noqa: E402

main.add_command(drift)
main.add_command(repair)
# --------------------------------------------------------------------------- end drift

# --------------------------------------------------------------------------- secrets
# (styx/app/cli/secret.py: `styx secret set|list|rm`)
from styx.app.cli.secret import secret_group  # noqa: E402

main.add_command(secret_group)
# --------------------------------------------------------------------------- end secrets

# --------------------------------------------------------------------------- images
# (styx/app/cli/image.py: `styx image create|list|delete`)
from styx.app.cli.image import image_group  # noqa: E402

main.add_command(image_group)
# --------------------------------------------------------------------------- end images
