"""`styx job submit|status|logs|stop|list`: Ray Jobs through Ray's JobSubmissionClient on the head
(styx.app.jobs). `submit` waits for the job and streams its logs unless --no-wait; its exit code is 0
when the job SUCCEEDED, 1 when it FAILED or was STOPPED."""

from __future__ import annotations

from dataclasses import asdict

import click

from styx.app.cli.common import (
    EXIT_USAGE,
    StyxError,
    backend_option,
    emit_json,
    handle_errors,
    info,
    json_option,
    stack_option,
)
from styx.app.cli.remote import _RawArgsCommand


@click.group("job")
def job() -> None:
    """Ray jobs on a cluster: submit (streams logs, exits with the job's status), status, logs, stop, list."""


def _done(result, as_json: bool, exit_on_status: bool = True) -> None:
    if as_json:
        emit_json({**asdict(result), "ok": result.ok or not exit_on_status})
    elif result.status:
        info(f"job {result.id}: {result.status}" + (f" ({result.message})" if result.message else ""))
    if exit_on_status and result.status in ("FAILED", "STOPPED"):
        raise SystemExit(1)


@job.command("submit", cls=_RawArgsCommand, context_settings={"ignore_unknown_options": True})
@stack_option
@backend_option
@click.option("--working-dir", type=click.Path(file_okay=False, exists=True),
              help="A local folder uploaded as the job's working_dir.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="An env var for the job (runtime_env).")
@click.option("--pip", "pip", multiple=True, metavar="REQ", help="A pip requirement for the job (runtime_env).")
@click.option("--submission-id", help="The job's id (default: Ray's raysubmit_...).")
@click.option("--no-wait", is_flag=True, help="Return once submitted.")
@json_option
@click.argument("entrypoint", nargs=-1, required=True, type=click.UNPROCESSED)
@handle_errors
def submit(stack_name, backend, working_dir, env, pip, submission_id, no_wait, as_json, entrypoint):
    """Submit a Ray job: styx job submit [--working-dir DIR] -- python train.py --epochs 3"""
    import shlex

    from styx.app import api

    runtime_env: dict = {}
    if env:
        bad = [e for e in env if "=" not in e]
        if bad:
            raise StyxError(f"--env {bad[0]}: expected K=V", EXIT_USAGE)
        runtime_env["env_vars"] = dict(e.split("=", 1) for e in env)
    if pip:
        runtime_env["pip"] = list(pip)
    cmd = entrypoint[0] if len(entrypoint) == 1 else shlex.join(entrypoint)
    r = api.job_submit(stack_name, cmd, backend=backend, working_dir=working_dir, runtime_env=runtime_env or None,
                       submission_id=submission_id, wait=not no_wait, on_log=None if as_json else click.echo)
    _done(r, as_json, exit_on_status=not no_wait)


@job.command("status")
@stack_option
@backend_option
@json_option
@click.argument("job_id")
@handle_errors
def status(stack_name, backend, as_json, job_id):
    """A job's status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    from styx.app import jobs

    r = jobs.run(stack_name, "status", backend=backend, id=job_id)
    if as_json:
        emit_json({**asdict(r), "ok": True})
    else:
        click.echo(f"{r.id}: {r.status}" + (f" ({r.message})" if r.message else ""))


@job.command("logs")
@stack_option
@backend_option
@click.option("-f", "--follow", is_flag=True, help="Keep streaming until the job ends.")
@click.argument("job_id")
@handle_errors
def logs(stack_name, backend, follow, job_id):
    """A job's logs."""
    from styx.app import jobs

    jobs.run(stack_name, "logs", backend=backend, id=job_id, follow=follow, on_log=click.echo)


@job.command("stop")
@stack_option
@backend_option
@json_option
@click.argument("job_id")
@handle_errors
def stop(stack_name, backend, as_json, job_id):
    """Stop a job."""
    from styx.app import jobs

    r = jobs.run(stack_name, "stop", backend=backend, id=job_id)
    if as_json:
        emit_json({**asdict(r), "ok": True})
    else:
        click.echo(f"{r.id}: {'stop requested' if r.record.get('stopped') else 'not running'} ({r.status})")


@job.command("list")
@stack_option
@backend_option
@json_option
@handle_errors
def list_(stack_name, backend, as_json):
    """The cluster's jobs."""
    from styx.app import jobs

    r = jobs.run(stack_name, "list", backend=backend)
    rows = r.record.get("jobs") or []
    if as_json:
        emit_json({"ok": True, "jobs": rows})
        return
    for j in rows:
        click.echo(f"{j['id']}  {j['status']:<9}  {j['entrypoint']}")
