"""Ray Jobs on a real cluster (1 head + 1 worker, local backend, real engine, real Ray): a job submitted
with Ray's own JobSubmissionClient and with `ray job submit` finds `python` (the venv's, which has
Ray), runs a task on every node, and sees setup.env and secret_env there; a custom resource given as
one `extra_start_args` element with a space in it reaches `ray start` whole.

The tests share one cluster and run in order.
"""

from __future__ import annotations

import hashlib
import json
import shlex

import pytest

from tests.e2e.helpers import Stack, leftovers, require_engine_and_sandbox, sandbox_status

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "rjobs"
SUBNET = "10.84.0.0/24"
GREETING = "hello from setup.env: a b  c"
SECRET = "rjobs-secret-7d1c-e4a9"
DASHBOARD = "http://127.0.0.1:8265"

# The job's driver: one task pinned to each alive node, each reporting the node, its python and the
# env it sees (the secret only as a hash, so it never lands in a job log).
DRIVER = """
import hashlib, json, os, shutil, sys
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init()

@ray.remote(num_cpus=0)
def report():
    tok = os.environ.get("RJOBS_TOKEN", "")
    return {"ip": ray.util.get_node_ip_address(), "python": sys.executable,
             "greeting": os.environ.get("RJOBS_GREETING"), "token_sha": hashlib.sha256(tok.encode()).hexdigest()}

nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
out = ray.get([report.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
               for n in nodes])
print("RJOBS " + json.dumps({"driver_python": sys.executable, "pip": shutil.which("pip"),
                             "driver_greeting": os.environ.get("RJOBS_GREETING"), "tasks": out,
                             "custom": ray.cluster_resources().get("custom")}))
"""
ENTRYPOINT = "python -c " + shlex.quote(DRIVER)

# Ray's JobSubmissionClient, run by `python` on the head from a non-login SSH command
SUBMIT = f"""
import json, time
from ray.job_submission import JobStatus, JobSubmissionClient
c = JobSubmissionClient({DASHBOARD!r})
jid = c.submit_job(entrypoint={ENTRYPOINT!r})
deadline = time.time() + 240
while c.get_job_status(jid) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
    assert time.time() < deadline, "job did not finish"
    time.sleep(1)
print("SUBMIT " + json.dumps({{"status": str(c.get_job_status(jid).value), "logs": c.get_job_logs(jid)}}))
"""


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    require_engine_and_sandbox()
    tmp = tmp_path_factory.mktemp(NAME)
    cluster = {
        "name": NAME, "cloud": "local",
        "local": {"subnet": SUBNET, "shm_size": "1g"},
        "head": {}, "workers": [{"name": "worker", "count": 1}],
        "setup": {
            "python": {"version": "system", "env_tool": "venv"},
            "ray": {"version": "2.60.0", "extra_start_args": ['--resources={"custom": 1}']},
            "env": {"RJOBS_GREETING": GREETING},
            "secret_env": {"RJOBS_TOKEN": SECRET},
        },
    }
    s = Stack(NAME, cluster, tmp)
    try:
        s.up()
        out = s.outputs()
        ips = {n["name"]: n["private_ip"] for n in out["nodes"]}
        yield {"stack": s, "ips": ips, "head": ips["head"]}
    finally:
        try:
            s.destroy()
        finally:
            s.stack.workspace.remove_stack(s.name)
    assert not leftovers(sandbox_status(NAME))


def _result(stdout: str, tag: str) -> dict:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(tag + " ")), None)
    assert line, f"no {tag} line in:\n{stdout[-4000:]}"
    return json.loads(line[len(tag) + 1:])


def _check_job(res: dict, ctx) -> None:
    venv_py = "/opt/styx/venv/bin/python"
    assert res["driver_python"] == venv_py and res["pip"] == "/opt/styx/venv/bin/pip"
    assert res["driver_greeting"] == GREETING
    assert sorted(t["ip"] for t in res["tasks"]) == sorted(ctx["ips"].values())
    sha = hashlib.sha256(SECRET.encode()).hexdigest()
    for t in res["tasks"]:
        assert t["greeting"] == GREETING and t["token_sha"] == sha and t["python"] == venv_py, t
    assert res["custom"] == 2.0  # `--resources={"custom": 1}` on each of the two nodes


def test_non_login_shell_finds_python_pip_and_ray(ctx):
    r = ctx["stack"].ssh(ctx["head"], "command -v python pip ray; ray --version; pip --version")
    assert r.stdout.splitlines()[:3] == ["/usr/local/bin/python", "/usr/local/bin/pip", "/usr/local/bin/ray"]
    assert "2.60.0" in r.stdout and "/opt/styx/venv/" in r.stdout


def test_job_submission_client_job_runs_on_every_node_with_env(ctx):
    r = ctx["stack"].ssh(ctx["head"], f"python - <<'EOF'\n{SUBMIT}\nEOF", timeout=300)
    sub = _result(r.stdout, "SUBMIT")
    assert sub["status"] == "SUCCEEDED", sub["logs"][-4000:]
    _check_job(_result(sub["logs"], "RJOBS"), ctx)
    assert SECRET not in sub["logs"]


def test_ray_job_submit_from_a_login_shell(ctx):
    cmd = f"ray job submit --address={DASHBOARD} -- {ENTRYPOINT}"
    r = ctx["stack"].ssh(ctx["head"], "bash -lc " + shlex.quote(cmd), timeout=300)
    assert "succeeded" in r.stdout, r.stdout[-4000:]
    _check_job(_result(r.stdout, "RJOBS"), ctx)


def test_custom_resource_and_no_secret_in_process_list(ctx):
    r = ctx["stack"].ssh(ctx["head"], "python -c 'import ray; ray.init(logging_level=\"ERROR\"); "
                                      "print(ray.cluster_resources().get(\"custom\"))'")
    assert r.stdout.strip().splitlines()[-1] == "2.0"
    for ip in ctx["ips"].values():
        ps = ctx["stack"].ssh(ip, "ps -eo args").stdout
        assert "raylet" in ps and SECRET not in ps


def test_styx_job_submit_streams_logs_and_returns_the_status(ctx, tmp_path):
    """styx's own `job submit` (Ray's JobSubmissionClient on the head over SSH): logs stream back, the
    status decides, a working_dir travels with the job. It runs from a styx workspace other than the one
    that made the stack, where the stored config is masked ("[secret]"): the outputs and defaults serve."""
    import styx
    from styx.app import jobs

    backend = ctx["stack"].backend
    lines: list[str] = []
    r = styx.job_submit(NAME, ENTRYPOINT, backend=backend, on_log=lines.append)
    assert r.ok and r.status == "SUCCEEDED", r.logs[-3000:]
    _check_job(_result("\n".join(lines), "RJOBS"), ctx)
    assert SECRET not in r.logs

    bad = styx.job_submit(NAME, "python -c 'import sys; print(\"going\"); sys.exit(3)'", backend=backend)
    assert bad.status == "FAILED" and not bad.ok and "going" in bad.logs

    wd = tmp_path / "project"
    wd.mkdir()
    (wd / "main.py").write_text("import os\nprint('WD', os.environ['RJOBS_GREETING'], os.path.exists('main.py'))\n")
    r = styx.job_submit(NAME, "python main.py", backend=backend, working_dir=wd, submission_id="styx-wd-1")
    assert r.ok and f"WD {GREETING} True" in r.logs, r.logs[-3000:]
    listed = jobs.run(NAME, "list", backend=backend).record["jobs"]
    assert {"id": "styx-wd-1", "status": "SUCCEEDED"}.items() <= next(j for j in listed
                                                                      if j["id"] == "styx-wd-1").items()
    left = ctx["stack"].ssh(ctx["head"], "ls /tmp/styx-jobs 2>/dev/null | wc -l").stdout.strip()
    assert left == "0"


PROBE = """
import json, sys, urllib.request, urllib.error
token = open("/etc/styx/ray-auth-token").read().strip()
out = {}
for name, headers in (("none", {}), ("wrong", {"Authorization": "Bearer not-the-token"}),
                      ("token", {"Authorization": "Bearer " + token})):
    req = urllib.request.Request("http://127.0.0.1:8265/api/jobs/", headers=headers)
    try:
        out[name] = urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as e:
        out[name] = e.code
print("PROBE " + json.dumps(out))
"""


def test_token_auth_on_by_default_refuses_requests_without_the_token(ctx):
    """setup.ray.auth defaults to token: the dashboard and Jobs API refuse a request without the token or
    with a wrong one; the GCS refuses a client without it; the token is a secret output, on the nodes
    only in its 0600 file, and in no state file in plain text."""
    s, head = ctx["stack"], ctx["head"]
    token = s.outputs()["ray_auth_token"]
    assert len(token) == 64 and int(token, 16) >= 0
    r = s.ssh(head, f"/opt/styx/venv/bin/python - <<'EOF'\n{PROBE}\nEOF")
    codes = _result(r.stdout, "PROBE")
    assert codes["token"] == 200 and codes["none"] in (401, 403) and codes["wrong"] in (401, 403), codes
    bare = s.ssh(head, "env -u RAY_AUTH_MODE -u RAY_AUTH_TOKEN_PATH RAY_USAGE_STATS_ENABLED=0 "
                       "timeout 60 /opt/styx/venv/bin/ray status", check=False)
    assert bare.returncode != 0, bare.stdout[-2000:]
    ok = s.ssh(head, ". /etc/styx/ray-auth.env && RAY_USAGE_STATS_ENABLED=0 timeout 60 /opt/styx/venv/bin/ray status")
    assert "Active:" in ok.stdout
    for ip in ctx["ips"].values():
        st = s.ssh(ip, "stat -c '%a %U' /etc/styx/ray-auth-token; ps -eo args; cat /var/log/styx/*.log 2>/dev/null")
        assert st.stdout.splitlines()[0] == "600 root" and token not in st.stdout
    for f in (s.tmp / "state").rglob("*"):
        if f.is_file():
            assert token not in f.read_text(errors="replace"), f
