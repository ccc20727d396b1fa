"""The local backend's wheel cache on the operator's machine (`setup.python.wheel_cache: auto`): the cluster's
wheels downloaded once and served to its sandboxes on the cluster's bridge.

    python wheel_cache.py fill  DIR KEY PYTHON_X.Y   (requirements in the environment, STYX_WC_SPECS, one a line)
    python wheel_cache.py serve DIR ADDR PORT PIDFILE
    python wheel_cache.py stop  PIDFILE

The logic is `setup_scripts/wheel_cache.py`, the one copy (the head's `wheel_cache` phase runs it on the
ssh, aws and gcp backends); this command runs it for nodes of the sandbox base image (Debian bookworm:
glibc 2.36), whatever this machine's own glibc.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

SANDBOX_GLIBC = "2.36"  # the sandbox base image: Debian bookworm

if __name__ == "__main__":
    os.environ.setdefault("STYX_WC_GLIBC", SANDBOX_GLIBC)
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "setup_scripts" / "wheel_cache.py"), run_name="__main__")
