"""Ray Jobs on a styx cluster, through Ray's own `JobSubmissionClient` run on the head.

Each operation is one SSH session to the head running the cluster's Python (`setup.python.venv_dir`,
where the ray phase installs Ray) with a short program on stdin: nothing of the job (entrypoint,
runtime env) is in a command line, and the client talks to the dashboard on the head's loopback, so
the Jobs API is never exposed beyond the head. A `working_dir` is first copied to the head
(`/tmp/styx-jobs/<id>/`), Ray uploads it to the cluster from there, as `ray job submit` does, and the
copy is removed.

The program prints the job's log lines as they come, then one record line
(`\\x1estyx-job <json>`) that styx parses: the job id, its status and message.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styx.app.project import EXIT_FAILED, EXIT_USAGE, StyxError
from styx.app.remote import copy_to, dashboard_port, load, ray_client_command, ray_in_container, run_on, target_for

MARK = "\x1estyx-job "
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

PROGRAM = r'''
import asyncio, json, sys, time
from ray.job_submission import JobSubmissionClient

MARK = "\x1estyx-job "


def record(**kw):
    print(MARK + json.dumps(kw, default=str), flush=True)


def info(c, jid):
    i = c.get_job_info(jid)
    return {"id": jid, "status": str(i.status.value if hasattr(i.status, "value") else i.status),
            "message": i.message, "entrypoint": i.entrypoint, "start_time": i.start_time, "end_time": i.end_time}


async def follow(c, jid):
    async for chunk in c.tail_job_logs(jid):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def main(a):
    c = JobSubmissionClient(a["address"])
    op = a["op"]
    if op == "submit":
        try:
            jid = c.submit_job(entrypoint=a["entrypoint"], runtime_env=a.get("runtime_env") or None,
                               submission_id=a.get("id"))
        finally:  # Ray has uploaded the working_dir to the cluster (or failed): the copy goes
            if a.get("cleanup"):
                import shutil
                shutil.rmtree(a["cleanup"], ignore_errors=True)
        print(MARK + json.dumps({"submitted": jid}), flush=True)
        if not a.get("wait"):
            return record(**info(c, jid))
        asyncio.run(follow(c, jid))
        while True:  # the log stream ends with the job; its status may lag a moment
            r = info(c, jid)
            if r["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
                return record(**r)
            time.sleep(0.5)
    if op == "status":
        return record(**info(c, a["id"]))
    if op == "logs":
        if a.get("follow"):
            asyncio.run(follow(c, a["id"]))
        else:
            sys.stdout.write(c.get_job_logs(a["id"]))
        return record(**info(c, a["id"]))
    if op == "stop":
        stopped = c.stop_job(a["id"])
        return record(stopped=bool(stopped), **info(c, a["id"]))
    if op == "list":
        jobs = [{"id": j.submission_id or j.job_id, "status": str(j.status.value if hasattr(j.status, "value")
                 else j.status), "entrypoint": j.entrypoint, "start_time": j.start_time, "end_time": j.end_time,
                 "message": j.message} for j in c.list_jobs()]
        return record(jobs=jobs)


try:
    main(ARGS)
except Exception as e:  # noqa: BLE001 - the error goes back as the record
    record(error=f"{type(e).__name__}: {e}")
'''


@dataclass
class JobResult:
    id: str | None
    status: str | None  # PENDING | RUNNING | SUCCEEDED | FAILED | STOPPED
    message: str | None
    logs: str  # what was printed (submit with wait, logs)
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


def _python(cluster: dict[str, Any] | None) -> str:
    if ray_in_container(cluster):  # the image's Python (first on PATH inside the container)
        return "python"
    venv = (((cluster or {}).get("setup") or {}).get("python") or {}).get("venv_dir") or "/opt/styx/venv"
    return f"{venv}/bin/python"


def run(stack: str | None, op: str, *, backend: str | None = None, on_log: Callable[[str], None] | None = None,
        timeout: float | None = None, **args: Any) -> JobResult:
    """One Jobs API operation (`submit`, `status`, `logs`, `stop`, `list`) on the cluster's head."""
    _session, outputs, cluster = load(stack, backend)
    ray_cfg = ((cluster or {}).get("setup") or {}).get("ray") or {}
    if ray_cfg.get("enabled", True) is False:
        raise StyxError("this cluster has Ray disabled (setup.ray.enabled: false)", EXIT_USAGE)
    t = target_for(outputs, cluster, "head")
    working_dir = args.pop("working_dir", None)
    if working_dir is not None:
        src = Path(working_dir).expanduser()
        if not src.is_dir():
            raise StyxError(f"--working-dir {working_dir}: not a folder", EXIT_USAGE)
        dest = f"/tmp/styx-jobs/{uuid.uuid4().hex[:12]}"
        r = copy_to(t, src, dest, timeout=timeout)
        if r.exit_code != 0:
            raise StyxError(f"copying {src} to the head failed: {r.stderr.strip()[-500:]}", EXIT_FAILED)
        args.setdefault("runtime_env", {})["working_dir"] = dest
        args["cleanup"] = dest
    args.update(op=op, address=f"http://127.0.0.1:{dashboard_port(cluster)}")
    program = "import json\nARGS = json.loads(" + repr(json.dumps(args)) + ")\n" + PROGRAM
    cmd = ray_client_command(cluster, f"RAY_USAGE_STATS_ENABLED=0 {shlex.quote(_python(cluster))} -")
    logs: list[str] = []
    rec: dict[str, Any] = {}

    def line(text: str) -> None:
        if text.startswith(MARK):
            rec.update(json.loads(text[len(MARK):]))
            return
        logs.append(text + "\n")
        if on_log:
            on_log(text)

    r = run_on(t, cmd, timeout=timeout, on_stdout=line, stdin_text=program)
    code, err = r.exit_code, r.stderr
    if "error" in rec:
        raise StyxError(f"ray job {op}: {rec['error']}", EXIT_FAILED)
    if code != 0 or not rec:
        tail = "\n".join(err.strip().splitlines()[-8:])
        raise StyxError(f"ray job {op} on the head failed (exit {code}): {tail}", EXIT_FAILED)
    return JobResult(id=rec.get("id") or rec.get("submitted"), status=rec.get("status"), message=rec.get("message"),
                     logs="".join(logs), record=rec)
