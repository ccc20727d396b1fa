""".ci/pr_preview.py: affected stacks, stacks marked for launch on merge, the comment body, and
posting/updating one comment through a fake `gh` on PATH (the GitHub API is not reachable here)."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "pr_preview.py"


def _load():
    spec = importlib.util.spec_from_file_location("pr_preview", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pp = _load()


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "stacks").mkdir()
    for s, extra in (("a", "  styx:launch_on_merge: true\n"), ("b", ""), ("c", "  styx:launch_on_merge: 'yes'\n"),
                     ("d", "  styx:pr_preview: false\n  styx:launch_on_merge: true\n")):
        (tmp_path / "stacks" / f"Pulumi.{s}.yaml").write_text(f"config:\n  styx:cluster: {{name: {s}}}\n{extra}")
    (tmp_path / "stacks" / "schema.json").write_text("{}")
    return tmp_path


@pytest.mark.parametrize("changed,want", [
    (["README.md"], []),
    ([".github/workflows/preview.yml", "tests/x.py"], []),
    (["stacks/Pulumi.b.yaml"], ["b"]),
    (["stacks/Pulumi.b.yaml", "stacks/Pulumi.gone.yaml"], ["b"]),  # a removed stack file: nothing to preview
    (["components/node.py"], ["a", "b", "c"]),  # d is opted out
    (["setup_scripts/ray.sh"], ["a", "b", "c"]),
    (["styx/app/api.py"], ["a", "b", "c"]),
    (["stacks/schema.json"], ["a", "b", "c"]),
    (["docs/components/x.md"], []),
])
def test_affected(repo, changed, want):
    assert pp.affected(changed, repo) == want


def test_a_stack_opted_out_of_previews_is_never_affected(repo):
    assert "d" in pp.all_stacks(repo)
    assert pp.affected(["stacks/Pulumi.d.yaml"], repo) == []


def test_marked_needs_a_literal_true(repo):
    assert pp.marked(["a", "b", "c"], repo) == ["a"]
    assert pp.marked([], repo) == []


def test_affected_from_git(tmp_path):
    def git(*a):
        subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    git("init", "-q", "-b", "main")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.x.yaml").write_text("config: {}\n")
    git("add", "-A")
    git("commit", "-qm", "one")
    git("checkout", "-qb", "pr")
    (tmp_path / "stacks" / "Pulumi.x.yaml").write_text("config: {a: 1}\n")
    git("commit", "-qam", "two")
    changed = pp.changed_files("main", "pr", tmp_path)
    assert changed == ["stacks/Pulumi.x.yaml"] and pp.affected(changed, tmp_path) == ["x"]


def test_assemble(tmp_path):
    (tmp_path / "b.md").write_text("### Stack `b`: no changes\n")
    (tmp_path / "a.md").write_text("### Stack `a`: 1 to replace\n")
    body = pp.assemble(tmp_path, "0123456789abcdef")
    assert body.startswith(pp.MARKER + "\n## styx preview of 0123456789ab\n")
    assert body.index("`a`") < body.index("`b`")
    assert "No stack is affected" in pp.assemble(tmp_path / "none")


def test_stacks_argument_is_checked():
    r = subprocess.run([sys.executable, str(SCRIPT), "marked", "--stacks", '["local", "nope"]'],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "nope" in r.stderr and "allowed:" in r.stderr and "local" in r.stderr
    r = subprocess.run([sys.executable, str(SCRIPT), "marked", "--stacks", "local"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 2 and "not a JSON list" in r.stderr
    r = subprocess.run([sys.executable, str(SCRIPT), "marked", "--stacks", "[]"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0 and json.loads(r.stdout) == []


FAKE_GH = r'''#!/usr/bin/env python3
import json, os, sys
db = os.environ["FAKE_GH_DB"]
state = json.load(open(db)) if os.path.exists(db) else {"comments": [], "calls": []}
args = sys.argv[1:]
body = json.loads(sys.stdin.read()) if "--input" in args else None
state["calls"].append([a for a in args if a not in ("--input", "-")])
path = next(a for a in args[1:] if a.startswith("repos/"))
method = args[args.index("--method") + 1] if "--method" in args else "GET"
if method == "GET":
    for c in state["comments"]:
        print(json.dumps([c["id"], c["body"]]))
elif method == "POST":
    state["comments"].append({"id": 100 + len(state["comments"]), "body": body["body"]})
elif method == "PATCH":
    cid = int(path.rsplit("/", 1)[1])
    next(c for c in state["comments"] if c["id"] == cid)["body"] = body["body"]
json.dump(state, open(db, "w"))
'''


def test_plugins_installs_each_pinned_provider(tmp_path, monkeypatch):
    from importlib.metadata import version

    log = tmp_path / "calls"
    fake = tmp_path / "pulumi"
    fake.write_text(f'#!/bin/sh\necho "$PULUMI_HOME $*" >> {log}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(tmp_path))
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PULUMI_HOME", raising=False)
    assert pp.plugins() == 0
    lines = log.read_text().splitlines()
    assert lines == [f"{tmp_path / 'home' / 'pulumi'} plugin install resource {p} {version('pulumi-' + p)}"
                     for p in pp.PROVIDERS]


def test_comment_created_then_updated(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    db = tmp_path / "db.json"
    db.write_text(json.dumps({"comments": [{"id": 7, "body": "someone else's comment"}], "calls": []}))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GH_DB", str(db))
    assert pp.comment("o/r", 5, pp.MARKER + "\nfirst\n") == "created"
    assert pp.comment("o/r", 5, pp.MARKER + "\nsecond\n") == "updated"
    state = json.loads(db.read_text())
    assert [c["body"] for c in state["comments"]] == ["someone else's comment", pp.MARKER + "\nsecond\n"]
    assert state["calls"][1][:4] == ["api", "--method", "POST", "repos/o/r/issues/5/comments"]
    assert state["calls"][3][:4] == ["api", "--method", "PATCH", "repos/o/r/issues/comments/101"]
