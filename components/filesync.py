"""File mounts (local -> remote) packed into one deterministic archive for the file_sync phase.

Same content gives the same bytes (sorted entries, fixed mtimes/owners, gzip mtime 0), so the phase's
trigger hash changes only when a synced file does.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from pathlib import Path

from styx.config import FileMount

# The archive travels base64-encoded inside the phase command, and Linux limits one argument or
# environment string to 128 KiB: keep file mounts small (configs, small code trees).
MAX_BYTES = 64 * 1024


class FileSyncError(ValueError):
    pass


def _add(tar: tarfile.TarFile, src: Path, arc: str) -> None:
    info = tarfile.TarInfo(arc)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    if src.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for child in sorted(src.iterdir()):
            _add(tar, child, f"{arc}/{child.name}")
    elif src.is_file():
        data = src.read_bytes()
        info.size, info.mode = len(data), (0o755 if src.stat().st_mode & 0o111 else 0o644)
        tar.addfile(info, io.BytesIO(data))


def pack(mounts: list[FileMount], base_dir: Path) -> tuple[str, str]:
    """(base64 tar.gz, newline-separated target paths). Paths in the archive are relative to /."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for i, m in enumerate(mounts):
            src = (base_dir / m.local).resolve()
            if not src.exists():
                raise FileSyncError(f"styx:cluster.setup.file_mounts[{i}].local: {m.local!r} does not exist "
                                    f"(relative to {base_dir})")
            _add(tar, src, m.remote.strip("/"))
    encoded = base64.b64encode(buf.getvalue()).decode()
    if len(encoded) > MAX_BYTES:
        raise FileSyncError(f"styx:cluster.setup.file_mounts: {len(encoded)} bytes after compression and base64; "
                            f"the limit is {MAX_BYTES} (sync large data from object storage in a custom script)")
    return encoded, "\n".join(m.remote for m in mounts)
