#!/usr/bin/env python3
"""Images (issue 17): time to 3 alive Ray nodes from an image of a set-up head vs a warm launch without it.

    .venv/bin/python bench/image_bench.py [--rounds 1] [--json OUT]

1. A source cluster (the default stack's setup, 1 node) is launched (`styx.app.api.launch`: this also warms
   the wheel cache, so the plain launches below are "warm") and `styx.app.images.create` makes an image of
   its head (timed); the source is then taken down (the image stays).
2. Each round: a 3-node cluster without the image ("warm": wheel cache full) and the same cluster with
   `head.image` / `workers[].image` set to the image, in alternating order; each timed from the start of
   its `up` to 3 alive Ray nodes (bench._common.wait_alive), with the CPU seconds spent in its nodes; each
   torn down before the next.
3. The image is deleted (`styx.app.images.delete`).
Numbers are printed, never asserted. Clusters `ib…` on 10.127.0.0/24 .. 10.127.2.0/24; everything made is
destroyed in a `finally` (the temp state backend and its workspaces removed).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import (
    BenchStack,
    fmt,
    loadavg,
    local_cluster,
    log,
    machine_line,
    node_cpu_seconds,
    sandbox_cleanup,
    table,
    wait_alive,
)

IMAGE = "ibench"
SRC, PLAIN, FROM = ("ibsrc", "10.127.0.0/24"), ("ibplain", "10.127.1.0/24"), ("ibimg", "10.127.2.0/24")


def _cluster(name: str, subnet: str, image: str | None = None, workers: int = 2) -> dict:
    c = local_cluster(name, subnet)
    c["workers"][0]["count"] = workers
    if workers == 0:
        c["workers"] = []
    if image:
        c["head"] = {**c.get("head", {}), "image": image}
        for g in c["workers"]:
            g["image"] = image
    return c


def timed_launch(name: str, subnet: str, image: str | None, tmp: Path) -> dict:
    s = BenchStack(name, _cluster(name, subnet, image), tmp / name)
    load0 = loadavg()
    try:
        t0 = time.monotonic()
        run = s.up()
        head = s.outputs()["head_ip"]
        ready = wait_alive(s.access(), head, 3, t0)
        cpu = node_cpu_seconds(name)
        phases = s.outputs()["phase_results"]
        return {"name": name, "image": image, "up_s": run.seconds, "alive_s": ready.seconds, "node_cpu_s": cpu,
                "host_cpu_s": run.host_cpu_s, "load_before": load0, "load_after": loadavg(),
                "python_env": {n: p.get("python_env", "")[:90] for n, p in phases.items()},
                "system_packages": {n: p.get("system_packages", "")[:90] for n, p in phases.items()}}
    finally:
        s.teardown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    from styx.app import api, images
    from styx.app.project import StyxError, make_engine

    tmp = Path(tempfile.mkdtemp(prefix="styx-image-bench-"))
    backend = f"file://{tmp / 'state'}"
    log(f"{machine_line()}; load {loadavg()}")
    rows, made = [], None
    try:
        src = _cluster(*SRC, workers=0)
        api.launch(copy.deepcopy(src), stack=SRC[0], backend=backend, failover=False, on_info=lambda _m: None)
        load0, t0 = loadavg(), time.monotonic()
        made = images.create(IMAGE, "head", stack=SRC[0], backend=backend)
        made_s = time.monotonic() - t0
        log(f"image {IMAGE} made in {made_s:.1f} s (load {load0} -> {loadavg()})")
        api.down(SRC[0], backend=backend, on_info=lambda _m: None)
        for r in range(args.rounds):
            order = [(PLAIN, None), (FROM, IMAGE)]
            if r % 2:
                order.reverse()
            for (name, subnet), image in order:
                log(f"round {r + 1}: {name} ({'image ' + image if image else 'no image, wheel cache warm'})")
                rows.append({"round": r + 1, **timed_launch(name, subnet, image, tmp)})
                log(f"  3 alive in {fmt(rows[-1]['alive_s'])} s (load {rows[-1]['load_before']} -> "
                    f"{rows[-1]['load_after']})")
    finally:
        for name, subnet in (SRC, PLAIN, FROM):
            sandbox_cleanup(name, _cluster(name, subnet))
        if made is not None:
            try:
                images.delete(IMAGE, backend=backend)
            except StyxError as e:
                log(f"image delete: {e}")
        # the temp backend's state and its workspaces under $STYX_HOME/workspaces/<backend key>/
        shutil.rmtree(make_engine(backend).work_dir("_").parent, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    plain = [x["alive_s"] for x in rows if not x["image"] and x["alive_s"]]
    img = [x["alive_s"] for x in rows if x["image"] and x["alive_s"]]
    print(table("3 alive Ray nodes: from an image vs warm without it",
                ["run", "round", "3 alive s", "up s", "CPU s nodes", "load before", "load after"],
                [[x["name"], x["round"], fmt(x["alive_s"]), fmt(x["up_s"]), fmt(x["node_cpu_s"]), x["load_before"],
                  x["load_after"]] for x in rows]))
    if plain and img:
        print(f"image create: {made_s:.1f} s; median 3 alive: warm {statistics.median(plain):.1f} s, from the image "
              f"{statistics.median(img):.1f} s, ratio {statistics.median(img) / statistics.median(plain):.2f}")
    for x in rows:
        print(x["name"], json.dumps({"python_env": x["python_env"]["head"], "system_packages":
                                     x["system_packages"]["head"]}))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"image_create_s": made_s, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
