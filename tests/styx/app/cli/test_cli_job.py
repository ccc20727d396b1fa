"""`styx job ...` against the fake engine and fake ssh, with a stand-in `ray.job_submission` module on
the "head" (the program styx sends, its streaming and records, the exit codes; no Ray here: the real
JobSubmissionClient runs in tests/e2e/test_ray_jobs.py)."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
from cli_fakes import local_cluster
from click.testing import CliRunner

import styx
from styx.app.cli import main

FAKE_RAY = '''
import json, os, types
from pathlib import Path

STATE = Path(os.environ["FAKE_RAY_STATE"])


class JobStatus(str):
    pass


def _load():
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def _save(d):
    STATE.write_text(json.dumps(d))


class JobSubmissionClient:
    def __init__(self, address):
        assert address == "http://127.0.0.1:8265", address

    def submit_job(self, entrypoint, runtime_env=None, submission_id=None):
        d = _load()
        jid = submission_id or f"raysubmit_{len(d) + 1}"
        fail = "fail" in entrypoint
        d[jid] = {"entrypoint": entrypoint, "runtime_env": runtime_env, "status": "FAILED" if fail else "SUCCEEDED",
                  "logs": f"running {entrypoint}\\nenv {json.dumps(runtime_env, sort_keys=True)}\\n"}
        wd = (runtime_env or {}).get("working_dir")
        if wd:
            d[jid]["logs"] += "files " + json.dumps(sorted(p.name for p in Path(wd).iterdir())) + "\\n"
        _save(d)
        return jid

    def get_job_info(self, jid):
        j = _load()[jid]
        return types.SimpleNamespace(status=j["status"], message="boom" if j["status"] == "FAILED" else None,
                                     entrypoint=j["entrypoint"], start_time=1, end_time=2)

    async def tail_job_logs(self, jid):
        for line in _load()[jid]["logs"].splitlines(keepends=True):
            yield line

    def get_job_logs(self, jid):
        return _load()[jid]["logs"]

    def stop_job(self, jid):
        d = _load()
        d[jid]["status"] = "STOPPED"
        _save(d)
        return True

    def list_jobs(self):
        return [types.SimpleNamespace(submission_id=k, job_id=None, status=v["status"], entrypoint=v["entrypoint"],
                                      start_time=1, end_time=2, message=None) for k, v in _load().items()]
'''


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def head(fake_engine, fake_ssh, tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    mods = tmp_path / "mods" / "ray"
    mods.mkdir(parents=True)
    (mods / "__init__.py").write_text("")
    (mods / "job_submission.py").write_text(textwrap.dedent(FAKE_RAY))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'mods'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("FAKE_RAY_STATE", str(tmp_path / "jobs.json"))
    c = local_cluster("jobs", workers=1)
    c["setup"] = {"python": {"venv_dir": str(venv)}}
    styx.launch(c, on_info=lambda m: None)
    return tmp_path


def test_submit_streams_logs_and_exits_with_the_jobs_status(head):
    r = run("job", "submit", "--stack", "jobs", "--env", "A=1", "--pip", "rich==13", "--", "python", "-c",
            "print('x y')")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "running python -c 'print('\"'\"'x y'\"'\"')'"
    assert 'env {"env_vars": {"A": "1"}, "pip": ["rich==13"]}' in r.stdout
    assert "job raysubmit_1: SUCCEEDED" in r.stderr
    r = run("job", "submit", "--stack", "jobs", "--", "python fail.py")
    assert r.exit_code == 1 and "job raysubmit_2: FAILED (boom)" in r.stderr


def test_status_logs_stop_list_json(head):
    r = run("job", "submit", "--stack", "jobs", "--no-wait", "--submission-id", "mine", "--json", "--", "sleep 1")
    assert r.exit_code == 0 and json.loads(r.stdout)["id"] == "mine"
    assert run("job", "status", "--stack", "jobs", "mine").stdout.strip() == "mine: SUCCEEDED"
    assert run("job", "logs", "--stack", "jobs", "mine").stdout.startswith("running sleep 1")
    assert "stop requested" in run("job", "stop", "--stack", "jobs", "mine").stdout
    jobs = json.loads(run("job", "list", "--stack", "jobs", "--json").stdout)["jobs"]
    assert [(j["id"], j["status"]) for j in jobs] == [("mine", "STOPPED")]


def test_working_dir_is_copied_to_the_head_first(head):
    wd = head / "project"
    wd.mkdir()
    (wd / "train.py").write_text("print(1)\n")
    r = run("job", "submit", "--stack", "jobs", "--working-dir", str(wd), "--", "python train.py")
    assert r.exit_code == 0, r.output
    env = json.loads(r.stdout.splitlines()[1].removeprefix("env "))
    assert env["working_dir"].startswith("/tmp/styx-jobs/")
    assert r.stdout.splitlines()[2] == 'files ["train.py"]'  # there when Ray took it ...
    assert not os.path.exists(env["working_dir"])  # ... and gone after


def test_a_cluster_without_ray_is_refused(fake_engine, fake_ssh):
    styx.launch(local_cluster("noray"), on_info=lambda m: None)
    r = run("job", "list", "--stack", "noray")
    assert r.exit_code == 2 and "Ray disabled" in r.stderr
