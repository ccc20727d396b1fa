"""File mounts (local -> remote) packed into one deterministic, content-addressed archive.

The archive is a file in a local cache (`$STYX_HOME/sync/<sha256>.tar.gz`), copied to each node by
its transport (`CopyToRemote` over SFTP; stdin through kubectl) and unpacked there by the file_sync
phase, so a tree of any size syncs and nothing large sits in a command or the Pulumi state (the state
holds the archive's path and hash). Same content gives the same bytes (sorted entries, fixed mtimes
and owners, gzip mtime 0): the hash changes only when a synced file does.

Left out: `.git/`, `__pycache__/`, the patterns of a `.styxignore` at the top of a mounted folder,
and the mount's `exclude` list (gitignore style: `*.ckpt`, `data/` (folders only), `/build` (from the
top only), `a/**/b`).

Re-packing an unchanged tree is skipped: an index maps a fingerprint of every file's path, size,
mtime and mode to the archive it gave.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from styx.model.config import CONFIG_KEY, FileMount

ALWAYS_EXCLUDED = (".git/", "__pycache__/")
IGNORE_FILE = ".styxignore"
KEEP_DAYS = 14  # cached archives unused this long are removed


class FileSyncError(ValueError):
    pass


@dataclass(frozen=True)
class SyncBundle:
    path: str  # the local archive
    sha256: str
    files: int
    size: int  # bytes of file content

    @property
    def remote_path(self) -> str:
        """Where the transport puts it on a node (relative: in the SSH user's home)."""
        return f".cache/styx/sync/{self.sha256}.tar.gz"


def cache_dir() -> Path:
    home = Path(os.environ.get("STYX_HOME", Path.home() / ".styx")).expanduser()
    return home / "sync"


# --------------------------------------------------------------------------- excludes


def _patterns(root: Path, extra: list[str]) -> list[str]:
    pats = list(ALWAYS_EXCLUDED)
    f = root / IGNORE_FILE
    if root.is_dir() and f.is_file():
        for line in f.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and not line.startswith("!"):
                pats.append(line)
    return pats + list(extra)


def excluded(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore-style match of a path relative to the mount's folder."""
    name = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        dir_only = pat.endswith("/")
        p = pat.rstrip("/")
        if dir_only and not is_dir:
            continue
        if p.startswith("/"):
            if fnmatch.fnmatchcase(rel, p[1:]):
                return True
        elif "/" in p:
            if fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(rel, p.replace("**/", "")):
                return True
        elif fnmatch.fnmatchcase(name, p):
            return True
    return False


# --------------------------------------------------------------------------- walking


def _walk(i: int, m: FileMount, base_dir: Path) -> list[tuple[str, Path, os.stat_result]]:
    """[(archive name, source, stat)] for one mount, sorted; directories included."""
    src = (base_dir / m.local).resolve()
    field = f"{CONFIG_KEY}.setup.file_mounts[{i}]"
    if not src.exists():
        raise FileSyncError(f"{field}.local: {m.local!r} does not exist (relative to {base_dir})")
    top = m.remote.strip("/")
    if src.is_file():
        return [(top, src, src.stat())]
    pats = _patterns(src, m.exclude)
    out: list[tuple[str, Path, os.stat_result]] = [(top, src, src.stat())]
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        d = Path(dirpath)
        rel_d = d.relative_to(src).as_posix()
        rel_d = "" if rel_d == "." else rel_d + "/"
        keep = []
        for n in sorted(dirnames):
            rel = rel_d + n
            if (d / n).is_symlink():  # a link to a folder: synced as a link, not followed
                filenames.append(n)
            elif not excluded(rel, True, pats):
                keep.append(n)
        dirnames[:] = keep
        for n in dirnames:
            out.append((f"{top}/{rel_d}{n}", d / n, (d / n).lstat()))
        for n in sorted(set(filenames)):
            rel = rel_d + n
            if excluded(rel, False, pats):
                continue
            if any(ord(c) < 32 or ord(c) == 127 for c in rel):
                raise FileSyncError(f"{field}.local: {str(d / n)!r} has a control character in its name "
                                    "(allowed: names without newlines or other control characters)")
            out.append((f"{top}/{rel}", d / n, (d / n).lstat()))
    return sorted(out)


def _fingerprint(entries: list[tuple[str, Path, os.stat_result]]) -> str:
    h = hashlib.sha256()
    for name, _src, st in entries:
        h.update(f"{name}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _write(entries: list[tuple[str, Path, os.stat_result]], dest: Path) -> tuple[str, int]:
    fd, tmp = tempfile.mkstemp(prefix=".pack-", dir=dest)
    size = 0
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, src, st in entries:
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
                if src.is_symlink():
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(src), 0o777
                    tar.addfile(info)
                elif src.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                elif src.is_file():
                    info.size, info.mode = st.st_size, (0o755 if st.st_mode & 0o111 else 0o644)
                    with open(src, "rb") as f:
                        tar.addfile(info, f)
                    size += st.st_size
        h = hashlib.sha256()
        with open(tmp, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        sha = h.hexdigest()
        os.replace(tmp, dest / f"{sha}.tar.gz")
        return sha, size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def pack(mounts: list[FileMount], base_dir: Path, cache: Path | None = None) -> SyncBundle:
    """The archive of every mount (member paths relative to /), made or found in the cache."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[str, Path, os.stat_result]] = []
    for i, m in enumerate(mounts):
        entries += _walk(i, m, base_dir)
    fp = _fingerprint(entries)
    index_file = cache / "index.json"
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError):
        index = {}
    hit = index.get(fp)
    if hit and (cache / f"{hit['sha256']}.tar.gz").is_file():
        sha, size = hit["sha256"], hit["size"]
        os.utime(cache / f"{sha}.tar.gz")
    else:
        sha, size = _write(entries, cache)
        index[fp] = {"sha256": sha, "size": size, "used": time.time()}
        _prune(cache, index)
        tmp = index_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, index_file)
    files = sum(1 for _n, src, _st in entries if not src.is_dir() or src.is_symlink())
    return SyncBundle(path=str(cache / f"{sha}.tar.gz"), sha256=sha, files=files, size=size)


def _prune(cache: Path, index: dict) -> None:
    cutoff = time.time() - KEEP_DAYS * 86400
    for f in cache.glob("*.tar.gz"):
        try:
            if f.stat().st_mtime < cutoff:
                f.unlink()
        except OSError:
            pass
    for k in [k for k, v in index.items() if not (cache / f"{v['sha256']}.tar.gz").is_file()]:
        del index[k]
