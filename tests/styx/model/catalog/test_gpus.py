"""styx.model.catalog.gpus is the one table of GPU facts: every GPU instance type of the catalogs agrees with it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from styx.model.catalog import gpus
from styx.model.catalog.gcp import builtin_accelerator
from styx.model.catalog.model import parse_count

ROOT = Path(__file__).resolve().parents[4]
DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(os.environ.get("STYX_SKYPILOT_CATALOG") or ROOT.parent / "shared" / "catalog" / "skypilot")
AWS_FILES = [p for p in (SHARED / "aws" / "vms_subset_p_family.csv", DATA / "aws" / "vms.csv") if p.is_file()]
GCP_FILES = [p for p in (SHARED / "gcp" / "vms_subset_gpu.csv", DATA / "gcp" / "vms.csv") if p.is_file()]
needs_shared = pytest.mark.skipif(not (SHARED / "aws").is_dir(), reason="shared catalogs not found")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@needs_shared
@pytest.mark.parametrize("path", AWS_FILES, ids=lambda p: p.parent.parent.name + "/" + p.name)
def test_aws_catalog_gpu_types_agree_with_the_table(path):
    seen = set()
    for r in _rows(path):
        it, name = r["InstanceType"], r["AcceleratorName"]
        table = gpus.aws_gpus(it)
        if not name:
            assert table is None, f"{it}: the table lists GPUs ({table}), the catalog none"
            continue
        seen.add(it)
        assert table is not None, f"{it} ({name}) is missing from styx.model.catalog.gpus.AWS_FAMILIES"
        assert (table.accelerator, table.count) == (name, parse_count(r["AcceleratorCount"])), it
    assert seen


@needs_shared
@pytest.mark.parametrize("path", GCP_FILES, ids=lambda p: p.parent.parent.name + "/" + p.name)
def test_gcp_catalog_gpu_types_agree_with_the_table(path):
    rows = _rows(path)
    sold = {(r["AcceleratorName"], parse_count(r["AcceleratorCount"]), r["AvailabilityZone"])
            for r in rows if not r["InstanceType"] and r["AcceleratorName"]}
    names = {n for n, _, _ in sold if not n.lower().startswith("tpu-")}
    builtin_names = {f.accelerator for f in gpus.GCP_BUILTIN_FAMILIES}
    for n in names:  # every GPU the file prices is built into a family or attaches to N1
        assert n in builtin_names or gpus.attachable(n) is not None, n
    for it in sorted({r["InstanceType"] for r in rows if r["InstanceType"]}):
        g = gpus.gcp_builtin(it)
        if not it.startswith(gpus.GCP_GPU_ONLY_SERIES):
            assert g is None, it
            continue
        assert g is not None, f"{it} is a GPU series type missing from styx.model.catalog.gpus.GCP_BUILTIN_FAMILIES"
        if g.in_catalog:
            assert builtin_accelerator(it) == (g.accelerator, g.count)
            # the catalog sells that accelerator in that count somewhere (usually in the host's own zone)
            assert any(n == g.accelerator and c == g.count for n, c, _ in sold), (it, g)
        else:
            assert builtin_accelerator(it) is None  # left out of the catalog, as SkyPilot does


def test_backend_and_catalog_read_the_same_gcp_table():
    from styx.components.backends import gcp as backend

    for f in gpus.GCP_BUILTIN_FAMILIES:
        for size, count in f.sizes.items():
            it = f.prefix + size
            assert backend.builtin_gpus(it) == (f.accelerator, count)
            assert builtin_accelerator(it) == ((f.accelerator, count) if f.in_catalog else None)
            assert backend.builtin_gpus(it + "-nolssd") == (f.accelerator, count)
            assert builtin_accelerator(it + "-nolssd") is None
    for a in gpus.GCP_ATTACHABLE.values():
        for n in a.counts:
            assert gpus.attachable(a.guest_type) is a
            assert (gpus.attachable(a.name.lower()) is a) and n in a.hosts


def test_every_table_name_is_known_to_the_grammar():
    from styx.model.grammar import canonical_accelerator_name

    for f in (*gpus.GCP_BUILTIN_FAMILIES, *gpus.AWS_FAMILIES):
        assert canonical_accelerator_name(f.accelerator.lower()) == f.accelerator
    for name in gpus.GCP_ATTACHABLE:
        assert canonical_accelerator_name(name.lower()) == name
