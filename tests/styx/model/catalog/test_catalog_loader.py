"""Reading SkyPilot v8 catalogs: GCP price composition, sentinel prices, name mapping, sources, staleness."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from styx.model.catalog import (
    Catalog,
    CatalogError,
    clear_cache,
    discover,
    load_catalog,
    load_file,
    load_files,
    parse_price,
)
from styx.model.catalog.gcp import builtin_accelerator, n1_default_min_cpus

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[4]
SHARED = Path(os.environ.get("STYX_SKYPILOT_CATALOG") or ROOT.parent / "shared" / "catalog" / "skypilot")
SHARED_FILES = {
    "aws": SHARED / "aws" / "vms_subset_p_family.csv",
    "gcp": SHARED / "gcp" / "vms_subset_gpu.csv",
    "lambda": SHARED / "lambda" / "vms.csv",
}
needs_shared = pytest.mark.skipif(
    not all(p.is_file() for p in SHARED_FILES.values()), reason=f"shared SkyPilot catalogs not found under {SHARED}"
)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never read the developer's ~/.styx or ~/.sky."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx-home"))
    monkeypatch.delenv("SKY_RUNTIME_DIR", raising=False)


@pytest.fixture
def shared_dir(tmp_path) -> Path:
    """The shared files under the loader's layout DIR/<cloud>/vms.csv, as a symlink farm."""
    d = tmp_path / "shared-catalog"
    for cloud, f in SHARED_FILES.items():
        (d / cloud).mkdir(parents=True)
        (d / cloud / "vms.csv").symlink_to(f)
    return d


@pytest.fixture
def cat() -> Catalog:
    return load_catalog(DATA)


def by_place(offers, **where):
    return [o for o in offers if all(getattr(o, k) == v for k, v in where.items())]


# --------------------------------------------------------------------------- prices


@pytest.mark.parametrize(
    ("text", "cloud", "want"),
    [
        ("", "aws", None),
        ("0", "aws", None),
        ("0.0", "gcp", None),
        ("-1", "aws", None),
        ("nan", "aws", None),
        ("inf", "aws", None),
        ("abc", "aws", None),
        ("700.0", "gcp", None),
        ("700.0", "aws", 700.0),
        ("1.5", "lambda", 1.5),
    ],
)
def test_parse_price_unavailable_is_never_free(text, cloud, want):
    assert parse_price(text, cloud) == want


# --------------------------------------------------------------------------- GCP


@pytest.mark.parametrize(
    ("machine", "want"),
    [
        ("a2-highgpu-1g", ("A100", 1)),
        ("a2-highgpu-8g", ("A100", 8)),
        ("a2-megagpu-16g", ("A100", 16)),
        ("a2-ultragpu-2g", ("A100-80GB", 2)),
        ("a3-highgpu-8g", ("H100", 8)),
        ("a3-megagpu-8g", ("H100-MEGA", 8)),
        ("a3-ultragpu-8g", ("H200", 8)),
        ("a4-highgpu-8g", ("B200", 8)),
        ("g2-standard-4", ("L4", 1)),
        ("g2-standard-24", ("L4", 2)),
        ("g2-standard-96", ("L4", 8)),
        ("a3-edgegpu-8g", None),
        ("a3-ultragpu-8g-nolssd", None),
        ("n1-standard-8", None),
        ("n2-standard-8", None),
    ],
)
def test_gcp_machine_type_implies_gpus(machine, want):
    assert builtin_accelerator(machine) == want


def test_gcp_gpu_vm_costs_host_plus_accelerator_rows(cat):
    [a, b] = by_place(cat.offers("A100", 8), cloud="gcp", region="us-central1")
    assert a.instance_type == b.instance_type == "a2-highgpu-8g"
    assert {a.zone, b.zone} == {"us-central1-a", "us-central1-b"}
    assert a.price == pytest.approx(5.91582 + 23.47126)
    assert a.spot_price == pytest.approx(2.958 + 11.4728)
    assert (a.vcpus, a.memory_gib, a.accelerator_count) == (96.0, 680.0, 8)
    assert not a.attached


def test_gcp_spot_needs_both_rows_priced(cat):
    [eu] = by_place(cat.offers("A100", 8), cloud="gcp", region="europe-west4")
    assert eu.price == pytest.approx(6.5 + 25.0)
    assert eu.spot_price is None  # the accelerator row has no spot price


def test_gcp_zero_host_price_is_priced_by_the_accelerator_row(cat):
    # a4-highgpu-8g: the host row says 0.0 and the whole price is on the B200 row of the zone
    [b200] = by_place(cat.offers("B200", 8), cloud="gcp")
    assert b200.instance_type == "a4-highgpu-8g"
    assert b200.price == 64.44 and b200.spot_price == 35.0


def test_gcp_zero_host_price_without_a_priced_accelerator_row_is_unavailable(tmp_path):
    f = tmp_path / "gcp" / "vms.csv"
    f.parent.mkdir()
    f.write_text(
        "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n"
        "a4-highgpu-8g,224.0,3968.0,,,,us-central1,us-central1-b,0.0,0.0\n"
        "a3-highgpu-8g,208.0,1872.0,,,,us-central1,us-central1-a,700.0,0.0\n"
        ",,,B200,8,,us-central1,us-central1-b,0.0,\n"
        ",,,H100,8,,us-central1,us-central1-a,80.0,20.0\n"
    )
    c = load_catalog(tmp_path)
    [b200] = c.offers("B200", 8)
    assert b200.price is None and b200.spot_price is None  # 0.0 + 0.0 / 0.0 + empty: never free
    [h100] = c.offers("H100", 8)
    assert h100.price is None  # a sentinel host price stays unavailable
    assert h100.spot_price == 20.0  # a 0.0 host row: the accelerator row is the price


def test_gcp_sentinel_700_and_empty_accelerator_prices(cat):
    p100 = {o.instance_type: o for o in cat.offers("P100", 1) if o.cloud == "gcp"}
    assert all(o.price is None for o in p100.values())  # 700.0 is a sentinel
    assert p100["n1-highmem-8"].spot_price == pytest.approx(0.1 + 1.0)
    assert all(o.price is None and o.spot_price is None for o in cat.offers("V100", 1))


def test_gcp_tpus_and_unmapped_gpu_families_are_left_out(cat):
    assert cat.canonical_accelerator("tpu-v4-8") is None
    types = {o.instance_type for o in cat.all_offers() if o.cloud == "gcp"}
    assert "a3-edgegpu-8g" not in types
    assert {o.instance_type for o in cat.offers("H100", 8) if o.cloud == "gcp"} == {"a3-highgpu-8g"}


def test_gcp_built_in_gpu_machines_are_not_cpu_offers(cat):
    cpu = {o.instance_type for o in cat.offers(None) if o.cloud == "gcp"}
    assert cpu == {"n1-standard-4", "n1-standard-8", "n1-highmem-8", "n1-standard-96", "n2-standard-8"}


def test_gcp_l4_on_g2(cat):
    l4 = sorted(by_place(cat.offers("L4", 1), cloud="gcp"), key=lambda o: o.price)
    assert [o.instance_type for o in l4] == ["g2-standard-4", "g2-standard-8"]
    assert l4[0].price == pytest.approx(0.7)


def test_gcp_n1_attachable_gpus_respect_host_limits(cat):
    t4 = {o.instance_type: o for o in cat.offers("T4", 1) if o.cloud == "gcp"}
    # T4:1 fits hosts up to 48 vCPUs / 312 GiB: not n1-standard-96
    assert set(t4) == {"n1-standard-4", "n1-standard-8", "n1-highmem-8"}
    assert all(o.attached for o in t4.values())
    assert t4["n1-standard-8"].price == pytest.approx(0.38 + 0.35)
    t4x4 = {o.instance_type for o in cat.offers("T4", 4) if o.cloud == "gcp"}
    assert "n1-standard-96" in t4x4
    assert n1_default_min_cpus("T4", 4) == 48
    # attached combinations are not listed as the plain instance type
    assert all(o.accelerator is None for o in cat.offers_of_type("gcp", "n1-standard-8"))


# --------------------------------------------------------------------------- AWS / Lambda


def test_aws_accelerator_name_wins_over_gpuinfo_name(cat):
    [p4de] = cat.offers("A100-80GB", 8)
    assert p4de.instance_type == "p4de.24xlarge"
    assert cat.gpu_info_name(p4de) == "A100"  # GpuInfo says A100, the catalog name is A100-80GB
    assert cat.gpu_memory_gib(p4de) == 80.0
    assert "p4de.24xlarge" not in {o.instance_type for o in cat.offers("A100", 8)}


def test_aws_empty_on_demand_price_is_unavailable(cat):
    [p5e] = cat.offers("H200", 8)
    assert p5e.price is None and p5e.spot_price == 14.0


def test_gpuinfo_is_a_literal_never_evaluated(cat, tmp_path):
    marker = Path("/tmp/styx-pwned")
    marker.unlink(missing_ok=True)
    [g5] = cat.offers("A10G", 1)
    assert cat.gpu_info("aws", g5.instance_type) is None
    assert cat.gpu_memory_gib(g5) is None
    assert not marker.exists()


def test_lambda_has_no_zones_and_no_spot(cat):
    lam = [o for o in cat.all_offers() if o.cloud == "lambda"]
    assert lam and all(o.zone is None and o.spot_price is None for o in lam)
    assert {o.region for o in cat.offers("A100", 8) if o.cloud == "lambda"} == {"us-east-1", "us-west-1"}


def test_names_are_case_insensitive_and_counts_are_ints(cat):
    assert cat.canonical_accelerator("a100-80gb") == "A100-80GB"
    assert cat.offers("a100", 8) == cat.offers("A100", 8.0)
    assert all(isinstance(o.accelerator_count, int) for o in cat.offers("A100", 8))
    assert cat.accelerator_counts("A100", "gcp") == [1, 8]
    assert "A100" in cat.suggest_accelerators("A1000")


def test_gpu_summary_cheapest_and_where(cat):
    rows = {(r["cloud"], r["instance_type"]): r for r in cat.gpu_summary("a100")}
    p4d = rows[("aws", "p4d.24xlarge")]
    assert p4d["price"] == 20.0 and p4d["price_where"] == "us-east-1/use1-az1"
    assert p4d["spot_price"] == 5.0 and p4d["spot_where"] == "us-east-1/use1-az1"
    a2 = rows[("gcp", "a2-highgpu-8g")]
    assert a2["price"] == pytest.approx(29.38708) and a2["gpu_memory_gib"] == 40.0
    assert rows[("lambda", "gpu_8x_a100")]["spot_price"] is None
    assert json.dumps(cat.gpu_summary())  # JSON-serialisable


# --------------------------------------------------------------------------- the shared SkyPilot data


@needs_shared
def test_shared_gcp_a100x8_us_central1_on_demand(shared_dir):
    c = load_catalog(shared_dir)
    offers = [o for o in c.offers("A100", 8) if o.cloud == "gcp" and o.region == "us-central1"]
    assert {o.instance_type for o in offers} == {"a2-highgpu-8g"}
    for o in offers:
        assert o.price == pytest.approx(5.91582 + 23.47126)
        assert abs(o.price - 29.387) < 1e-3


@needs_shared
def test_shared_catalogs_sentinels_and_mappings(shared_dir):
    c = load_catalog(shared_dir)
    assert set(c.clouds) == {"aws", "gcp", "lambda"}
    # a4-highgpu-8g: host rows 0.0, priced by the B200 rows (from $64.44/h)
    b200 = [o for o in c.offers("B200", 8) if o.cloud == "gcp"]
    assert {o.instance_type for o in b200} == {"a4-highgpu-8g"}
    assert min(o.price for o in b200) == 64.44 and all(o.price is not None for o in b200)
    p4de = [o for o in c.offers("A100-80GB", 8) if o.cloud == "aws"]
    assert p4de and {o.instance_type for o in p4de} == {"p4de.24xlarge"}
    assert c.gpu_info_name(p4de[0]) == "A100"
    assert {o.instance_type for o in c.offers("H100-MEGA", 8)} == {"a3-megagpu-8g"}
    assert {o.instance_type for o in c.offers("H200", 8) if o.cloud == "gcp"} == {"a3-ultragpu-8g"}
    assert all(o.zone is None and o.spot_price is None for o in c.all_offers() if o.cloud == "lambda")
    # p5e is sold on demand only through capacity blocks: empty Price
    assert all(o.price is None for o in c.offers("H200", 8) if o.instance_type == "p5e.48xlarge")


@needs_shared
def test_shared_explicit_file_mapping_with_other_names():
    c = load_files(SHARED_FILES)
    assert c.sources["aws"].path.endswith("vms_subset_p_family.csv")
    assert c.n_offers > 500


# --------------------------------------------------------------------------- sources, errors, staleness


def _copy_layout(src: Path, dst: Path, clouds=("aws", "gcp", "lambda")) -> Path:
    for c in clouds:
        (dst / c).mkdir(parents=True, exist_ok=True)
        shutil.copy(src / c / "vms.csv", dst / c / "vms.csv")
    return dst


def test_catalog_dir_is_the_only_source_when_given(tmp_path, monkeypatch):
    _copy_layout(DATA, tmp_path / "styx-home" / "catalogs" / "v8")
    mine = _copy_layout(DATA, tmp_path / "mine", clouds=("aws",))
    assert [c for c, _, _ in discover(mine)] == ["aws"]
    c = load_catalog(mine)
    assert c.clouds == ("aws",) and c.sources["aws"].origin == "--catalog"


def test_styx_cache_then_skypilot_cache_per_cloud(tmp_path):
    _copy_layout(DATA, tmp_path / "styx-home" / "catalogs" / "v8", clouds=("aws",))
    _copy_layout(DATA, tmp_path / "home" / ".sky" / "catalogs" / "v8", clouds=("aws", "gcp"))
    found = {c: (str(p), o) for c, p, o in discover()}
    assert found["aws"][1] == "styx cache" and "styx-home" in found["aws"][0]
    assert found["gcp"][1] == "skypilot cache"
    assert set(load_catalog(clouds=["gcp"]).clouds) == {"gcp"}


def test_sky_runtime_dir_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("SKY_RUNTIME_DIR", str(tmp_path / "rt"))
    _copy_layout(DATA, tmp_path / "rt" / ".sky" / "catalogs" / "v8", clouds=("lambda",))
    assert [c for c, _, _ in discover()] == ["lambda"]


def test_no_catalog_anywhere_is_a_clear_error():
    with pytest.raises(CatalogError, match="styx catalog refresh"):
        load_catalog()


def test_missing_or_empty_dir_errors(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match=r"<cloud>/vms\.csv"):
        load_catalog(tmp_path / "empty")


def test_not_a_catalog_names_the_file(tmp_path):
    f = tmp_path / "x" / "aws" / "vms.csv"
    f.parent.mkdir(parents=True)
    f.write_text("<html>rate limited</html>\n")
    with pytest.raises(CatalogError, match=r"not a SkyPilot v8 vms\.csv"):
        load_catalog(tmp_path / "x")
    f.write_text("")
    with pytest.raises(CatalogError, match="empty"):
        load_catalog(tmp_path / "x")


def test_bom_and_crlf_are_fine(tmp_path):
    src = (DATA / "lambda" / "vms.csv").read_bytes()
    f = tmp_path / "lambda.csv"
    f.write_bytes(b"\xef\xbb\xbf" + src)
    parsed = load_file("lambda", f)
    assert parsed.rows == 4 and len(parsed.offers) == 4


def test_old_catalog_warns_by_meta_json(tmp_path):
    d = _copy_layout(DATA, tmp_path / "c", clouds=("aws",))
    meta = {"url": "http://example.invalid/aws/vms.csv", "fetched_at": time.time() - 9 * 86400}
    (d / "aws" / "vms.csv.meta.json").write_text(json.dumps(meta))
    c = load_catalog(d)
    assert c.sources["aws"].url == meta["url"]
    assert len(c.warnings) == 1 and "9.0 days old" in c.warnings[0] and "styx catalog refresh" in c.warnings[0]
    # the answer is still there: a warning, not a wrong answer
    assert c.offers("A100", 8)


def test_old_catalog_warns_by_mtime_and_fresh_does_not(tmp_path):
    d = _copy_layout(DATA, tmp_path / "c", clouds=("aws", "gcp"))
    old = time.time() - 8 * 86400
    os.utime(d / "gcp" / "vms.csv", (old, old))
    c = load_catalog(d)
    assert [w.split(" ")[1] for w in c.warnings] == ["gcp"]
    assert load_catalog(d, max_age_days=30).warnings == []


def test_process_cache_reuses_and_notices_changes(tmp_path):
    clear_cache()
    d = _copy_layout(DATA, tmp_path / "c", clouds=("lambda",))
    a = load_catalog(d)
    assert load_catalog(d) is a
    f = d / "lambda" / "vms.csv"
    f.write_text(f.read_text().replace("15.92", "14.00"))
    b = load_catalog(d)
    assert b is not a
    assert {o.price for o in b.offers("A100", 8)} == {14.0}
