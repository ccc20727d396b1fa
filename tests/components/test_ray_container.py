"""setup.ray.container in the graph (mocks): the ray_container phase exists only with it, before ray;
the user's pip packages and custom scripts (run_in: container, the default) run between ray_container
and ray, inside the container; a new image tarball changes exactly those phases on every node and
nothing on the hosts; the registry password travels as a secret on stdin, never in a command text; bad
configs fail naming the field."""

from __future__ import annotations

import asyncio
import copy

import pulumi
import pytest
from mocking import changed_by_new_tarball, local_cluster, run_program, spy_commands

from styx.components.backends import validate
from styx.model.config import ConfigError

NODES = ("head", "worker-0", "worker-1")


def boxed(tarball: str | None = None, **container) -> dict:
    c = copy.deepcopy(local_cluster())
    c["local"] = {"docker": True}
    c["setup"]["docker"] = {"mode": "install", "method": "distro"}
    c["setup"]["ray"] = {"container": {"image": "styx-ray:2.60.0", **({"tarball": tarball} if tarball else {}),
                                       **container}}
    return c


def test_the_phase_exists_only_with_a_container_right_before_ray():
    plain = [r.name for r in run_program(local_cluster()).of_type("command:remote:Command")]
    assert not any(n.endswith("-ray_container") for n in plain)
    names = [r.name for r in run_program(boxed()).of_type("command:remote:Command")]
    for node in NODES:
        mine = [n[len(f"demo-{node}-"):] for n in names if n.startswith(f"demo-{node}-")]
        # the custom script runs in the container by default (run_in), after ray_container
        assert mine[-3:] == ["ray_container", "custom-hello", "ray"], mine
        assert "python_env" not in mine  # Ray comes from the image; no pip_packages: no host env


def test_a_new_tarball_changes_only_ray_container_and_ray(tmp_path):
    diff = changed_by_new_tarball(boxed, tmp_path)
    assert diff == {f"demo-{n}-{p}" for n in NODES for p in ("ray_container", "custom-hello", "ray")}


def test_registry_password_is_a_secret_on_stdin_never_in_a_command(monkeypatch):
    calls = spy_commands(monkeypatch)
    c = boxed(registry={"server": "ghcr.io", "username": "me", "password": "hunter2-registry"})
    run_program(c)
    loop = asyncio.get_event_loop()
    kw = calls["demo-head-ray_container"]
    assert loop.run_until_complete(pulumi.Output.from_input(kw["stdin"]).is_secret())
    assert "hunter2-registry" in loop.run_until_complete(pulumi.Output.from_input(kw["stdin"]).future())
    for name, k in calls.items():
        assert isinstance(k["create"], str) and "hunter2" not in k["create"], name


@pytest.mark.parametrize(("change", "says"), [
    (lambda c: c["setup"].pop("docker"), "docker.mode"),
    (lambda c: c.pop("local"), "local.docker"),
    (lambda c: c["setup"]["ray"]["container"].update(pull="sometimes"), "setup.ray.container.pull"),
    (lambda c: c["setup"]["ray"]["container"].update(tarball="x.tar", pull="always"), "pull: always"),
    (lambda c: c["setup"]["ray"]["container"].update(run_options=["a\nb"]), "run_options"),
])
def test_bad_container_configs_name_the_field(change, says):
    c = boxed()
    change(c)
    with pytest.raises(ConfigError) as e:
        validate(c, catalog=None)
    assert says in str(e.value), e.value


def test_missing_tarball_fails_before_anything(tmp_path):
    with pytest.raises(ConfigError) as e:
        validate(boxed("nope.tar"), tmp_path, catalog=None)
    assert "setup.ray.container.tarball" in str(e.value)
