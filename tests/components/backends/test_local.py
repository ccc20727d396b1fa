"""The local backend's wheel cache under Pulumi mocks: the download and the server on the operator's
machine, the URL every node's python_env gets, the key, and `wheel_cache: off`."""

from __future__ import annotations

from mocking import local_cluster, local_with_python, phase_exports, run_program

from styx.components.backends.local import WHEEL_CACHE_PORT, wheel_cache_key
from styx.model.config import parse_cluster


def test_the_operator_downloads_once_and_every_node_installs_from_the_bridge():
    rec = run_program(local_cluster())
    key = wheel_cache_key(parse_cluster(local_cluster()))
    wheels, server = rec.named("demo-wheels").inputs, rec.named("demo-wheel-server").inputs
    assert " fill " in wheels["create"] and key in wheels["create"] and wheels["triggers"] == [key]
    # what python_env installs, uv, and what `uv venv --seed` seeds
    assert wheels["environment"]["STYX_WC_SPECS"].split("\n") == ["ray[default]==2.60.0", "uv==0.13.9", "pip",
                                                                   "setuptools", "wheel"]
    assert " serve " in server["create"] and f" 10.77.0.1 {WHEEL_CACHE_PORT} " in server["create"]
    assert " stop " in server["delete"]
    url = f"STYX_WHEEL_CACHE_URL=http://10.77.0.1:{WHEEL_CACHE_PORT}/{key}/"
    for node in ("head", "worker-0", "worker-1"):
        assert url in phase_exports(rec, node)
        assert "STYX_WHEEL_CACHE_URL" not in phase_exports(rec, node, "system_packages")
    assert len(rec.of_type("command:local:Command")) == len({r.name for r in rec.of_type("command:local:Command")})


def test_off_makes_no_cache_and_no_url():
    rec = run_program(local_with_python(wheel_cache="off"))
    names = {r.name for r in rec.resources}
    assert "demo-wheels" not in names and "demo-wheel-server" not in names
    assert "STYX_WHEEL_CACHE_URL" not in phase_exports(rec, "worker-0")


def test_no_python_env_no_cache():
    c = local_cluster()
    c["setup"]["ray"] = {"enabled": False}
    assert "demo-wheels" not in {r.name for r in run_program(c).resources}


def test_key_follows_what_is_installed_the_index_and_the_python():
    base = wheel_cache_key(parse_cluster(local_cluster()))
    assert wheel_cache_key(parse_cluster(local_cluster())) == base
    others = [local_with_python(pip_packages=["six==1.16.0"]), local_with_python(index_url="https://mirror.example/simple"),
              local_with_python(installer="pip"), local_with_python(version="3.12", env_tool="uv")]
    keys = {wheel_cache_key(parse_cluster(c)) for c in others}
    assert base not in keys and len(keys) == len(others)


def test_index_credentials_stay_out_of_the_command_text():
    url = "https://user:hunter2@mirror.example/simple"
    rec = run_program(local_with_python(index_url=url))
    wheels = rec.named("demo-wheels").inputs
    assert "hunter2" not in wheels["create"] and wheels["environment"]["PIP_INDEX_URL"] == url
    assert all("hunter2" not in r.inputs.get("create", "") for r in rec.of_type("command:local:Command"))


def test_turning_the_cache_off_reruns_python_env_and_later_only():
    def triggers(c):
        return {r.name: r.inputs["triggers"] for r in run_program(c).of_type("command:remote:Command")}

    on, off = triggers(local_cluster()), triggers(local_with_python(wheel_cache="off"))
    diff = {n for n in on if on[n] != off[n]}
    assert "demo-worker-0-python_env" in diff and "demo-worker-0-ray" in diff
    assert not any(n.endswith(("-wait_ssh", "-system_packages")) for n in diff), diff


def test_gone_machines_asks_every_node_and_keeps_their_order(monkeypatch):
    import subprocess as sp

    from styx.components.backends import local as lb

    asked = []

    def run(argv, env=None, **kw):
        asked.append((argv[2], env["STYX_SB_NODE"]))
        gone = env["STYX_SB_NODE"] in ("worker-3", "head")
        return sp.CompletedProcess(argv, 1 if gone else 0, "gone\n" if gone else "alive\n", "")

    monkeypatch.setattr(lb.subprocess, "run", run)
    nodes = ["head"] + [f"worker-{i}" for i in range(6)]
    assert lb.LocalBackend().gone_machines(local_cluster(), nodes) == ["head", "worker-3"]
    assert sorted(asked) == sorted(("node-alive", n) for n in nodes)


def test_apt_lists_fetched_once_on_this_machine_and_served_to_system_packages():
    from styx.components.backends.local import APT_CACHE_PORT

    rec = run_program(local_cluster())
    lists, server = rec.named("demo-apt-lists").inputs, rec.named("demo-apt-server").inputs
    assert lists["create"].endswith("sandboxctl.sh apt-lists") and "STYX_CACHE_DIR=/var/cache/styx" in lists["create"]
    assert " serve /var/cache/styx/apt " in server["create"] and f" 10.77.0.1 {APT_CACHE_PORT} " in server["create"]
    assert " stop " in server["delete"]
    # the URL is the server's address and the tarball that apt-lists printed (the mock's stdout)
    for node in ("head", "worker-0", "worker-1"):
        assert (f"STYX_APT_LISTS_URL='http://10.77.0.1:{APT_CACHE_PORT}/styx demo-apt-lists: ok: mocked'"
                in phase_exports(rec, node, "system_packages"))
        assert "STYX_APT_LISTS_URL" not in phase_exports(rec, node)  # python_env


def test_apt_cache_off_or_no_packages_makes_nothing():
    for c in (local_cluster(setup={**local_cluster()["setup"], "apt_cache": "off"}),
              local_cluster(setup={**local_cluster()["setup"], "packages": []})):
        rec = run_program(c)
        names = {r.name for r in rec.resources}
        assert "demo-apt-lists" not in names and "demo-apt-server" not in names
        phases = {r.name for r in rec.of_type("command:remote:Command")}
        assert all("STYX_APT_LISTS_URL" not in phase_exports(rec, n, "system_packages") for n in ("head", "worker-0")
                   if f"demo-{n}-system_packages" in phases)


def test_bad_apt_cache_value_names_the_field_and_the_values():
    import pytest

    from styx.model.config import ConfigError

    with pytest.raises(ConfigError, match=r"setup\.apt_cache: 'yes' is not allowed; input should be 'auto' or 'off'"):
        parse_cluster(local_cluster(setup={"apt_cache": "yes"}))
    with pytest.raises(ConfigError, match=r"setup\.python\.wheel_cache_fetch: .* should be 'links' or 'copy'"):
        parse_cluster(local_with_python(wheel_cache_fetch="rsync"))


def test_python_env_gets_the_wheel_cache_fetch_mode():
    assert "STYX_WHEEL_CACHE_FETCH=links" in phase_exports(run_program(local_cluster()), "head")
    copy_mode = run_program(local_with_python(wheel_cache_fetch="copy"))
    assert "STYX_WHEEL_CACHE_FETCH=copy" in phase_exports(copy_mode, "head")
