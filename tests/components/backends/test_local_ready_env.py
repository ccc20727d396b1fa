"""The local backend's ready environments (`setup.python.env_cache`) under Pulumi mocks: the capture on the
operator's machine after the head's python_env and ray phases, the URL and key every node's python_env
gets, and what turns it off."""

from __future__ import annotations

import pytest
from mocking import local_cluster, local_with_python, phase_exports, run_program

import styx.components.transport as transport
from styx.components.backends import local as local_backend
from styx.components.backends.local import WHEEL_CACHE_PORT, ready_env_key
from styx.model.config import ConfigError, parse_cluster


@pytest.fixture
def captured(monkeypatch):
    """The capture's keyword arguments (its depends_on as given) and the head's phase resources."""
    seen: dict[str, dict] = {}
    real_local, real_remote = local_backend.local.Command, transport.remote.Command

    def spy_local(name, **kw):
        res = real_local(name, **kw)
        seen[name] = {"kw": kw, "deps": list(kw["opts"].depends_on or []), "res": res}
        return res

    def spy_remote(name, **kw):
        res = real_remote(name, **kw)
        seen[name] = {"kw": kw, "res": res}
        return res

    monkeypatch.setattr(local_backend.local, "Command", spy_local)
    monkeypatch.setattr(transport.remote, "Command", spy_remote)
    return seen


def test_the_capture_waits_for_the_heads_python_env_and_ray_and_is_keyed(captured):
    rec = run_program(local_cluster())
    key = ready_env_key(parse_cluster(local_cluster()))
    cap = captured["demo-env-capture"]
    assert cap["kw"]["triggers"] == [key]
    deps = cap["deps"]
    assert captured["demo-head-python_env"]["res"] in deps and captured["demo-head-ray"]["res"] in deps
    assert not any(captured[f"demo-worker-0-{p}"]["res"] in deps for p in ("python_env", "ray"))
    create = rec.named("demo-env-capture").inputs["create"]
    assert " capture " in create and "/demo/head/merged /opt/styx/venv " in create and create.endswith(
        f" {key} /var/cache/styx/wheels/envs")
    assert "delete" not in rec.named("demo-env-capture").inputs  # `styx down` leaves the tarballs


def test_every_node_gets_the_url_and_the_key():
    rec = run_program(local_cluster())
    key = ready_env_key(parse_cluster(local_cluster()))
    for node in ("head", "worker-0", "worker-1"):
        e = phase_exports(rec, node)
        assert f"STYX_READY_ENV_URL=http://10.77.0.1:{WHEEL_CACHE_PORT}/envs/{key}.tar" in e
        assert f"STYX_READY_ENV_KEY={key}" in e
        assert "STYX_READY_ENV_SHA256" not in e  # asked at run time: the inputs do not depend on the tarball


@pytest.mark.parametrize("python", [{"env_cache": "off"}, {"wheel_cache": "off"}, {"env_tool": "none"},
                                    {"env_tool": "uv", "version": "3.12"}])
def test_off_or_not_applicable_makes_no_capture_and_no_url(python):
    rec = run_program(local_with_python(**python))
    assert "demo-env-capture" not in {r.name for r in rec.resources}
    assert "STYX_READY_ENV" not in phase_exports(rec, "worker-0")


def test_no_python_env_no_capture():
    c = local_cluster()
    c["setup"]["ray"] = {"enabled": False}
    assert "demo-env-capture" not in {r.name for r in run_program(c).resources}


def test_python_envs_inputs_do_not_depend_on_the_tarball(tmp_path):
    """The same program whether or not a tarball exists in the cache (python_env asks the server at run
    time): its triggers and stdin are the same."""
    def inputs(c):
        rec = run_program(c)
        return {n: (rec.named(f"demo-{n}-python_env").inputs["triggers"],
                    rec.named(f"demo-{n}-python_env").inputs["stdin"]) for n in ("head", "worker-0")}

    c = local_cluster()
    c["local"] = {**c.get("local", {}), "cache_dir": str(tmp_path)}
    before = inputs(c)
    envs = tmp_path / "wheels" / "envs"
    envs.mkdir(parents=True)
    key = ready_env_key(parse_cluster(c))
    (envs / f"{key}.tar").write_bytes(b"x")
    (envs / f"{key}.tar.sha256").write_text("0" * 64 + f"  {key}.tar\n")
    assert inputs(c) == before


def test_key_follows_the_environments_inputs():
    base = ready_env_key(parse_cluster(local_cluster()))
    assert ready_env_key(parse_cluster(local_cluster())) == base
    others = [local_with_python(pip_packages=["six==1.16.0"]), local_with_python(venv_dir="/opt/other"),
              local_with_python(installer="pip"), local_with_python(index_url="https://mirror.example/simple")]
    keys = {ready_env_key(parse_cluster(c)) for c in others}
    assert base not in keys and len(keys) == len(others)


def test_a_head_from_an_image_makes_none_and_image_nodes_get_no_url(monkeypatch):
    monkeypatch.setattr(local_backend.LocalBackend, "image_problems", lambda self, cfg: [])
    c = local_cluster()
    c["workers"] = [{"name": "worker", "count": 1, "image": "myimg"}]
    rec = run_program(c)
    assert "demo-env-capture" in {r.name for r in rec.resources}
    assert "STYX_READY_ENV_URL" not in phase_exports(rec, "worker-0")
    assert "STYX_READY_ENV_URL" in phase_exports(rec, "head")
    c["head"] = {"image": "myimg"}
    assert "demo-env-capture" not in {r.name for r in run_program(c).resources}


def test_bad_env_cache_value_names_the_field_and_the_values():
    with pytest.raises(ConfigError, match=r"setup\.python\.env_cache: .* should be 'auto' or 'off'"):
        parse_cluster(local_with_python(env_cache="yes"))
