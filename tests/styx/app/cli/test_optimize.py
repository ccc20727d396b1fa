"""`styx optimize` / `styx show-gpus` through click's CliRunner: output, --json shape, exit codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from styx.app.cli import main

DATA = Path(__file__).resolve().parents[2] / "model" / "catalog" / "data"
CHOICE_KEYS = {"cloud", "region", "zone", "instance_type", "spot", "accelerators", "price_per_hour"}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx-home"))
    monkeypatch.delenv("SKY_RUNTIME_DIR", raising=False)


def run(*args):
    return CliRunner().invoke(main, [*args], catch_exceptions=False)


def opt(*args):
    return run("optimize", "--catalog", str(DATA), *args)


def test_optimize_prints_choice_and_alternatives():
    r = opt("--accelerators", "A100:8")
    assert r.exit_code == 0, r.output
    assert "Cheapest: lambda/us-east-1  gpu_8x_a100  A100:8  on-demand  $15.9200/h" in r.stdout
    assert "p4d.24xlarge" in r.stdout and "a2-highgpu-8g" in r.stdout  # the table of alternatives
    assert "$29.3871" in r.stdout and "+85%" in r.stdout


def test_optimize_json_shape():
    r = opt("--accelerators", "A100:8", "--spot", "--json", "--top", "3")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)  # stdout is exactly one JSON document
    assert set(d["choice"]) >= CHOICE_KEYS
    c = d["choice"]
    got = tuple(c[k] for k in ("cloud", "region", "zone", "instance_type", "spot", "accelerators", "price_per_hour"))
    assert got == ("aws", "us-east-1", "use1-az1", "p4d.24xlarge", True, "A100:8", 5.0)
    assert 1 <= len(d["alternatives"]) <= 3
    for a in d["alternatives"]:
        assert set(a) >= CHOICE_KEYS
    prices = [c["price_per_hour"]] + [a["price_per_hour"] for a in d["alternatives"]]
    assert prices == sorted(prices)
    assert "lambda: no spot offer with A100:8" in d["reasons"]


def test_optimize_infeasible_exit_1_with_reasons():
    r = opt("--accelerators", "A100:8", "--cpus", "500+")
    assert r.exit_code == 1
    assert "No feasible offer for A100:8, cpus>=500" in r.stderr
    assert "gcp: no offer with A100:8 and cpus>=500" in r.stderr
    r = opt("--accelerators", "A100:8", "--cpus", "500+", "--json")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["choice"] is None and d["alternatives"] == [] and len(d["reasons"]) == 3


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--accelerators", "A1000:8"], "did you mean A100"),
        (["--accelerators", "A100:0"], "accelerators"),
        (["--accelerators", "A100:8", "--cpus", "abc"], "cpus: 'abc' is not a size"),
        (["--any-of", "A100:8", "--ordered", "H100:8"], "cannot be combined"),
        (["--accelerators", "A100:8", "--cloud", "awz"], "unknown cloud 'awz'"),
        (["--accelerators", "A100:8", "--block", "a/b/c/d"], "blocklist"),
        (["--top", "-1"], "--top"),
        (["--bogus"], "No such option"),
    ],
)
def test_optimize_bad_usage_exit_2(args, needle):
    r = opt(*args, "--json")
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert r.stdout == ""  # --json: nothing but JSON on stdout, and here there is none


def test_optimize_any_of_ordered_filters_and_block():
    d = json.loads(opt("--any-of", "H100:8", "--any-of", "A100:8", "--json").stdout)
    assert d["choice"]["accelerators"] == "A100:8"
    d = json.loads(opt("--ordered", "H100:8", "--ordered", "A100:8", "--json").stdout)
    assert d["choice"]["accelerators"] == "H100:8" and d["choice"]["cloud"] == "aws"
    d = json.loads(opt("-a", "A100:8", "--cloud", "gcp", "--cloud", "aws", "--region", "us-central1", "--json").stdout)
    assert (d["choice"]["cloud"], d["choice"]["zone"]) == ("gcp", "us-central1-a")
    d = json.loads(opt("-a", "A100:8", "--cloud", "gcp", "--block", "gcp/us-central1/us-central1-a", "--json").stdout)
    assert d["choice"]["zone"] == "us-central1-b"
    assert "gcp/us-central1/us-central1-a: blocked" in d["reasons"]
    d = json.loads(opt("-a", "A100:8", "--num-nodes", "3", "--json").stdout)
    assert d["choice"]["price_per_hour"] == pytest.approx(3 * 15.92)


def test_optimize_request_file_for_a_cluster(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text("head: {cpus: 8+}\nworkers:\n  - {name: gpu, count: 2, accelerators: A100:8, spot: true}\n")
    r = opt("--request", str(f), "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["choice"]
    assert c["cloud"] == "aws" and c["price_per_hour"] == pytest.approx(0.384 + 10.0)
    assert [(n["group"], n["count"], n["spot"]) for n in c["nodes"]] == [("head", 1, False), ("gpu", 2, True)]
    r = opt("--request", str(f))
    assert r.exit_code == 0 and "head: 1x m6i.2xlarge; gpu: 2x p4d.24xlarge" in r.stdout
    r = opt("--request", str(f), "--accelerators", "A100:8")
    assert r.exit_code == 2


def test_stale_catalog_warns_on_stderr_only(tmp_path):
    d = tmp_path / "cat" / "lambda"
    d.mkdir(parents=True)
    (d / "vms.csv").write_bytes((DATA / "lambda" / "vms.csv").read_bytes())
    old = time.time() - 8 * 86400
    os.utime(d / "vms.csv", (old, old))
    r = run("optimize", "--catalog", str(tmp_path / "cat"), "-a", "A100:8", "--json")
    assert r.exit_code == 0
    assert "WARNING: the lambda catalog" in r.stderr and "8.0 days old" in r.stderr
    d = json.loads(r.stdout)
    assert d["choice"]["price_per_hour"] == 15.92 and len(d["warnings"]) == 1


def test_no_catalog_exit_1():
    r = run("optimize", "-a", "A100:8")
    assert r.exit_code == 1 and "styx catalog refresh" in r.stderr


def test_show_gpus_table_and_json():
    r = run("show-gpus", "--catalog", str(DATA))
    assert r.exit_code == 0, r.output
    assert "A100-80GB" in r.stdout and "p4de.24xlarge" in r.stdout
    r = run("show-gpus", "a100", "--catalog", str(DATA), "--json")
    rows = json.loads(r.stdout)
    assert {row["accelerator"] for row in rows} == {"A100"}
    p4d = next(row for row in rows if row["instance_type"] == "p4d.24xlarge")
    assert (p4d["count"], p4d["cloud"], p4d["price"], p4d["price_where"], p4d["spot_price"], p4d["spot_where"]) == (
        8, "aws", 20.0, "us-east-1/use1-az1", 5.0, "us-east-1/use1-az1")
    rows = json.loads(run("show-gpus", "A100:1", "--catalog", str(DATA), "--json").stdout)
    assert [(row["cloud"], row["instance_type"]) for row in rows] == [("gcp", "a2-highgpu-1g")]
    rows = json.loads(run("show-gpus", "--cloud", "lambda", "--catalog", str(DATA), "--json").stdout)
    assert {row["cloud"] for row in rows} == {"lambda"}


def test_show_gpus_unknown_name_exit_2():
    r = run("show-gpus", "H1000", "--catalog", str(DATA))
    assert r.exit_code == 2 and "did you mean" in r.stderr and "H100" in r.stderr
