"""The alive-Ray-node probe the end-to-end tests and the benchmarks share (styx.app.remote)."""

from __future__ import annotations

import subprocess

from styx.app.remote import RAY_ALIVE_PY, RAY_CLIENT_ENV, ray_alive_count


def test_the_count_is_the_last_alive_line_ray_warnings_aside():
    out = "2026-12-03 WARNING node 1a2b is dead\nalive=2\nsome other line\nalive=3\n"
    assert ray_alive_count(out) == 3
    assert ray_alive_count("alive=0\n") == 0
    assert ray_alive_count("Traceback (most recent call last):\n") is None


def test_the_probe_is_one_shell_line_with_the_auth_settings_first(tmp_path):
    assert RAY_ALIVE_PY.startswith(RAY_CLIENT_ENV) and "\n" not in RAY_ALIVE_PY
    # a stand-in python that runs the probe's program against a fake `ray` module
    (tmp_path / "ray.py").write_text("def init(**kw): pass\n"
                                     "def nodes(): return [{'Alive': True}, {'Alive': False}, {'Alive': True}]\n")
    line = RAY_ALIVE_PY.replace("/opt/styx/venv/bin/python", f"PYTHONPATH={tmp_path} python3")
    r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False)
    assert ray_alive_count(r.stdout) == 2, r.stderr
