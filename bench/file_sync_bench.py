"""File sync of a real tree (issue 11): a generated tree (default 100 MB in 10,000 files) synced to a
3-node local cluster, then a no-op `up`, then one changed file. Numbers, never asserts.

The cluster runs no Ray and no packages, so the timed `up`s hold only the sync: the copy resource
(`command.remote.CopyToRemote`, SFTP) and the file_sync phase on each node. Packing is timed apart
(cold: the archive is written; warm: found in the cache by the tree's fingerprint).

    .venv/bin/python bench/file_sync_bench.py [--mb 100] [--files 10000] [--json OUT]

Cluster `bench-sync` on 10.94.0.0/24; everything is destroyed in a `finally`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchStack, json_dump, log, machine_line, table


def make_tree(root: Path, mb: int, files: int) -> None:
    per = mb * 2**20 // files
    for i in range(files):
        d = root / f"d{i % 100:02d}" / f"s{(i // 100) % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.bin").write_bytes(os.urandom(per))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--subnet", default="10.94.0.0/24")
    ap.add_argument("--json")
    a = ap.parse_args()
    from styx.components.filesync import pack
    from styx.model.config import FileMount

    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    tree = tmp / "tree"
    log(f"generating {a.mb} MB in {a.files} files under {tree}")
    make_tree(tree, a.mb, a.files)
    mounts = [FileMount(local=str(tree), remote="/opt/bench/tree")]
    cache = tmp / "cache"
    t = time.monotonic()
    bundle = pack(mounts, tmp, cache=cache)
    pack_cold = time.monotonic() - t
    t = time.monotonic()
    pack(mounts, tmp, cache=cache)
    pack_warm = time.monotonic() - t
    cluster = {"name": "bench-sync", "cloud": "local", "local": {"subnet": a.subnet, "shm_size": "256m"},
               "head": {}, "workers": [{"name": "worker", "count": a.workers}],
               "setup": {"ray": {"enabled": False}, "python": {"version": "system"}}}
    s = BenchStack("bench-sync", cluster, tmp)
    rows, data = [], {"machine": machine_line(), "mb": a.mb, "files": a.files, "archive_bytes": 0}
    try:
        log("up without file mounts (sandboxes)")
        base = s.up()
        rows.append(["nodes, no mount (sandboxes + gate)", base.seconds, sum(base.changes.values())])
        with_mount = {**cluster, "setup": {**cluster["setup"], "file_mounts": [m.model_dump() for m in mounts]}}
        s.reconfigure(with_mount)
        log("up with the tree mounted")
        first = s.up()
        rows.append([f"sync {a.mb} MB / {a.files} files to {a.workers + 1} nodes", first.seconds,
                     len(first.timeline.changed())])
        noop = s.up()
        rows.append(["no-op up (tree unchanged)", noop.seconds, len(noop.timeline.changed())])
        one = next(tree.rglob("f00042.bin"))
        one.write_bytes(os.urandom(one.stat().st_size))
        change = s.up()
        rows.append(["one file changed", change.seconds, len(change.timeline.changed())])
        ip = s.outputs()["head_ip"]
        n = s.ssh(ip, "find /opt/bench/tree -type f | wc -l").stdout.strip()
        data.update(archive_bytes=os.path.getsize(bundle.path), files_on_head=int(n),
                    copy_s=first.timeline.dur("bench-sync-head-file_sync-copy"),
                    extract_s=first.timeline.dur("bench-sync-head-file_sync"),
                    changed_on_one_file=sorted(change.timeline.changed()))
    finally:
        s.teardown()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [["pack (cold: written)", pack_cold, "-"], ["pack (warm: cache hit)", pack_warm, "-"], *rows]
    data["rows"] = rows
    print(machine_line())
    print(table(f"file sync, {a.mb} MB in {a.files} files, archive {data['archive_bytes'] / 2**20:.0f} MiB, "
                f"files on the head afterwards: {data.get('files_on_head')}",
                ["step", "seconds", "resources run"], rows))
    print(f"head: copy {data.get('copy_s') or 0:.1f} s, extract {data.get('extract_s') or 0:.1f} s; "
          f"one-file change ran: {', '.join(data.get('changed_on_one_file') or [])}")
    json_dump(a.json, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
