"""The phase graph under Pulumi mocks: shape, ordering, triggers, outputs, secrets."""

from __future__ import annotations

import asyncio
import copy
import itertools

import pulumi
import pytest
from mocking import Secret, env_of, local_cluster, run_program


def _names(resources):
    return {r.name: r for r in resources}


def test_graph_per_node(recorded):
    rec = run_program(local_cluster())
    names = [r.name for r in rec.of_type("command:remote:Command")]
    for node in ("head", "worker-0", "worker-1"):
        mine = [n for n in names if n.startswith(f"demo-{node}-")]
        phases = [n[len(f"demo-{node}-"):] for n in mine]
        assert phases[0] == "wait_ssh"
        assert phases[-1] == "ray"
        assert set(phases) == {"wait_ssh", "system_packages", "python_env", "gpu", "env_vars", "custom-hello", "ray"}
    assert len(rec.of_type("styx:index:Node")) == 3
    assert len(rec.of_type("styx:index:Cluster")) == 1


def test_each_phase_depends_on_the_previous_and_gate_on_machine(recorded):
    cfg = local_cluster()
    cfg["setup"]["python"] = {"pip_packages": ["six==1.16.0"]}  # a user's pip package: python_env waits for apt
    run_program(cfg)
    order = ["wait_ssh", "system_packages", "python_env", "gpu", "env_vars", "custom-hello", "ray"]
    for node in ("head", "worker-0"):
        for prev, cur in itertools.pairwise(order):
            deps = recorded[f"demo-{node}-{cur}"]["deps"]
            assert recorded[f"demo-{node}-{prev}"]["res"] in deps, f"{node}: {cur} must depend on {prev}"
        gate_deps = recorded[f"demo-{node}-wait_ssh"]["deps"]
        assert any(getattr(d, "_name", "") == f"demo-{node}-sandbox" for d in gate_deps)


def test_python_env_without_user_pip_packages_runs_alongside_system_packages(recorded):
    rec = run_program(local_cluster())  # Ray only: wheels, no apt package needed
    for node in ("head", "worker-0"):
        r = {p: recorded[f"demo-{node}-{p}"] for p in ("wait_ssh", "system_packages", "python_env", "gpu")}
        assert r["python_env"]["deps"] == [r["wait_ssh"]["res"]], f"{node}: python_env waits only for the gate"
        assert r["system_packages"]["res"] not in r["python_env"]["deps"]
        # the next phase waits for both
        assert {id(d) for d in r["gpu"]["deps"]} == {id(r["system_packages"]["res"]), id(r["python_env"]["res"])}
    # the trigger chain still follows system_packages: editing setup.packages re-runs python_env
    res = _names(rec.resources)
    sp_chain_in_py = res["demo-head-python_env"].inputs["triggers"][1]
    assert sp_chain_in_py != res["demo-head-wait_ssh"].inputs["triggers"][0]


def test_editing_packages_still_reruns_python_env():
    a = _triggers(local_cluster())
    cfg = local_cluster()
    cfg["setup"]["packages"] = ["jq", "curl"]
    b = _triggers(cfg)
    assert a["demo-head-python_env"] != b["demo-head-python_env"]
    assert a["demo-head-wait_ssh"] == b["demo-head-wait_ssh"]


def test_worker_ray_starts_beside_head_ray_and_waits_for_its_generation(recorded):
    from styx.components.node import digest

    rec = run_program(local_cluster())  # setup.ray.worker_start: with_head (the default)
    res = _names(rec.resources)
    head_ray = recorded["demo-head-ray"]["res"]
    head_gen = digest(*res["demo-head-ray"].inputs["triggers"])  # the head's chain hash: its generation
    for w in ("worker-0", "worker-1"):
        deps = recorded[f"demo-{w}-ray"]["deps"]
        # not after the head's Ray, but after what the head's Ray waits for (its custom script)
        assert head_ray not in deps
        assert recorded["demo-head-custom-hello"]["res"] in deps
        assert recorded[f"demo-{w}-custom-hello"]["res"] in deps
        # the worker waits in the head's GCS for that generation; it is a parameter, so a new head
        # generation re-runs the workers' Ray as before
        assert env_of(res[f"demo-{w}-ray"].inputs["stdin"], "ray")["STYX_RAY_HEAD_GENERATION"] == head_gen
        # and the head's chain is its third trigger, as with after_head (not in its own hash: a preview
        # says it re-runs because the head's Ray changed)
        assert res[f"demo-{w}-ray"].inputs["triggers"][2] == head_gen
    assert "STYX_RAY_HEAD_GENERATION" not in env_of(res["demo-head-ray"].inputs["stdin"], "ray")


def test_a_new_head_generation_reruns_the_workers_ray():
    before = _triggers(local_cluster())
    changed = local_cluster()
    changed["setup"]["ray"] = {"extra_start_args": ["--num-cpus=1"]}
    after = _triggers(changed)
    assert {n for n in before if before[n] != after[n]} == {f"demo-{n}-ray" for n in ("head", "worker-0", "worker-1")}


@pytest.mark.parametrize("how", ["config", "repair"])
def test_worker_ray_follows_head_ray_with_after_head(recorded, how):
    cfg = local_cluster()
    if how == "config":
        cfg["setup"]["ray"] = {"worker_start": "after_head"}
        rec = run_program(cfg)
    else:  # a repair of the head's Ray orders the workers' after it, whatever the config says
        rec = run_program(cfg, ray_workers_after_head=True)
    head_ray = recorded["demo-head-ray"]["res"]
    for w in ("worker-0", "worker-1"):
        assert head_ray in recorded[f"demo-{w}-ray"]["deps"]
    res = _names(rec.resources)
    # a repair's workers keep the generation to wait for: their programs are the same as a launch's, so
    # the next launch finds nothing changed
    assert ("STYX_RAY_HEAD_GENERATION" in env_of(res["demo-worker-0-ray"].inputs["stdin"], "ray")) == (how == "repair")
    if how == "repair":
        assert _triggers(cfg) == {r.name: r.inputs["triggers"] for r in rec.of_type("command:remote:Command")}
        assert {r.name: r.inputs["stdin"] for r in run_program(cfg).of_type("command:remote:Command")} == {
            r.name: r.inputs["stdin"] for r in rec.of_type("command:remote:Command")}
    head_chain_in_worker = res["demo-worker-0-ray"].inputs["triggers"][2]
    # the head's Ray chain hash is the third trigger of every worker's Ray phase
    assert head_chain_in_worker == res["demo-worker-1-ray"].inputs["triggers"][2]


def test_gate_dials_without_limit_and_phases_with_a_limit():
    rec = run_program(local_cluster())
    res = _names(rec.resources)
    assert res["demo-head-wait_ssh"].inputs["connection"]["dialErrorLimit"] == -1
    assert res["demo-head-ray"].inputs["connection"]["dialErrorLimit"] == 10


def test_parameters_travel_on_stdin_not_in_the_command_or_ssh_environment():
    rec = run_program(local_cluster())
    for r in rec.of_type("command:remote:Command"):
        assert "environment" not in r.inputs or not r.inputs["environment"]
        assert r.inputs["create"].startswith("exec bash -c ") and "export " not in r.inputs["create"]
        assert len(r.inputs["create"]) < 700, r.name
        assert r.inputs["stdin"].startswith("# styx ")
    ray = _names(rec.resources)["demo-head-ray"].inputs
    assert "STYX_RAY_USAGE_STATS=0" in ray["stdin"]
    assert "STYX_RAY_DASHBOARD_HOST=127.0.0.1" in ray["stdin"]
    assert ray["create"].endswith(" ray head 900 create") and ray["delete"].endswith(" ray head 900 delete")


def test_phases_with_an_undo_replace_delete_first_and_carry_their_generation(recorded):
    run_program(local_cluster())
    for name in ("demo-head-env_vars", "demo-head-ray", "demo-worker-0-ray"):
        assert recorded[name]["kw"]["opts"].delete_before_replace is True, name
    assert not recorded["demo-head-python_env"]["kw"]["opts"].delete_before_replace


def test_file_sync_replaces_create_first_its_undo_guarded(tmp_path):
    from styx.components.phases import PHASES

    fs = next(p for p in PHASES if p.name == "file_sync")
    assert fs.undo and not fs.replace_delete_first
    assert all(p.replace_delete_first for p in PHASES if p.undo and p.name not in ("file_sync", "wheel_cache"))


def test_timeouts_come_from_the_phase_table_or_the_config():
    c = copy.deepcopy(local_cluster())
    c["setup"]["timeouts"] = {"ray": 120, "default": 600}
    res = _names(run_program(c).resources)
    assert res["demo-head-ray"].inputs["create"].endswith(" ray head 120 create")
    assert res["demo-head-python_env"].inputs["create"].endswith(" python_env head 600 create")


def _triggers(cluster):
    rec = run_program(cluster)
    return {r.name: r.inputs["triggers"] for r in rec.of_type("command:remote:Command")}


def test_changing_custom_script_changes_exactly_that_phase_and_later():
    before = _triggers(local_cluster())
    changed = local_cluster()
    changed["setup"]["custom_scripts"][0]["inline"] = "echo changed > /tmp/hello"
    after = _triggers(changed)
    diff = {n for n in before if before[n] != after[n]}
    expected = {f"demo-{n}-{p}" for n in ("head", "worker-0", "worker-1") for p in ("custom-hello", "ray")}
    assert diff == expected


def test_changing_the_ray_version_reruns_python_env_and_later_only():
    before = _triggers(local_cluster())
    changed = local_cluster()
    changed["setup"]["ray"] = {"version": "2.59.0"}
    after = _triggers(changed)
    diff = {n for n in before if before[n] != after[n]}
    assert {"demo-head-python_env", "demo-head-ray", "demo-worker-1-python_env", "demo-worker-1-ray"} <= diff
    assert not any(n.endswith(("-wait_ssh", "-system_packages")) for n in diff), diff


def test_changing_one_script_changes_that_phase_and_later(monkeypatch):
    import styx.components.phases as ph

    before = _triggers(local_cluster())
    orig = ph.script_text

    def patched(name):
        text = orig(name)
        return text + "\n# edited\n" if name == "python_env.sh" else text

    monkeypatch.setattr(ph, "script_text", patched)
    after = _triggers(local_cluster())
    diff = {n for n in before if before[n] != after[n]}
    later = ("python_env", "gpu", "env_vars", "custom-hello", "ray")
    assert diff == {f"demo-{n}-{p}" for n in ("head", "worker-0", "worker-1") for p in later}


def test_custom_script_moved_to_head_only_changes_only_workers():
    before = _triggers(local_cluster())
    changed = local_cluster()
    changed["setup"]["custom_scripts"][0]["run_on"] = "head"
    after = _triggers(changed)
    # the head's phases are untouched; workers lose the custom phase and re-run Ray
    assert all(before[n] == after[n] for n in before if n.startswith("demo-head-"))
    assert "demo-worker-0-custom-hello" not in after
    assert before["demo-worker-0-ray"] != after["demo-worker-0-ray"]


def test_unchanged_config_gives_identical_triggers():
    assert _triggers(local_cluster()) == _triggers(local_cluster())


def test_adding_a_worker_adds_only_its_resources():
    before = _triggers(local_cluster())
    bigger = local_cluster(workers=[{"name": "worker", "count": 3}])
    after = _triggers(bigger)
    assert {n for n in after if n not in before} == {n for n in after if n.startswith("demo-worker-2-")}
    assert all(before[n] == after[n] for n in before)


def test_outputs():
    rec = run_program(local_cluster())
    out = rec.outputs
    assert out["head_ip"] == "10.77.0.2"
    assert out["ray_address"] == "10.77.0.2:6379"
    assert [n["name"] for n in out["nodes"]] == ["head", "worker-0", "worker-1"]
    assert out["nodes"][1]["private_ip"] == "10.77.0.10"
    assert out["ssh_user"] == "root"
    assert "-L 8265:127.0.0.1:8265" in out["dashboard"]
    assert isinstance(out["ssh_private_key"], Secret)
    assert set(out["phase_results"]["head"]) >= {"wait_ssh", "ray"}


def test_secrets_are_marked_secret(recorded):
    run_program(local_cluster())
    loop = asyncio.get_event_loop()

    def is_secret(v):
        return loop.run_until_complete(pulumi.Output.from_input(v).is_secret())

    env_stdin = recorded["demo-head-env_vars"]["kw"]["stdin"]
    assert is_secret(env_stdin), "the env phase program carries a secret"
    assert isinstance(recorded["demo-head-env_vars"]["kw"]["create"], str), "its command text never does"
    assert is_secret(recorded["demo-head-env_vars"]["kw"]["triggers"][0]), "its hash too"
    assert not is_secret(recorded["demo-head-python_env"]["kw"]["stdin"])
    assert is_secret(recorded["demo-head-wait_ssh"]["kw"]["connection"].private_key)
    opts = recorded["demo-head-env_vars"]["kw"]["opts"]
    assert set(opts.additional_secret_outputs) == {"stdout", "stderr"}
    assert recorded["demo-head-custom-hello"]["kw"]["opts"].additional_secret_outputs


def test_ray_phase_replaces_delete_first(recorded):
    run_program(local_cluster())
    assert recorded["demo-head-ray"]["kw"]["opts"].delete_before_replace is True
    assert "ray_delete" in recorded["demo-head-ray"]["kw"]["delete"] or recorded["demo-head-ray"]["kw"]["delete"]


def test_bad_config_registers_nothing():
    bad = copy.deepcopy(local_cluster())
    bad["workers"][0]["count"] = -1
    with pytest.raises(pulumi.RunError) as e:
        run_program(bad)
    assert "styx:cluster.workers[0].count" in str(e.value)


def test_missing_file_mount_fails_before_anything(tmp_path):
    c = local_cluster()
    c["setup"]["file_mounts"] = [{"local": "nope", "remote": "/opt/x"}]
    with pytest.raises(pulumi.RunError) as e:
        run_program(c, tmp_path)
    assert "styx:cluster.setup.file_mounts[0].local" in str(e.value)


def test_ssh_backend_adopts_hosts():
    rec = run_program({"name": "adopt", "cloud": "ssh", "ssh": {"user": "ubuntu"},
                       "head": {"host": "192.0.2.10"}, "workers": [{"hosts": ["192.0.2.11", "192.0.2.12"]}],
                       "setup": {"ray": {"enabled": True}}})
    assert sorted(r.name for r in rec.of_type("command:local:Command")) == sorted([
        "adopt-ssh-key", "adopt-ray-token", "adopt-head-host-key-scan", "adopt-worker-0-host-key-scan",
        "adopt-worker-1-host-key-scan"]), "only the key, the Ray token and the host key scans (first use) run locally"
    gate = _names(rec.resources)["adopt-worker-1-wait_ssh"]
    assert gate.inputs["connection"]["host"] == "192.0.2.12"
    assert gate.inputs["connection"]["user"] == "ubuntu"
    assert rec.outputs["ray_address"] == "192.0.2.10:6379"


def test_phases_are_deleted_with_their_machine(recorded):
    run_program(local_cluster())
    for name, call in recorded.items():
        machine = call["kw"]["opts"].deleted_with
        node = name[len("demo-"):].rsplit("-", 1)[0] if not name.endswith("custom-hello") else None
        assert machine is not None, name
        assert machine._name.endswith("-sandbox"), name
        if node:
            assert machine._name.startswith("demo-" + name.split("-")[1]), name


def test_ssh_hosts_undo_their_phases_on_destroy(recorded):
    run_program({"name": "adopt", "cloud": "ssh", "head": {"host": "192.0.2.10"}})
    assert all(c["kw"]["opts"].deleted_with is None for c in recorded.values())


def test_growing_keeps_existing_sandboxes():
    def sandboxes(cluster):
        return {r.name: r.inputs["triggers"] for r in run_program(cluster).of_type("command:local:Command")
                if r.name.endswith("-sandbox")}

    before = sandboxes(local_cluster())
    after = sandboxes(local_cluster(workers=[{"name": "worker", "count": 3}]))
    assert all(before[n] == after[n] for n in before)
    assert set(after) - set(before) == {"demo-worker-2-sandbox"}


def test_a_replacement_that_only_follows_an_earlier_change_gets_a_new_generation():
    """The undo guard compares generations: a phase replaced because an earlier one changed (same
    script and parameters) must not share its predecessor's, or the old undo would remove its files."""
    import re

    def gen(cluster) -> str:
        stdin = _names(run_program(cluster).resources)["demo-head-env_vars"].inputs["stdin"]
        return re.search(r"styx_generation_claim env_vars (\S+)", stdin).group(1)

    changed = local_cluster()
    changed["setup"]["packages"] = ["jq", "tree"]
    assert gen(local_cluster()) != gen(changed)
    assert gen(local_cluster()) == gen(local_cluster())
