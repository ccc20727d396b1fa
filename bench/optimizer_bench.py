"""Benchmark: styx's optimizer vs SkyPilot's on the same catalogs and the same requests.

Prints, for styx and for SkyPilot (skypilot==0.14.1, run in its own virtualenv):

* load: reading and indexing the catalogs (styx; SkyPilot loads lazily inside its first query);
* cold: a new process that imports, loads the catalogs and answers one request (median of a few);
* warm: requests per second and p50/p99 latency of repeated requests in one process;
* the ratios, and the agreement rate: the same cheapest $/hour (to 1e-6) for the same request.

The catalogs are the v8 CSVs in shared/catalog/skypilot (see its SOURCE.md). SkyPilot reads them from
``~/.sky/catalogs/v8/<cloud>/vms.csv`` in a temporary HOME; with no ``.meta/*.md5`` beside them it
treats them as user-edited and never downloads a fresh copy (``sky/catalog/common.py:read_catalog``).
Its ``common/accelerators.csv`` (canonical GPU names) is generated from the same CSVs. Enabled clouds
are patched in (AWS, GCP, Lambda) as no credentials exist here. Not a test: numbers only.

    .venv/bin/python bench/optimizer_bench.py [--catalogs DIR] [--sky-python PATH] [--warm-seconds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SKY_VERSION = "0.14.1"
SKY_INSTALL = f"python3 -m venv /tmp/skyvenv && /tmp/skyvenv/bin/pip install skypilot=={SKY_VERSION}"
FILES = {  # cloud -> file name in shared/catalog/skypilot/<cloud>/
    "aws": "vms_subset_p_family.csv",
    "gcp": "vms_subset_gpu.csv",
    "lambda": "vms.csv",
}


def default_catalogs() -> Path:
    env = os.environ.get("STYX_SKYPILOT_CATALOG")
    for p in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "catalog" / "skypilot",
                                              Path("/work/shared/catalog/skypilot")]:
        if all((p / c / f).is_file() for c, f in FILES.items()):
            return p
    raise SystemExit("shared/catalog/skypilot not found: pass --catalogs DIR")


def layout(src: Path, dst: Path) -> Path:
    """DIR/<cloud>/vms.csv symlinks to the shared files (whose names differ)."""
    for cloud, name in FILES.items():
        (dst / cloud).mkdir(parents=True, exist_ok=True)
        (dst / cloud / "vms.csv").symlink_to(src / cloud / name)
    return dst


def requests_for(catalog) -> list[dict]:
    """Every (accelerator, count) in the catalogs, on demand and spot; plus filtered/constrained ones."""
    pairs = sorted({(o.accelerator, o.accelerator_count) for o in catalog.all_offers() if o.accelerator},
                   key=lambda p: (p[0].lower(), p[1]))
    reqs = [{"accelerators": f"{a}:{c}", "spot": s} for a, c in pairs for s in (False, True)]
    reqs += [
        {"accelerators": "A100:8", "spot": False, "cloud": "gcp"},
        {"accelerators": "A100:8", "spot": True, "cloud": "gcp"},
        {"accelerators": "H100:8", "spot": True, "cloud": "aws"},
        {"accelerators": "H100:8", "spot": False, "cloud": "gcp"},
        {"accelerators": "A100:8", "spot": False, "cpus": "96+"},
        {"accelerators": "A100:8", "spot": False, "cpus": "124"},
        {"accelerators": "H100:8", "spot": False, "memory": "1800+"},
        {"accelerators": "A100:1", "spot": True, "cpus": "12"},
        {"accelerators": "B200:8", "spot": False, "cloud": "gcp"},
        {"accelerators": "L4:1", "spot": False},
        {"accelerators": "P100:1", "spot": False},
    ]
    return reqs


def label(r: dict) -> str:
    s = r["accelerators"] + (" spot" if r["spot"] else "")
    for k in ("cloud", "cpus", "memory"):
        if r.get(k):
            s += f" {k}={r[k]}"
    return s


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


# --------------------------------------------------------------------------- styx

STYX_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from styx.model.catalog import load_catalog
from styx.model.optimizer import resolve
t1 = time.perf_counter()
cat = load_catalog({cat!r})
t2 = time.perf_counter()
plan = resolve({req!r}, cat)
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "load": t2 - t1, "query": t3 - t2,
                  "price": plan.choice and plan.choice.price_per_hour}}))
"""


def styx_to_request(r: dict) -> dict:
    d = {"accelerators": r["accelerators"], "spot": r["spot"]}
    for k in ("cpus", "memory"):
        if r.get(k):
            d[k] = r[k]
    if r.get("cloud"):
        d["clouds"] = [r["cloud"]]
    return d


def cold_env(tmp: Path) -> dict:
    """Child environment for cold runs: byte-compiled modules cached (in a temp prefix, not the repo), as
    after an install; some shells export PYTHONDONTWRITEBYTECODE, which would time the compiler instead."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def bench_styx(cat_dir: Path, reqs: list[dict], warm_seconds: float, cold_runs: int, tmp: Path) -> dict:
    from styx.model.catalog import load_catalog
    from styx.model.optimizer import resolve

    loads = []
    for _ in range(7):
        c = load_catalog(cat_dir, use_cache=False)
        loads.append(c.load_seconds)
    cat = load_catalog(cat_dir)

    colds, parts = [], []
    env = cold_env(tmp)
    code = STYX_COLD.format(root=str(ROOT), cat=str(cat_dir), req=styx_to_request(reqs[0]))
    for i in range(cold_runs + 1):  # the first run fills the bytecode cache and is not counted
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        if i:
            colds.append(time.perf_counter() - t)
            parts.append(json.loads(out.stdout))

    sreqs = [styx_to_request(r) for r in reqs]
    answers = []
    for r in sreqs:
        ch = resolve(r, cat).choice
        answers.append(None if ch is None else {"cloud": ch.cloud, "region": ch.region, "zone": ch.zone,
                                                "instance_type": ch.instance_type, "price": ch.price_per_hour})
    lat: list[float] = []
    clock = time.perf_counter_ns
    t_end = time.perf_counter() + warm_seconds
    t_start = time.perf_counter()
    while time.perf_counter() < t_end:
        for r in sreqs:
            t0 = clock()
            resolve(r, cat)
            lat.append((clock() - t0) / 1e9)
    wall = time.perf_counter() - t_start
    return {
        "load_s": statistics.median(loads),
        "offers": cat.n_offers,
        "rows": {c: s.rows for c, s in cat.sources.items()},
        "cold_s": statistics.median(colds),
        "cold_import_s": statistics.median(p["import"] for p in parts),
        "cold_load_s": statistics.median(p["load"] for p in parts),
        "cold_query_s": statistics.median(p["query"] for p in parts),
        "warm_calls": len(lat),
        "warm_rps": len(lat) / wall,
        "warm_p50_s": pct(lat, 50),
        "warm_p99_s": pct(lat, 99),
        "answers": answers,
    }


# --------------------------------------------------------------------------- SkyPilot

SKY_WORKER = r"""
import json, sys, time, logging
t0 = time.perf_counter()
from unittest import mock
import sky
from sky import check as sky_check, clouds, dag as dag_lib, exceptions, optimizer, resources as resources_lib
from sky import task as task_lib
t_import = time.perf_counter() - t0
reqs = json.load(open(sys.argv[1]))
out_path, mode, warm_seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
CLOUDS = {"aws": clouds.AWS(), "gcp": clouds.GCP(), "lambda": clouds.Lambda()}

def one(r):
    kw = {"accelerators": r["accelerators"], "use_spot": r["spot"]}
    for k in ("cpus", "memory"):
        if r.get(k):
            kw[k] = r[k]
    if r.get("cloud"):
        kw["cloud"] = CLOUDS[r["cloud"]]
    with dag_lib.Dag() as dag:
        t = task_lib.Task(run="true")
        t.set_resources(resources_lib.Resources(**kw))
    try:
        optimizer.Optimizer.optimize(dag, quiet=True)
    except exceptions.ResourcesUnavailableError:
        return None
    b = dag.tasks[0].best_resources
    return {"cloud": str(b.cloud).lower(), "region": b.region, "zone": b.zone,
            "instance_type": b.instance_type, "price": b.get_cost(3600)}

res = {"version": sky.__version__, "import": t_import}
with mock.patch.object(sky_check, "get_cached_enabled_clouds_or_refresh", return_value=list(CLOUDS.values())):
    if mode == "cold":
        t1 = time.perf_counter()
        res["answer"] = one(reqs[0])
        res["query"] = time.perf_counter() - t1
    else:
        answers, first = [], []
        for r in reqs:
            t1 = time.perf_counter()
            answers.append(one(r))
            first.append(time.perf_counter() - t1)
        lat = []
        t_start = time.perf_counter()
        t_end = t_start + warm_seconds
        passes = 0
        while passes < 2 or time.perf_counter() < t_end:  # at least two passes over every request
            passes += 1
            for r in reqs:
                t1 = time.perf_counter()
                one(r)
                lat.append(time.perf_counter() - t1)
        res.update(answers=answers, first=first, lat=lat, wall=time.perf_counter() - t_start)
json.dump(res, open(out_path, "w"))
"""


def find_sky_python(explicit: str | None) -> tuple[str | None, str]:
    cands = [explicit] if explicit else [os.environ.get("STYX_BENCH_SKY_PYTHON"), "/tmp/skyvenv/bin/python",
                                         sys.executable]
    for py in cands:
        if not py or not Path(py).exists():
            continue
        p = subprocess.run([py, "-c", "import sky; print(sky.__version__)"], capture_output=True, text=True)
        if p.returncode == 0:
            return py, p.stdout.strip()
    return None, ""


def sky_home(src: Path, tmp: Path) -> Path:
    home = tmp / "skyhome"
    v8 = home / ".sky" / "catalogs" / "v8"
    names: dict[str, set[str]] = {}
    for cloud, name in FILES.items():
        (v8 / cloud).mkdir(parents=True)
        shutil.copy(src / cloud / name, v8 / cloud / "vms.csv")
        if (src / cloud / "images.csv").is_file():
            shutil.copy(src / cloud / "images.csv", v8 / cloud / "images.csv")
        with open(v8 / cloud / "vms.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("AcceleratorName"):
                    names.setdefault(row["AcceleratorName"], set()).add({"aws": "AWS", "gcp": "GCP"}.get(
                        cloud, "Lambda"))
    (v8 / "common").mkdir()
    with open(v8 / "common" / "accelerators.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["AcceleratorName", "Clouds"])
        for n in sorted(names):
            w.writerow([n, str(sorted(names[n]))])
    (v8 / "common" / "metadata.csv").write_text("GPU,MemoryGB,Manufacturer\n")
    return home


def run_sky(py: str, home: Path, reqs: list[dict], mode: str, warm_seconds: float, tmp: Path) -> dict:
    rf, of, wf = tmp / "reqs.json", tmp / f"sky-{mode}.json", tmp / "sky_worker.py"
    rf.write_text(json.dumps(reqs))
    wf.write_text(SKY_WORKER)
    env = {k: v for k, v in cold_env(tmp).items() if not k.startswith(("SKY", "STYX"))}
    env.update(HOME=str(home), SKYPILOT_DISABLE_USAGE_COLLECTION="1", SKYPILOT_DEBUG="0")
    t = time.perf_counter()
    p = subprocess.run([py, str(wf), str(rf), str(of), mode, str(warm_seconds)], capture_output=True, text=True,
                       env=env, cwd=tmp, timeout=1800)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"skypilot worker failed ({p.returncode}):\n{p.stderr[-3000:]}")
    res = json.loads(of.read_text())
    res["process_wall"] = wall
    return res


def bench_sky(py: str, src: Path, reqs: list[dict], warm_seconds: float, cold_runs: int, tmp: Path) -> dict:
    home = sky_home(src, tmp)
    colds = [run_sky(py, home, reqs, "cold", 0, tmp) for _ in range(cold_runs + 1)][1:]  # first: warm-up
    warm = run_sky(py, home, reqs, "warm", warm_seconds, tmp)
    lat = warm["lat"]
    return {
        "version": warm["version"],
        "cold_s": statistics.median(c["process_wall"] for c in colds),
        "cold_import_s": statistics.median(c["import"] for c in colds),
        "cold_query_s": statistics.median(c["query"] for c in colds),
        "warm_calls": len(lat),
        "warm_rps": len(lat) / warm["wall"] if lat else 0.0,
        "warm_p50_s": pct(lat, 50) if lat else float("nan"),
        "warm_p99_s": pct(lat, 99) if lat else float("nan"),
        "answers": warm["answers"],
    }


# --------------------------------------------------------------------------- main


def fmt_s(s: float) -> str:
    return f"{s * 1e6:.0f} us" if s < 1e-3 else f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalogs", type=Path, default=None, help="shared/catalog/skypilot")
    ap.add_argument("--sky-python", default=None, help="python of a venv with skypilot (default /tmp/skyvenv)")
    ap.add_argument("--warm-seconds", type=float, default=3.0)
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--no-skypilot", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()

    src = args.catalogs or default_catalogs()
    tmp = Path(tempfile.mkdtemp(prefix="styx-bench-"))
    try:
        cat_dir = layout(src, tmp / "catalogs")
        from styx.model.catalog import load_catalog

        reqs = requests_for(load_catalog(cat_dir))
        print(f"catalogs: {src}  ({', '.join(f'{c}/{n}' for c, n in FILES.items())})")
        print(f"requests: {len(reqs)} (every accelerator:count on demand and spot, plus filtered ones)")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (p99s are sensitive to load)")
        st = bench_styx(cat_dir, reqs, args.warm_seconds, args.cold_runs, tmp)
        rows = ", ".join(f"{c} {n}" for c, n in sorted(st["rows"].items()))
        print(f"\nstyx      catalog load (csv + index): {fmt_s(st['load_s'])}  [{rows} rows -> {st['offers']} offers]")
        print(f"styx      cold (new process, 1 request): {fmt_s(st['cold_s'])}  (import {fmt_s(st['cold_import_s'])}, "
              f"load {fmt_s(st['cold_load_s'])}, query {fmt_s(st['cold_query_s'])})")
        print(f"styx      warm: {st['warm_calls']} calls, {st['warm_rps']:,.0f} req/s, p50 {fmt_s(st['warm_p50_s'])}, "
              f"p99 {fmt_s(st['warm_p99_s'])}")
        out = {"requests": reqs, "styx": st}

        py, _ = (None, "") if args.no_skypilot else find_sky_python(args.sky_python)
        if py is None:
            print(f"\nskypilot not installed: install with `{SKY_INSTALL}` (or pass --sky-python)")
        else:
            sk = bench_sky(py, src, reqs, args.warm_seconds, args.cold_runs, tmp)
            out["skypilot"] = sk
            print(f"\nskypilot  {sk['version']} ({py})")
            print(f"skypilot  cold (new process, 1 request): {fmt_s(sk['cold_s'])}  (import "
                  f"{fmt_s(sk['cold_import_s'])}, first query incl. lazy catalog load {fmt_s(sk['cold_query_s'])})")
            print(f"skypilot  warm: {sk['warm_calls']} calls, {sk['warm_rps']:,.1f} req/s, p50 "
                  f"{fmt_s(sk['warm_p50_s'])}, p99 {fmt_s(sk['warm_p99_s'])}")
            print("\nratios (skypilot / styx):")
            print(f"  warm p50 latency {sk['warm_p50_s'] / st['warm_p50_s']:,.0f}x, "
                  f"p99 {sk['warm_p99_s'] / st['warm_p99_s']:,.0f}x, "
                  f"throughput {st['warm_rps'] / sk['warm_rps']:,.0f}x; cold {sk['cold_s'] / st['cold_s']:.1f}x")
            agree, diffs = 0, []
            for r, a, b in zip(reqs, st["answers"], sk["answers"], strict=True):
                pa = a and a["price"]
                pb = b and b["price"]
                same = (pa is None and pb is None) or (pa is not None and pb is not None and abs(pa - pb) <= 1e-6)
                agree += same
                if not same:
                    diffs.append((r, a, b))
            n = len(reqs)
            print(f"\nagreement: {agree}/{n} = {agree / n:.1%} same cheapest $/hour (|diff| <= 1e-6)")
            for r, a, b in diffs:
                def show(x):
                    if not x:
                        return "no offer"
                    return f"{x['cloud']}/{x['region']}/{x['zone'] or '-'} {x['instance_type']} ${x['price']:.5f}"

                print(f"  differs: {label(r):32} styx: {show(a):55} skypilot: {show(b)}")
            out["agreement"] = {"same": agree, "total": n, "differs": [[label(r), a, b] for r, a, b in diffs]}
        if args.json:
            args.json.write_text(json.dumps(out, indent=1, default=str))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
