"""Issue 3 end to end: the real engine (Automation API, file backend in a temp dir) brings the local
stack up on sandbox hosts, real packages, real Ray; then no-op, diff, grow, fail/fix, destroy.

The tests in this module run in order and share one cluster (bringing it up is the slow part).
"""

from __future__ import annotations

import copy
import json
import time

import pytest
import yaml

from tests.e2e.helpers import RAY_ENV, ROOT, Stack, leftovers, require_engine_and_sandbox, sandbox_status

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "e2e"
SECRET = "e2e-secret-value-7f3a"


def cluster_config(**setup_changes) -> dict:
    raw = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]["styx:cluster"]
    c = copy.deepcopy(raw)
    c["name"] = NAME
    c["local"]["subnet"] = "10.79.0.0/24"
    c["setup"]["secret_env"] = {"STYX_DEMO_TOKEN": SECRET}
    c["setup"].update(setup_changes)
    return c


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_engine_and_sandbox()
    s = Stack("e2e", cluster_config(), tmp_path_factory.mktemp("e2e"))
    yield s
    try:
        s.destroy()
    finally:
        s.stack.workspace.remove_stack(s.name)


def test_up_from_nothing_gives_a_live_ray_cluster(stack):
    t = time.monotonic()
    _res, _ops = stack.up()
    elapsed = time.monotonic() - t
    print(f"cold up: {elapsed:.1f}s")
    out = stack.outputs()
    head = out["head_ip"]
    status = stack.ssh(head, RAY_ENV + "/opt/styx/venv/bin/ray status --address "
                             f"{out['ray_address']}").stdout
    assert status.count("node_") >= 3 or "3 node" in status, status
    alive = stack.ssh(head, RAY_ENV + "/opt/styx/venv/bin/python - <<'EOF'\n"
                            "import ray; ray.init(address='auto', logging_level='ERROR')\n"
                            "print(sum(1 for n in ray.nodes() if n['Alive']))\nEOF").stdout.strip().splitlines()[-1]
    assert alive == "3"
    # every phase reported a status line
    for node, phases in out["phase_results"].items():
        for phase, line in phases.items():
            assert line.startswith(f"styx {phase.split('-')[0]}") or line.startswith("styx "), (node, phase, line)


def test_a_ray_task_on_a_worker_sees_env_secret_and_synced_file(stack):
    out = stack.outputs()
    worker_ip = next(n["private_ip"] for n in out["nodes"] if n["role"] == "worker")
    script = f"""
import json, os, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address='auto', logging_level='ERROR')
node = next(n['NodeID'] for n in ray.nodes() if n['Alive'] and n['NodeManagerAddress'] == '{worker_ip}')
@ray.remote(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False))
def probe():
    import socket
    return dict(host=socket.gethostname(), demo=os.environ.get('STYX_DEMO'),
                token=os.environ.get('STYX_DEMO_TOKEN'), file=open('/opt/styx/files/train.json').read())
print(json.dumps(ray.get(probe.remote())))
"""
    r = stack.ssh(out["head_ip"], f"{RAY_ENV}/opt/styx/venv/bin/python - <<'EOF'\n{script}\nEOF")
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["host"].startswith("worker-")
    assert got["demo"] == "hello from styx"
    assert got["token"] == SECRET
    assert json.loads(got["file"])["model"] == "demo"


def test_secret_never_in_plain_text_in_state_or_outputs(stack):
    # every file the engine wrote (checkpoints, backups, history) and the stack settings file
    files = [p for p in (stack.tmp / "state").rglob("*") if p.is_file()]
    files += list((stack.tmp / "ws").glob("Pulumi.*.yaml"))
    assert files
    for f in files:
        text = f.read_bytes().decode(errors="replace")
        assert SECRET not in text, f
        assert "BEGIN OPENSSH PRIVATE KEY" not in text, f
    plain_outputs = {k: v.value for k, v in stack.stack.outputs().items() if not v.secret}
    assert SECRET not in json.dumps(plain_outputs)
    assert "ssh_private_key" not in plain_outputs


def test_second_up_changes_nothing_and_runs_nothing(stack):
    head = stack.outputs()["head_ip"]
    before = stack.ssh(head, "stat -c %Y /var/log/styx/*.log | sort | md5sum").stdout
    t = time.monotonic()
    res, ops = stack.up()
    print(f"no-op up: {time.monotonic() - t:.1f}s")
    assert ops.changed() == {}
    changes = res.summary.resource_changes
    assert set(changes) == {"same"}, changes
    assert stack.ssh(head, "stat -c %Y /var/log/styx/*.log | sort | md5sum").stdout == before


def test_changed_custom_script_previews_exactly_custom_and_later(stack):
    c = copy.deepcopy(stack.cluster)
    c["setup"]["custom_scripts"][0]["inline"] = 'echo "hello again from $(hostname)" > /opt/styx/work/hello.txt\n'
    stack.reconfigure(c)
    _, ops = stack.preview()
    expected = {f"{NAME}-{n}-{p}" for n in ("head", "worker-0", "worker-1") for p in ("custom-hello", "ray")}
    assert set(ops.changed()) == expected, ops.changed()
    replacing = {"replace", "create-replacement", "delete-replaced", "update"}
    assert all(o <= replacing for o in ops.changed().values()), ops.changed()
    _res, ops = stack.up()
    assert set(ops.changed()) == expected
    head = stack.outputs()["head_ip"]
    assert "hello again" in stack.ssh(head, "cat /opt/styx/work/hello.txt").stdout


def test_growing_workers_creates_only_the_new_node(stack):
    c = copy.deepcopy(stack.cluster)
    c["workers"][0]["count"] = 3
    stack.reconfigure(c)
    _res, ops = stack.up()
    changed = ops.changed()
    assert changed, "something must be created"
    assert all(n.startswith(f"{NAME}-worker-2") for n in changed), changed
    assert all(o == {"create"} for o in changed.values()), changed
    out = stack.outputs()
    alive = stack.ssh(out["head_ip"], RAY_ENV + "/opt/styx/venv/bin/python -c "
                                      "\"import ray; ray.init(address='auto', logging_level='ERROR'); "
                                      "print(sum(n['Alive'] for n in ray.nodes()))\"").stdout.strip().splitlines()[-1]
    assert alive == "4"


def test_failing_custom_script_fails_with_its_stderr_then_fix_reruns_from_there(stack):
    from pulumi import automation as auto

    good = copy.deepcopy(stack.cluster)
    bad = copy.deepcopy(good)
    bad["setup"]["custom_scripts"][0]["inline"] = "echo 'custom step exploded: disk on fire' >&2\nexit 7\n"
    stack.reconfigure(bad)
    with pytest.raises(auto.CommandError) as e:
        stack.up()
    assert "custom step exploded: disk on fire" in str(e.value)
    stack.reconfigure(good)
    _res, ops = stack.up()
    phases = {n.split("-", 2)[-1] if not n.startswith(f"{NAME}-worker") else n.split("-", 3)[-1]
              for n in ops.changed()}
    assert phases <= {"custom-hello", "ray"}, ops.changed()


def test_destroy_leaves_nothing_and_is_repeatable(stack):
    stack.destroy()
    assert leftovers(sandbox_status(NAME)) == {}
    _res, ops = stack.destroy()
    assert ops.changed() == {}
