"""With setup.ray.container, the phases that belong inside the container run there (mocks): the user's
pip packages as container_pip and the custom scripts with run_in: container (the default) run between
ray_container and ray, and none of it on the host; host scripts (run_in: host) keep their place; a new
image re-runs exactly the in-container phases and Ray on every node; without a container nothing
changes; run_in: container without a container fails naming the field and what is allowed; the
scripts and the index URL reach the node on stdin only."""

from __future__ import annotations

import asyncio
import copy

import pulumi
import pytest
from mocking import changed_by_new_tarball, local_cluster, phase_triggers, run_program, spy_commands

from styx.components import phases
from styx.components.backends import validate
from styx.components.phases import CONTAINER_PRELUDE, NodeInfo, PhaseContext, phases_for, pip_check_program
from styx.model.config import ConfigError, parse_cluster

NODES = ("head", "worker-0", "worker-1")
IN_CONTAINER = ("ray_container", "container_pip", "custom-inside", "ray")


def boxed(tarball: str | None = None, **setup) -> dict:
    c = copy.deepcopy(local_cluster())
    c["local"] = {"docker": True}
    c["setup"].update({
        "docker": {"mode": "install", "method": "distro"},
        "python": {"pip_packages": ["six==1.17.0"]},
        "ray": {"container": {"image": "styx-ray:2.60.0", **({"tarball": tarball} if tarball else {})}},
        "custom_scripts": [
            {"name": "onhost", "inline": "echo host > /tmp/onhost", "run_in": "host"},
            {"name": "inside", "inline": "echo in > /tmp/inside", "check": "test -f /tmp/inside"},
        ],
    }, **setup)
    return c


def _names(cluster, base_dir=None) -> dict[str, list[str]]:
    rec = run_program(cluster, base_dir)
    out: dict[str, list[str]] = {}
    for r in rec.of_type("command:remote:Command"):
        node, _, ph = r.name.removeprefix("demo-").partition("-")
        if node == "worker":  # worker-0-<phase>
            idx, _, ph = ph.partition("-")
            node = f"worker-{idx}"
        out.setdefault(node, []).append(ph)
    return out


def test_in_container_phases_run_between_ray_container_and_ray_and_not_on_the_host():
    for node, mine in _names(boxed()).items():
        assert mine[mine.index("custom-onhost"):] == ["custom-onhost", *IN_CONTAINER], (node, mine)
        assert "python_env" not in mine, mine  # the pip packages are not installed on the host


def test_without_a_container_nothing_moves():
    c = copy.deepcopy(local_cluster())
    c["setup"]["python"] = {"pip_packages": ["six==1.17.0"]}
    for mine in _names(c).values():
        assert "container_pip" not in mine and "ray_container" not in mine
        assert mine[mine.index("custom-hello") - 1:] == ["env_vars", "custom-hello", "ray"], mine
    cfg = parse_cluster(c)
    node = NodeInfo("head", "head", cfg.head, "10.0.0.2", "10.0.0.2")
    py = next(p for p in phases.PHASES if p.name == "python_env")
    assert py.env(PhaseContext(cfg, node))["STYX_PIP_PACKAGES"].split("\n") == ["six==1.17.0", "ray[default]==2.60.0"]


def test_host_python_env_stays_for_a_python_version_without_the_packages():
    cfg = parse_cluster(boxed(python={"version": "3.11", "pip_packages": ["six==1.17.0"]}))
    node = NodeInfo("head", "head", cfg.head, "10.0.0.2", "10.0.0.2")
    ctx = PhaseContext(cfg, node)
    names = [p.name for p in phases_for(ctx, base_dir=None)]
    assert names.index("python_env") < names.index("ray_container") < names.index("container_pip")
    py = next(p for p in phases.PHASES if p.name == "python_env")
    assert py.env(ctx)["STYX_PIP_PACKAGES"] == ""


def test_a_new_image_re_runs_the_in_container_phases_and_nothing_on_the_host(tmp_path):
    diff = changed_by_new_tarball(boxed, tmp_path)
    assert diff == {f"demo-{n}-{p}" for n in NODES for p in IN_CONTAINER}


def test_an_edit_of_the_pip_packages_re_runs_container_pip_onwards_only():
    before = phase_triggers(boxed())
    after = phase_triggers(boxed(python={"pip_packages": ["six==1.16.0"]}))
    diff = {n for n in before if before[n] != after[n]}
    assert diff == {f"demo-{n}-{p}" for n in NODES for p in ("container_pip", "custom-inside", "ray")}


def test_run_on_head_applies_inside_too():
    c = boxed()
    c["setup"]["custom_scripts"][1]["run_on"] = "head"
    names = _names(c)
    assert "custom-inside" in names["head"] and "custom-inside" not in names["worker-0"]


@pytest.mark.parametrize(("change", "says"), [
    # a container script without a container: the field, the value and what is allowed
    (lambda c: (c["setup"]["ray"].pop("container"), c["setup"]["custom_scripts"][1].update(run_in="container")),
     "styx:cluster.setup.custom_scripts[1].run_in: 'container' needs setup.ray.container"),
    (lambda c: (c["setup"]["ray"].update(enabled=False), c["setup"]["custom_scripts"][1].update(run_in="container")),
     "allowed without a Ray container: host"),
    (lambda c: c["setup"]["custom_scripts"][1].update(run_in="vm"),
     "setup.custom_scripts[1].run_in: 'vm' is not allowed; input should be 'container' or 'host'"),
])
def test_bad_run_in_names_the_field(change, says):
    c = boxed()
    change(c)
    with pytest.raises(ConfigError) as e:
        validate(c, catalog=None)
    assert says in str(e.value), e.value


def test_without_a_container_the_default_is_the_host():
    c = boxed()
    c["setup"]["ray"].pop("container")
    names = _names(c)["head"]
    assert names[-3:] == ["custom-onhost", "custom-inside", "ray"], names


def test_container_timeouts_are_phase_names():
    cfg = parse_cluster(boxed(timeouts={"container_pip": 600, "custom-inside": 120}))
    node = NodeInfo("head", "head", cfg.head, "10.0.0.2", "10.0.0.2")
    ctx = PhaseContext(cfg, node)
    by = {p.name: p for p in phases_for(ctx, base_dir=None)}
    assert by["container_pip"].timeout(ctx) == 600 and by["custom-inside"].timeout(ctx) == 120
    assert by["container_pip"].env(ctx)["STYX_PHASE_TIMEOUT"] == "600"
    assert by["custom-inside"].env(ctx)["STYX_PHASE_TIMEOUT"] == "120"


def test_the_container_script_is_the_prelude_strict_mode_and_the_users_text():
    cfg = parse_cluster(boxed())
    ctx = PhaseContext(cfg, NodeInfo("head", "head", cfg.head, "10.0.0.2", "10.0.0.2"))
    inside = next(p for p in phases_for(ctx, base_dir=None) if p.name == "custom-inside")
    env = inside.env(ctx)
    assert inside.script == "custom_container.sh" and inside.secret_output
    assert env["STYX_CUSTOM_SCRIPT"] == f"{CONTAINER_PRELUDE}\nset -euo pipefail\necho in > /tmp/inside\n"
    assert env["STYX_CUSTOM_CHECK"] == f"{CONTAINER_PRELUDE}\ntest -f /tmp/inside\n"
    pip = next(p for p in phases_for(ctx, base_dir=None) if p.name == "container_pip")
    assert pip.env(ctx)["STYX_PIP_CHECK_PY"] == pip_check_program()
    compile(pip_check_program(), "PIP_CHECK_PY", "exec")


def test_scripts_and_the_index_url_travel_on_stdin_never_in_a_command(monkeypatch):
    calls = spy_commands(monkeypatch)
    c = boxed(python={"pip_packages": ["six==1.17.0"], "index_url": "https://me:hunter2-index@pypi.example/simple"})
    c["setup"]["custom_scripts"][1]["inline"] = "echo in-container-marker > /tmp/inside"
    run_program(c)
    loop = asyncio.get_event_loop()

    def stdin(name: str) -> str:
        return loop.run_until_complete(pulumi.Output.from_input(calls[name]["stdin"]).future())

    assert "hunter2-index" in stdin("demo-head-container_pip")
    assert "in-container-marker" in stdin("demo-head-custom-inside")
    for name, k in calls.items():
        assert isinstance(k["create"], str), name
        assert "hunter2" not in k["create"] and "in-container-marker" not in k["create"], name
