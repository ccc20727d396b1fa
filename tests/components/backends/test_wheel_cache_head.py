"""setup.python.wheel_cache auto on the ssh, aws and gcp backends under Pulumi mocks: the head's wheel_cache phase
(first on the head, beside apt) fetches the cluster's wheels once and serves them on its private address; every
python_env (the head's too) gets the URL and depends on that phase explicitly; the index stays a secret, never a
command line; `off`, a cluster without python_env and the local backend get no such phase."""

from __future__ import annotations

import copy

import pytest
from mocking import env_of, is_secret_input, local_cluster, run_program
from test_aws_mocks import INGRESS, aws_cluster
from test_aws_mocks import by_name as aws_by_name
from test_gcp_mocks import FIREWALL, gcp_cluster, gcp_runner

from styx.components.phases import HEAD_WHEEL_CACHE_PORT, wheel_cache_key, wheel_cache_specs
from styx.components.runner import parse_program
from styx.model.config import parse_cluster

REMOTE = "command:remote:Command"
HEAD_IP, W0_IP, W1_IP = "10.121.0.2", "10.121.0.10", "10.121.0.11"


def ssh_cluster(**setup) -> dict:
    return {"name": "hwc", "cloud": "ssh", "head": {"host": HEAD_IP},
            "workers": [{"name": "worker", "hosts": [W0_IP, W1_IP]}],
            "setup": {"packages": ["jq"], **setup}}


@pytest.fixture
def gcp_program(monkeypatch, tmp_path):
    yield from gcp_runner(monkeypatch, tmp_path)


def _phases(rec, node: str, cluster: str) -> list[str]:
    pre = f"{cluster}-{node}-"
    return [r.name[len(pre):] for r in rec.of_type(REMOTE) if r.name.startswith(pre)]


def test_ssh_head_fills_and_serves_every_python_env_installs_from_it_after_it(recorded):
    cfg = ssh_cluster()
    rec = run_program(cfg)
    cmds = {r.name: r for r in rec.of_type(REMOTE)}
    key = wheel_cache_key(parse_cluster(cfg), "system")
    # the head's phases (the mocks see them in the order their inputs resolve: the order is the dependencies',
    # checked below)
    assert {"wait_ssh", "wheel_cache", "system_packages"} <= set(_phases(rec, "head", "hwc"))
    assert "wheel_cache" not in _phases(rec, "worker-0", "hwc")  # the head's only
    wc = env_of(cmds["hwc-head-wheel_cache"].inputs["stdin"], "wheel_cache")
    assert wc["STYX_WC_KEY"] == key and wc["STYX_WC_BIND"] == HEAD_IP
    assert wc["STYX_WC_PORT"] == str(HEAD_WHEEL_CACHE_PORT) and wc["STYX_WC_PYTHON"] == "system"
    assert wc["STYX_WC_SPECS"].split("\n") == wheel_cache_specs(parse_cluster(cfg)) == [
        "ray[default]==2.60.0", "uv==0.13.9", "pip", "setuptools", "wheel"]
    assert "def fill(" in wc["STYX_WC_PROGRAM"] and "STYX_UVW_PAGES" in wc["STYX_UVW_PROGRAM"]
    # the undo (styx down) stops the server
    assert cmds["hwc-head-wheel_cache"].inputs["delete"].endswith(" wheel_cache head 900 delete")
    assert "no wheel cache server here" in cmds["hwc-head-wheel_cache"].inputs["stdin"]  # wheel_cache_delete.sh
    url = f"http://{HEAD_IP}:{HEAD_WHEEL_CACHE_PORT}/{key}/"
    head_cache = recorded["hwc-head-wheel_cache"]["res"]
    for node in ("head", "worker-0", "worker-1"):
        assert env_of(cmds[f"hwc-{node}-python_env"].inputs["stdin"], "python_env")["STYX_WHEEL_CACHE_URL"] == url
        # the explicit dependency: python_env starts once the head's cache is ready
        assert head_cache in recorded[f"hwc-{node}-python_env"]["deps"], node
    # apt starts beside the cache on the head (both wait for the gate only)
    gate = recorded["hwc-head-wait_ssh"]["res"]
    assert recorded["hwc-head-system_packages"]["deps"] == [gate]
    assert recorded["hwc-head-wheel_cache"]["deps"] == [gate]


def test_a_worker_follows_the_head_cache_in_order_only_not_in_its_trigger_chain():
    rec = run_program(ssh_cluster())
    cmds = {r.name: r for r in rec.of_type(REMOTE)}
    # own hash + its node's chain: the head's chain is not there (the URL, a parameter, says what it needs)
    assert len(cmds["hwc-worker-0-python_env"].inputs["triggers"]) == 2
    # the worker's Ray still follows the head's: the head's generation is its parameter (worker_start with_head)
    assert len(cmds["hwc-worker-0-ray"].inputs["triggers"]) == 3
    assert env_of(cmds["hwc-worker-0-ray"].inputs["stdin"], "ray")["STYX_RAY_HEAD_GENERATION"]


def test_a_changed_requirement_refills_the_head_and_reinstalls_the_workers_a_same_one_changes_nothing():
    def triggers(cfg):
        return {r.name: r.inputs["triggers"] for r in run_program(cfg).of_type(REMOTE)}

    base = triggers(ssh_cluster())
    assert triggers(ssh_cluster()) == base  # a no-op up: nothing to run
    more = triggers(ssh_cluster(python={"pip_packages": ["six==1.16.0"]}))
    changed = {n for n in base if base[n] != more.get(n)}
    assert {"hwc-head-wheel_cache", "hwc-head-python_env", "hwc-worker-0-python_env"} <= changed
    assert not any(n.endswith("-wait_ssh") for n in changed)
    assert not {"hwc-worker-0-system_packages", "hwc-worker-1-system_packages"} & changed


def test_the_index_url_is_a_secret_on_stdin_never_a_command_line():
    url = "https://user:hunter2@mirror.example/simple"
    rec = run_program(ssh_cluster(python={"index_url": url}))
    wc = rec.named("hwc-head-wheel_cache")
    assert is_secret_input(wc.raw["stdin"])
    assert env_of(wc.inputs["stdin"], "wheel_cache")["STYX_PIP_INDEX_URL"] == url
    for r in rec.of_type(REMOTE):
        assert "hunter2" not in r.inputs["create"] and "hunter2" not in (r.inputs.get("delete") or ""), r.name
    # every phase that gets the index has it as a secret input (python_env, ray: never plain in the state)
    for phase in ("python_env", "ray"):
        for node in ("head", "worker-0"):
            r = rec.named(f"hwc-{node}-{phase}")
            assert is_secret_input(r.raw["stdin"]), r.name
            assert env_of(r.inputs["stdin"], phase)["STYX_PIP_INDEX_URL"] == url
    # the key follows the index: another mirror, another folder
    assert wheel_cache_key(parse_cluster(ssh_cluster(python={"index_url": url})), "system") != \
        wheel_cache_key(parse_cluster(ssh_cluster()), "system")


@pytest.mark.parametrize("setup", [{"python": {"wheel_cache": "off"}}, {"ray": {"enabled": False}}])
def test_off_or_nothing_to_install_no_cache_phase_no_url(setup):
    rec = run_program(ssh_cluster(**setup))
    assert not [r for r in rec.of_type(REMOTE) if r.name.endswith("-wheel_cache")]
    for r in rec.of_type(REMOTE):
        assert "STYX_WHEEL_CACHE_URL" not in parse_program(r.inputs["stdin"])[0], r.name


def test_local_keeps_its_own_cache_on_the_host():
    rec = run_program(local_cluster())
    assert not [r for r in rec.of_type(REMOTE) if r.name.endswith("-wheel_cache")]
    assert rec.named("demo-wheels")  # sandbox/wheel_cache.py fill on this machine


def test_aws_the_workers_get_the_heads_private_address_and_wait_for_its_cache(aws_program):
    workers = [{"name": "gpu", "count": 2, "instance_type": "m6i.large"}]
    run = aws_program(aws_cluster(workers=workers))
    head = next(n for n in run.outputs["nodes"] if n["name"] == "head")
    assert head["private_ip"] != head["host"]
    cmds = aws_by_name(run, REMOTE)
    wc = env_of(cmds["demo-head-wheel_cache"].inputs["stdin"], "wheel_cache")
    assert wc["STYX_WC_BIND"] == head["private_ip"]
    url = f"http://{head['private_ip']}:{HEAD_WHEEL_CACHE_PORT}/{wc['STYX_WC_KEY']}/"
    for node in ("head", "gpu-0", "gpu-1"):
        assert env_of(cmds[f"demo-{node}-python_env"].inputs["stdin"], "python_env")["STYX_WHEEL_CACHE_URL"] == url
        assert "demo-head-wheel_cache" in run.graph.deps(f"demo-{node}-python_env"), node
    # the port is open between the cluster's nodes only: the self-referencing all-traffic rule, nothing to a CIDR
    rules = [r.inputs for r in run.of_type(INGRESS)]
    assert any(r.get("ipProtocol") == "-1" and r.get("referencedSecurityGroupId") for r in rules)
    assert all(r.get("fromPort") == 22 for r in rules if r.get("cidrIpv4") or r.get("cidrIpv6"))


def test_gcp_the_workers_get_the_heads_internal_address_and_wait_for_its_cache(gcp_program, recorded):
    workers = [{"name": "gpu", "count": 1, "instance_type": "n2-standard-8"}]
    rec = gcp_program(gcp_cluster(workers=workers))
    head = next(n for n in rec.outputs["nodes"] if n["name"] == "head")
    cmds = {r.name: r for r in rec.of_type(REMOTE)}
    wc = env_of(cmds["demo-head-wheel_cache"].inputs["stdin"], "wheel_cache")
    assert wc["STYX_WC_BIND"] == head["private_ip"] != head["host"]
    url = f"http://{head['private_ip']}:{HEAD_WHEEL_CACHE_PORT}/{wc['STYX_WC_KEY']}/"
    assert env_of(cmds["demo-gpu-0-python_env"].inputs["stdin"], "python_env")["STYX_WHEEL_CACHE_URL"] == url
    assert recorded["demo-head-wheel_cache"]["res"] in recorded["demo-gpu-0-python_env"]["deps"]
    # reachable from tagged nodes only: the internal rule allows all between them, every other source is denied
    fws = {r.name: r.inputs for r in rec.of_type(FIREWALL)}
    internal = next(v for n, v in fws.items() if n.endswith("-allow-internal"))
    assert internal["allows"] == [{"protocol": "all"}] and internal["sourceTags"] == internal["targetTags"]
    for n, v in fws.items():
        if n.endswith(("-allow-ssh", "-allow-ssh6")) or "-allow-ssh" in n:
            assert all(a.get("ports") == ["22"] for a in v["allows"]), n


def test_python_env_without_user_packages_on_the_head_still_waits_for_the_cache(recorded):
    run_program(copy.deepcopy(ssh_cluster()))
    deps = recorded["hwc-head-python_env"]["deps"]
    assert recorded["hwc-head-wheel_cache"]["res"] in deps
    assert recorded["hwc-head-system_packages"]["res"] not in deps  # still beside apt
