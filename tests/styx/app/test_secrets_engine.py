"""Secrets through the real Pulumi CLI on a temp file backend (skipped when the toolchain is missing).

- `styx secret set` → the project's stack file holds `secure:`, `styx secret list` names it, Pulumi
  decrypts it back, styx's workspace file holds only ciphertext, and no pulumi process ever had the
  value in its argv;
- (needs the command provider plugin too) a preview of styx's program from a stack file whose
  secret_env is only `secure:` gets the decrypted value, twice in a row, without passing it again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from styx.app import engine as eng

BIN = Path.home() / ".styx" / "toolchain" / f"pulumi-v{eng.PULUMI_VERSION}-cmd-v{eng.COMMAND_VERSION}" / "bin"
PLUGINS = Path.home() / ".styx" / "pulumi" / "plugins"
VALUE = "sec-7d1e-not-in-any-argv"

pytestmark = pytest.mark.skipif(not (BIN / "pulumi").exists(),
                                reason=f"Pulumi CLI not installed at {BIN} (bash toolchain/install-pulumi.sh)")


@pytest.fixture
def env(tmp_path, monkeypatch):
    home = tmp_path / "styx-home"
    ph = tmp_path / "pulumi-home"
    ph.mkdir()
    if PLUGINS.is_dir():
        (ph / "plugins").symlink_to(PLUGINS)
    monkeypatch.setenv("STYX_HOME", str(home))
    monkeypatch.setenv("STYX_PULUMI_BIN_DIR", str(BIN))
    monkeypatch.setenv("PULUMI_HOME", str(ph))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "sec-test-passphrase")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.setenv("STYX_LOCAL_PREFLIGHT", "0")
    argvs: list[list[str]] = []
    real = subprocess.Popen

    class Recording(real):  # type: ignore[misc,valid-type]
        def __init__(self, args, *a, **kw):
            argvs.append([str(x) for x in (args if isinstance(args, list | tuple) else [args])])
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    proj = tmp_path / "proj"
    (proj / "stacks").mkdir(parents=True)
    (proj / "Pulumi.yaml").write_text("name: styx\nruntime: python\nstackConfigDir: stacks\n")
    cluster = {"name": "secdemo", "cloud": "local", "local": {"subnet": "10.91.0.0/24"}, "head": {},
               "setup": {"env": {"A": "1"}, "ray": {"enabled": False}}}
    f = proj / "stacks" / "Pulumi.sec1.yaml"
    f.write_text(yaml.safe_dump({"config": {"styx:cluster": cluster}}, sort_keys=False))
    return {"proj": proj, "file": f, "argvs": argvs, "home": home}


def _no_value_in_argv(argvs):
    assert argvs, "pulumi was run"
    for a in argvs:
        assert not any(VALUE in x for x in a), a


def test_secret_set_round_trip(env):
    from styx.app import secrets
    from styx.app.cli import common, main

    r = CliRunner().invoke(main, ["secret", "set", "TOKEN", str(env["file"])], input=VALUE + "\n",
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    text = env["file"].read_text()
    assert VALUE not in text
    doc = yaml.safe_load(text)
    assert doc.get("encryptionsalt")
    assert secrets.is_secure(doc["config"]["styx:cluster"]["setup"]["secret_env"]["TOKEN"])
    r = CliRunner().invoke(main, ["secret", "list", str(env["file"])], catch_exceptions=False)
    assert r.exit_code == 0 and r.stdout.splitlines() == ["TOKEN"], r.output
    # validate accepts it; Pulumi decrypts it
    assert CliRunner().invoke(main, ["validate", str(env["file"])]).exit_code == 0
    cluster, base, _stack = common.load_config_file(env["file"])
    plain = secrets.resolve_file(cluster, env["file"])
    assert plain["setup"]["secret_env"]["TOKEN"] == VALUE
    assert plain["setup"]["env"] == {"A": "1"}
    # styx's workspace: ciphertext only, and Pulumi gives the same plaintext back
    st = eng.open_stack("sec1", plain, base_dir=base)
    wtext = (Path(st.workspace.work_dir) / "Pulumi.sec1.yaml").read_text()
    assert VALUE not in wtext and "secure:" in wtext
    assert secrets.decrypted_cluster(st)["setup"]["secret_env"]["TOKEN"] == VALUE
    # rm
    r = CliRunner().invoke(main, ["secret", "rm", "TOKEN", str(env["file"])], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "TOKEN" not in env["file"].read_text()
    _no_value_in_argv(env["argvs"])


@pytest.mark.skipif(not (PLUGINS / f"resource-command-v{eng.COMMAND_VERSION}").exists(),
                    reason=f"command provider plugin not registered in {PLUGINS} (toolchain/install-pulumi.sh)")
def test_preview_of_a_secure_secret_env_gets_the_plaintext_twice(env, monkeypatch):
    from styx.app import secrets
    from styx.app.cli import common
    from styx.app.session import Engine
    from styx.components import cluster as cluster_mod

    seen: list[dict] = []
    real = cluster_mod._env_file

    def spy(envs, secret_env):
        seen.append(dict(secret_env))
        return real(envs, secret_env)

    monkeypatch.setattr(cluster_mod, "_env_file", spy)
    secrets.set_secret(env["proj"], "sec1", "setup.secret_env.TOKEN", VALUE)
    engine = Engine()
    changes = []
    for _ in range(2):  # like `styx preview stacks/Pulumi.sec1.yaml`: nothing passed but the file
        cluster, base, _stack = common.load_config_file(env["file"])
        plain = common.resolve_secrets(cluster, env["file"], engine)
        session = engine.create_or_select("sec1", plain, base)
        res = session.preview()
        assert res.ok, res.error
        changes.append(res.changes)
    assert seen and all(s == {"TOKEN": VALUE} for s in seen)
    assert changes[0] == changes[1]
    _no_value_in_argv(env["argvs"])
