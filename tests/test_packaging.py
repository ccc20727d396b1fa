"""What `pip install styx` puts in a user's environment: one top-level package, `styx`, with the Pulumi
program as styx.components and the setup scripts and sandbox tool beside it, found from there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import importlib.util, sys
sys.path.insert(0, sys.argv[1])
import styx.components.phases as phases, styx.components.backends.local as local, styx.app.api
assert str(phases.SCRIPTS).startswith(sys.argv[1]) and (phases.SCRIPTS / "lib.sh").is_file(), phases.SCRIPTS
assert local.SANDBOXCTL.is_file(), local.SANDBOXCTL
assert importlib.util.find_spec("components") is None
print("ok")
"""


def test_the_wheel_holds_one_top_level_package_that_works(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "whl"),
                        str(ROOT)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    [whl] = (tmp_path / "whl").glob("styx-*.whl")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        z.extractall(tmp_path / "site")
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"styx"}
    assert "styx/components/program.py" in names and "styx/setup_scripts/ray.sh" in names
    r = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path / "site")], capture_output=True, text=True,
                       cwd=tmp_path, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
