"""`styx exec --all/--nodes/--role` and `styx cp` against the fake engine and a fake `ssh` that runs the
command here (FAKE_HOST tells the nodes apart: head 10.78.0.2, worker-0 10.78.0.3, worker-1 10.78.0.4)."""

from __future__ import annotations

import json

import pytest
from cli_fakes import local_cluster
from click.testing import CliRunner

import styx
from styx.app.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def up(fake_engine, fake_ssh):
    styx.launch(local_cluster("many", workers=2), on_info=lambda m: None)
    return "many"


def test_exec_all_streams_prefixed_lines_and_summarises(up):
    r = run("exec", "--stack", up, "--all", "--", 'echo "out $FAKE_HOST"; echo "err $FAKE_HOST" >&2')
    assert r.exit_code == 0, r.output
    assert sorted(ln for ln in r.stdout.splitlines()) == ["[head] out 10.78.0.2", "[worker-0] out 10.78.0.3",
                                                          "[worker-1] out 10.78.0.4"]
    assert "[worker-1] err 10.78.0.4" in r.stderr
    assert "head: ok (" in r.stderr and "3/3 nodes ok" in r.stderr


def test_exec_all_one_failing_one_timing_out(up):
    cmd = ('case "$FAKE_HOST" in 10.78.0.3) exit 7;; 10.78.0.4) sleep 60;; esac; echo fine')
    r = run("exec", "--stack", up, "--all", "--timeout", "2", "--json", "--", cmd)
    assert r.exit_code == 1
    body = json.loads(r.stdout)
    by = {n["node"]: n for n in body["nodes"]}
    assert body["ok"] is False and list(by) == ["head", "worker-0", "worker-1"]
    assert (by["head"]["exit_code"], by["head"]["stdout"], by["head"]["timed_out"]) == (0, "fine\n", False)
    assert (by["worker-0"]["exit_code"], by["worker-0"]["timed_out"]) == (7, False)
    assert (by["worker-1"]["exit_code"], by["worker-1"]["timed_out"]) == (None, True)
    assert by["worker-1"]["duration_s"] < 30


def test_exec_picks_nodes_by_name_or_role(up):
    r = run("exec", "--stack", up, "--role", "worker", "--json", "--", "echo $FAKE_HOST")
    assert [n["node"] for n in json.loads(r.stdout)["nodes"]] == ["worker-0", "worker-1"]
    r = run("exec", "--stack", up, "--nodes", "worker-1,head", "--json", "--", "true")
    assert [n["node"] for n in json.loads(r.stdout)["nodes"]] == ["head", "worker-1"]
    r = run("exec", "--stack", up, "--nodes", "worker-9", "--", "true")
    assert r.exit_code == 2 and "no node 'worker-9'; nodes: head, worker-0, worker-1" in r.stderr
    r = run("exec", "--stack", up, "--all", "head", "--", "true")
    assert r.exit_code == 2


def test_arguments_after_the_separator_arrive_as_written(up):
    r = run("exec", "--stack", up, "--all", "--json", "--", "printf", "%s|", "a b", "$HOME", "'q'")
    assert {n["stdout"] for n in json.loads(r.stdout)["nodes"]} == {"a b|$HOME|'q'|"}


def test_cp_a_file_and_a_folder_to_a_node_and_back(up, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    (src / "a.txt").chmod(0o640)
    remote = tmp_path / "remote"
    r = run("cp", "--stack", up, str(src / "a.txt"), f"worker-0:{remote}/files/")
    assert r.exit_code == 0, r.output
    assert (remote / "files" / "a.txt").read_text() == "A"
    assert oct((remote / "files" / "a.txt").stat().st_mode & 0o777) == "0o640"
    r = run("cp", "--stack", up, str(src / "a.txt"), f"worker-0:{remote}/renamed.txt")
    assert r.exit_code == 0 and (remote / "renamed.txt").read_text() == "A"
    r = run("cp", "--stack", up, str(src), f"head:{remote}/tree")
    assert r.exit_code == 0 and (remote / "tree" / "sub" / "b.txt").read_text() == "B"
    back = tmp_path / "back"
    back.mkdir()
    r = run("cp", "--stack", up, f"head:{remote}/tree", str(back))
    assert r.exit_code == 0 and (back / "tree" / "sub" / "b.txt").read_text() == "B"
    r = run("cp", "--stack", up, f"head:{remote}/renamed.txt", str(back / "got.txt"))
    assert r.exit_code == 0 and (back / "got.txt").read_text() == "A"
    assert not list(back.glob("*.styx-part"))


def test_cp_from_all_nodes_into_a_folder_per_node(up, tmp_path):
    f = tmp_path / "log.txt"
    f.write_text("x")
    r = run("cp", "--stack", up, "--json", f"all:{f}", str(tmp_path / "logs"))
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(tmp_path / "logs").as_posix() for p in (tmp_path / "logs").rglob("*.txt")) == [
        "head/log.txt", "worker-0/log.txt", "worker-1/log.txt"]


def test_cp_missing_file_and_bad_arguments(up, tmp_path):
    r = run("cp", "--stack", up, f"head:{tmp_path}/nope", str(tmp_path / "x"))
    assert r.exit_code == 1 and "no such file or folder on head" in r.stderr
    r = run("cp", "--stack", up, str(tmp_path), str(tmp_path / "y"))
    assert r.exit_code == 2 and "exactly one of SRC and DST is NODE:PATH" in r.stderr
    r = run("cp", "--stack", up, str(tmp_path / "missing"), "head:/tmp/")
    assert r.exit_code == 2 and "no such file or folder" in r.stderr
