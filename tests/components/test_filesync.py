"""styx.components.filesync: excludes, determinism, the cache, and the phase table's names."""

from __future__ import annotations

import os
import tarfile

import pytest

from styx.components.filesync import FileSyncError, excluded, pack
from styx.components.phases import GATE, PHASES
from styx.model.config import PHASE_NAMES, FileMount


def _names(path):
    with tarfile.open(path) as t:
        return t.getnames()


def _tree(root, files):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_phase_names_in_the_config_are_the_phase_table():
    assert (GATE.name, *(p.name for p in PHASES if p.name != "custom")) == PHASE_NAMES


@pytest.mark.parametrize(("rel", "is_dir", "pats", "want"), [
    ("a/.git", True, [".git/"], True),
    ("a/.git", False, [".git/"], False),  # a file named .git is not the folder pattern
    ("x/__pycache__", True, ["__pycache__/"], True),
    ("m.ckpt", False, ["*.ckpt"], True),
    ("deep/m.ckpt", False, ["*.ckpt"], True),
    ("build", True, ["/build"], True),
    ("src/build", True, ["/build"], False),
    ("data/raw/x.bin", False, ["data/raw/*.bin"], True),
    ("a/b/c/t.tmp", False, ["a/**/t.tmp"], True),
    ("keep.py", False, ["*.ckpt", "/build"], False),
])
def test_gitignore_style_excludes(rel, is_dir, pats, want):
    assert excluded(rel, is_dir, pats) is want


def test_pack_leaves_out_excludes_and_is_deterministic(tmp_path):
    src = tmp_path / "code"
    _tree(src, {"a.py": "1", "pkg/b.py": "2", ".git/HEAD": "h", "pkg/__pycache__/b.pyc": "c", "w.ckpt": "w",
                "logs/x.log": "l", ".styxignore": "*.ckpt\n# comment\n"})
    mounts = [FileMount(local=str(src), remote="/opt/app", exclude=["logs/"])]
    one = pack(mounts, tmp_path, cache=tmp_path / "c1")
    names = sorted(_names(one.path))
    assert names == ["opt/app", "opt/app/.styxignore", "opt/app/a.py", "opt/app/pkg", "opt/app/pkg/b.py"]
    assert one.files == 3
    os.utime(src / "a.py", (1, 1))  # new mtime, same bytes: same archive
    two = pack(mounts, tmp_path, cache=tmp_path / "c2")
    assert two.sha256 == one.sha256
    (src / "a.py").write_text("changed")
    assert pack(mounts, tmp_path, cache=tmp_path / "c2").sha256 != one.sha256


def test_an_unchanged_tree_is_not_packed_again(tmp_path, monkeypatch):
    src = tmp_path / "code"
    _tree(src, {f"f{i}.txt": str(i) for i in range(50)})
    mounts = [FileMount(local=str(src), remote="/opt/app")]
    first = pack(mounts, tmp_path, cache=tmp_path / "c")
    import styx.components.filesync as fs

    monkeypatch.setattr(fs, "_write", lambda *a: pytest.fail("packed again"))
    assert pack(mounts, tmp_path, cache=tmp_path / "c") == first
    os.unlink(first.path)  # the cache lost it: packed again
    monkeypatch.undo()
    assert pack(mounts, tmp_path, cache=tmp_path / "c").sha256 == first.sha256


def test_missing_source_and_bad_names_are_errors(tmp_path):
    with pytest.raises(FileSyncError, match=r"file_mounts\[0\]\.local: 'nope' does not exist"):
        pack([FileMount(local="nope", remote="/opt/x")], tmp_path, cache=tmp_path / "c")
    src = tmp_path / "code"
    _tree(src, {"bad\nname": "x"})
    with pytest.raises(FileSyncError, match="control character"):
        pack([FileMount(local=str(src), remote="/opt/x")], tmp_path, cache=tmp_path / "c")


def test_a_single_file_mount(tmp_path):
    f = tmp_path / "conf.yaml"
    f.write_text("a: 1\n")
    b = pack([FileMount(local="conf.yaml", remote="/opt/conf/app.yaml")], tmp_path, cache=tmp_path / "c")
    assert _names(b.path) == ["opt/conf/app.yaml"]
    assert b.remote_path == f".cache/styx/sync/{b.sha256}.tar.gz"
