"""styx.app.remote: a private key reaches ssh only through a file its owner alone can read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from styx.app.remote import Target, key_path, write_key


def test_write_key_is_owner_only_and_ends_in_a_newline(tmp_path):
    p = write_key(tmp_path, "-----BEGIN KEY-----\nabc\n-----END KEY-----")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert p.read_text().endswith("-----END KEY-----\n")
    q = write_key(tmp_path, "other\n")
    assert q != p and q.read_text() == "other\n"  # a new file each time, the newline not doubled


def test_key_path_removes_the_key_after_the_block():
    t = Target("head", "10.0.0.2", 22, "styx", "KEY", None, "c", "/dev/null", "", None)
    with key_path(t) as p:
        assert Path(p).read_text() == "KEY\n"
        assert stat.S_IMODE(os.stat(os.path.dirname(p)).st_mode) == 0o700
    assert not os.path.exists(p) and not os.path.exists(os.path.dirname(p))


def test_key_path_uses_a_key_file_as_it_is(tmp_path):
    f = tmp_path / "id"
    f.write_text("K\n")
    t = Target("head", "10.0.0.2", 22, "styx", None, str(f), "c", "/dev/null", "", None)
    with key_path(t) as p:
        assert p == str(f)
    assert f.exists()
