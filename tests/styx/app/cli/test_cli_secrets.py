"""Secrets in stack files: the secure: form, plain-text warnings, `styx secret`, `--secret-env` persisting.

No Pulumi CLI needed: the encrypt/decrypt calls are replaced (tests/styx/app/test_secrets_engine.py runs the
real thing when the toolchain is installed).
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from cli_fakes import local_cluster
from click.testing import CliRunner

from styx.app import engine as eng
from styx.app import project as app_project
from styx.app import secrets
from styx.app.cli import common, main

launch = importlib.import_module("styx.app.cli.launch")  # the module (styx.app.cli.launch is also the command)

CIPHER = "v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
VALUE = "tok-9f3a-very-secret"


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def project(tmp_path):
    """A project dir like the repo's: Pulumi.yaml (stackConfigDir: stacks) + stacks/Pulumi.<stack>.yaml."""
    (tmp_path / "proj" / "stacks").mkdir(parents=True)
    root = tmp_path / "proj"
    (root / "Pulumi.yaml").write_text("name: styx\nruntime: python\nstackConfigDir: stacks\n")

    def write(stack: str, cluster: dict, salt: str | None = "v1:c2FsdA==:v1:AAAA:BBBB") -> Path:
        doc: dict = {"config": {"styx:cluster": cluster}}
        if salt:
            doc = {"encryptionsalt": salt, **doc}
        p = root / "stacks" / f"Pulumi.{stack}.yaml"
        p.write_text(yaml.safe_dump(doc, sort_keys=False))
        return p

    return SimpleNamespace(root=root, write=write)


def secure_cluster(name="secdemo"):
    c = local_cluster(name)
    c["setup"]["secret_env"] = {"TOKEN": {"secure": CIPHER}}
    return c


# --------------------------------------------------------------------------- reading the secure: form


def test_validate_accepts_the_secure_form(project):
    f = project.write("secv", secure_cluster())
    r = run("validate", str(f))
    assert r.exit_code == 0, r.output
    assert "ok: cluster secdemo" in r.stdout
    assert "warning" not in r.stderr


def test_validate_accepts_a_secure_private_key(project):
    c = secure_cluster()
    c["ssh"] = {"private_key": {"secure": CIPHER}}
    f = project.write("seck", c)
    r = run("validate", str(f), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True


def test_load_config_file_keeps_secure_values(project):
    f = project.write("secl", secure_cluster())
    cluster, base, stack = common.load_config_file(f)
    assert cluster["setup"]["secret_env"]["TOKEN"] == {"secure": CIPHER}
    assert base == project.root and stack == "secl"
    # validation sees a present string
    cfg = common.validate_cluster(cluster, base)
    assert cfg.setup.secret_env == {"TOKEN": secrets.PLACEHOLDER}


def test_plain_text_secret_warns_but_validates(project, monkeypatch):
    c = local_cluster("secplain")
    c["setup"]["secret_env"] = {"TOKEN": "in-the-clear"}
    f = project.write("x", c)
    monkeypatch.chdir(project.root)
    r = run("validate", "stacks/Pulumi.x.yaml")
    assert r.exit_code == 0, r.output
    assert ("warning: styx:cluster.setup.secret_env.TOKEN is plain text in stacks/Pulumi.x.yaml; "
            "encrypt it: styx secret set TOKEN --stack x < value-file") in r.stderr
    assert "in-the-clear" not in r.output
    assert f.is_file()


def test_plain_text_private_key_warning_names_the_pulumi_command():
    w = secrets.plain_text_warnings({"ssh": {"private_key": "PEM"}}, "stacks/Pulumi.y.yaml", "y")
    assert w == ["warning: styx:cluster.ssh.private_key is plain text in stacks/Pulumi.y.yaml; encrypt it: "
                 "pulumi config set --secret --path 'styx:cluster.ssh.private_key' -s y < value-file"]
    assert secrets.plain_text_warnings({"ssh": {"private_key": {"secure": CIPHER}}}, "f", "y") == []


def test_merge_decrypted_replaces_only_secure_leaves():
    raw = {"setup": {"env": {"A": "1"}, "secret_env": {"T": {"secure": CIPHER}}},
           "ssh": {"private_key": {"secure": "x"}}}
    dec = {"setup": {"env": {"A": "changed"}, "secret_env": {"T": VALUE}}, "ssh": {"private_key": "PEM"}}
    out = secrets.merge_decrypted(raw, dec)
    assert out == {"setup": {"env": {"A": "1"}, "secret_env": {"T": VALUE}}, "ssh": {"private_key": "PEM"}}
    with pytest.raises(secrets.SecretsError):
        secrets.merge_decrypted(raw, {"setup": {}})


def test_project_dir_of(project, tmp_path):
    f = project.write("secp", secure_cluster())
    assert secrets.project_dir_of(f) == project.root
    other = tmp_path / "Pulumi.elsewhere.yaml"
    other.write_text("config: {}\n")
    assert secrets.project_dir_of(other) is None
    assert secrets.project_dir_of(eng.REPO / "stacks" / "Pulumi.local.yaml") == eng.REPO


# --------------------------------------------------------------------------- `styx secret set|list|rm`


class FakeWs:
    def __init__(self, work_dir):
        self.work_dir = str(work_dir)
        self.env_vars = {"PULUMI_CONFIG_PASSPHRASE": "pp", "PULUMI_BACKEND_URL": "file:///x"}
        self.pulumi_home = "/tmp/ph"
        self.pulumi_command = SimpleNamespace(command="/toolchain/bin/pulumi")


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """project_stack of styx.app.secrets and subprocess.run of styx.app.engine replaced; every call recorded."""
    calls: dict[str, list] = {"stacks": [], "run": [], "rm": []}

    def fake_project_stack(project_dir, stack, *, backend_url=None, extra_env=None):
        calls["stacks"].append((Path(project_dir), stack, backend_url))
        return SimpleNamespace(name=stack, workspace=FakeWs(project_dir),
                               remove_config=lambda key, path=False: calls["rm"].append((key, path)))

    def fake_run(args, **kw):
        calls["run"].append((list(args), kw))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(secrets, "project_stack", fake_project_stack)
    monkeypatch.setattr(eng.subprocess, "run", fake_run)  # config_set_stdin lives in styx.app.engine
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "styx-home"))
    return calls


def test_secret_set_reads_stdin_and_sets_it_secret_with_path(project, recorded):
    f = project.write("secs", secure_cluster())
    r = run("secret", "set", "API_KEY", str(f), input=VALUE + "\n")
    assert r.exit_code == 0, r.output
    (proj, stack, _backend), = recorded["stacks"]
    assert proj == project.root and stack == "secs"
    (args, kw), = recorded["run"]
    assert args[:3] == ["/toolchain/bin/pulumi", "config", "set"]
    assert "--secret" in args and "--path" in args and "--plaintext" not in args
    assert args[-1] == "styx:cluster.setup.secret_env.API_KEY"
    assert args[args.index("--stack") + 1] == "secs"
    assert kw["input"] == VALUE  # on stdin, the trailing newline dropped
    assert kw["cwd"] == str(project.root)
    assert not any(VALUE in a for a in args), "the value is never in argv"
    assert VALUE not in r.output


def test_secret_set_stack_option_picks_the_repo_stack_file(recorded, monkeypatch, tmp_path):
    monkeypatch.setattr(eng, "REPO", tmp_path / "repo")
    (tmp_path / "repo" / "stacks").mkdir(parents=True)
    (tmp_path / "repo" / "Pulumi.yaml").write_text("name: styx\nstackConfigDir: stacks\n")
    (tmp_path / "repo" / "stacks" / "Pulumi.secq.yaml").write_text("config:\n  styx:cluster: {name: q}\n")
    r = run("secret", "set", "T", "--stack", "secq", input="v")
    assert r.exit_code == 0, r.output
    assert recorded["stacks"][0][:2] == (tmp_path / "repo", "secq")


def test_secret_set_refuses_bad_names_missing_files_and_empty_values(project, recorded):
    f = project.write("secb", secure_cluster())
    assert run("secret", "set", "1BAD", str(f), input="v").exit_code == 2
    assert run("secret", "set", "OK", str(project.root / "stacks" / "Pulumi.nope.yaml"), input="v").exit_code == 2
    r = run("secret", "set", "OK", str(f), input="")
    assert r.exit_code == 2 and "no value" in r.stderr
    assert run("secret", "set", "OK", str(f), "--stack", "other", input="v").exit_code == 2
    assert recorded["run"] == []


def test_secret_list_and_rm(project, recorded):
    c = secure_cluster()
    c["setup"]["secret_env"]["PLAIN"] = "oops"
    f = project.write("secr", c)
    r = run("secret", "list", str(f))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "TOKEN"
    assert lines[1].startswith("PLAIN  (PLAIN TEXT: styx secret set PLAIN --stack secr")
    assert CIPHER not in r.stdout and "oops" not in r.stdout
    body = json.loads(run("secret", "list", str(f), "--json").stdout)
    assert body["secrets"] == [{"name": "TOKEN", "encrypted": True}, {"name": "PLAIN", "encrypted": False}]
    assert run("secret", "rm", "TOKEN", str(f)).exit_code == 0
    assert recorded["rm"] == [("styx:cluster.setup.secret_env.TOKEN", True)]
    assert run("secret", "rm", "NOPE", str(f)).exit_code == 1


# --------------------------------------------------------------------------- launch / preview


@pytest.fixture
def fake_crypto(monkeypatch):
    """Encrypting = remembering; decrypting = looking up (keyed by file stack + path)."""
    store: dict[tuple[str, str], str] = {}
    stored_calls = []

    def store_secret(project, stack, dotted, value, backend_url):
        stored_calls.append((project, stack, dotted))
        store[(stack, dotted)] = value
        f = secrets.stack_file(project, stack)
        doc = yaml.safe_load(f.read_text())
        cur = doc["config"]["styx:cluster"]
        parts = dotted.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = {"secure": f"v1:cipher-of-{parts[-1]}"}
        f.write_text(yaml.safe_dump(doc, sort_keys=False))

    def resolver(cluster, path, backend_url):
        stack = secrets.stack_of_file(path)
        dec = json.loads(json.dumps(cluster))
        for d, v in secrets.secret_items(cluster):
            if secrets.is_secure(v):
                cur = dec
                parts = d.split(".")
                for p in parts[:-1]:
                    cur = cur[p]
                cur[parts[-1]] = store.get((stack, d), "decrypted-" + parts[-1])
        return dec

    monkeypatch.setattr(launch, "store_secret", store_secret)
    monkeypatch.setattr(app_project, "secret_resolver", resolver)
    return SimpleNamespace(store=store, calls=stored_calls)


def test_launch_secret_env_persists_in_the_stack_file(fake_engine, project, fake_crypto, monkeypatch):
    f = project.write("secl2", local_cluster("secl2"))
    monkeypatch.setenv("STYX_DEMO_TOKEN", VALUE)
    r = run("launch", str(f), "--secret-env", "STYX_DEMO_TOKEN", "--json")
    assert r.exit_code == 0, r.output
    assert fake_crypto.calls == [(project.root, "secl2", "setup.secret_env.STYX_DEMO_TOKEN")]
    assert yaml.safe_load(f.read_text())["config"]["styx:cluster"]["setup"]["secret_env"] == {
        "STYX_DEMO_TOKEN": {"secure": "v1:cipher-of-STYX_DEMO_TOKEN"}}
    st = fake_engine.stacks["secl2"]
    assert st.cluster()["setup"]["secret_env"] == {"STYX_DEMO_TOKEN": VALUE}  # decrypted for the program
    assert VALUE not in r.output
    # a later launch without the flag keeps it (it lives in the stack file now)
    monkeypatch.delenv("STYX_DEMO_TOKEN")
    assert run("launch", str(f), "--json").exit_code == 0
    assert st.cluster()["setup"]["secret_env"] == {"STYX_DEMO_TOKEN": VALUE}


def test_launch_secret_env_without_a_stack_file_keeps_it_in_the_stack_only(fake_engine, fake_crypto, monkeypatch):
    monkeypatch.setenv("TOK", VALUE)
    r = run("launch", "--name", "secq", "--cloud", "local", "--secret-env", "TOK", "--json")
    assert r.exit_code == 0, r.output
    assert fake_crypto.calls == []
    assert "stored (encrypted) in this stack's config only" in r.stderr
    assert fake_engine.stacks["secq"].cluster()["setup"]["secret_env"] == {"TOK": VALUE}


def test_launch_secret_env_unset_is_a_usage_error(fake_engine, project, fake_crypto, monkeypatch):
    f = project.write("secu", local_cluster("secu"))
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    r = run("launch", str(f), "--secret-env", "NOPE_NOT_SET")
    assert r.exit_code == 2 and "is not set" in r.stderr


def test_preview_decrypts_secure_values_from_the_file(fake_engine, project, fake_crypto):
    f = project.write("secpv", secure_cluster("secpv"))
    fake_crypto.store[("secpv", "setup.secret_env.TOKEN")] = VALUE
    seen = []
    orig = fake_engine.create_or_select

    def record(name, cluster, base_dir):
        seen.append(cluster)
        return orig(name, cluster, base_dir)

    fake_engine.create_or_select = record
    r = run("preview", str(f), "--json")
    assert r.exit_code == 0, r.output
    assert VALUE not in r.output
    assert seen[0]["setup"]["secret_env"] == {"TOKEN": VALUE}  # the program gets the plaintext


def test_preview_and_launch_warn_about_plain_text(fake_engine, project, fake_crypto, monkeypatch):
    c = local_cluster("secw")
    c["setup"]["secret_env"] = {"TOKEN": "clear"}
    project.write("secw", c)
    monkeypatch.chdir(project.root)
    want = "warning: styx:cluster.setup.secret_env.TOKEN is plain text in stacks/Pulumi.secw.yaml; encrypt it: " \
           "styx secret set TOKEN --stack secw < value-file"
    r = run("preview", "stacks/Pulumi.secw.yaml", "--json")
    assert r.exit_code == 0, r.output
    assert want in r.stderr
    r = run("launch", "stacks/Pulumi.secw.yaml", "--json")
    assert r.exit_code == 0, r.output
    assert want in r.stderr


# --------------------------------------------------------------------------- the workspace file


def test_set_cluster_config_writes_only_ciphertext_through_stdin(tmp_path, monkeypatch):
    calls = []

    def fake_run(args, **kw):
        calls.append((list(args), kw))
        # what pulumi does: put a secure: value at the path
        p = tmp_path / "Pulumi.secws.yaml"
        doc = yaml.safe_load(p.read_text())
        key = args[-1].split(".")
        cur = doc["config"]["styx:cluster"]
        for part in key[1:-1]:
            cur = cur.setdefault(part, {})
        cur[key[-1]] = {"secure": "v1:xyz"}
        p.write_text(yaml.safe_dump(doc))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(eng.subprocess, "run", fake_run)  # config_set_stdin lives in styx.app.engine
    stack = SimpleNamespace(name="secws", workspace=FakeWs(tmp_path))
    c = local_cluster("secws")
    c["setup"]["secret_env"] = {"A": VALUE, "B": True}
    c["ssh"] = {"private_key": "PEM-" + VALUE}
    eng.set_cluster_config(stack, c)
    text = (tmp_path / "Pulumi.secws.yaml").read_text()
    assert VALUE not in text
    doc = yaml.safe_load(text)["config"]["styx:cluster"]
    assert doc["setup"]["secret_env"] == {"A": {"secure": "v1:xyz"}, "B": {"secure": "v1:xyz"}}
    assert doc["ssh"]["private_key"] == {"secure": "v1:xyz"}
    assert [kw["input"] for _, kw in calls] == [VALUE, "true", "PEM-" + VALUE]  # bools as the program sees them
    for args, _ in calls:
        assert "--secret" in args and "--path" in args
        assert not any(VALUE in a for a in args)


# --------------------------------------------------------------------------- styx launch == pulumi up


def test_the_program_reads_only_styx_cluster_not_styx_metadata():
    """styx:launched_at/pricing/base_dir/placement (session.META_KEYS) are in styx's workspace only, so
    the program must not read them, or `pulumi up -s S` in the repo would differ from `styx launch`."""
    import re

    from styx.app.session import META_KEYS

    root = eng.REPO
    sources = [*root.glob("components/**/*.py"), root / "__main__.py"]
    reads = []
    for p in sources:
        text = p.read_text()
        reads += re.findall(r'Config\("styx"\)|\.get_object\("(\w+)"\)|\.require\w*\("(\w+)"\)', text)
        for k in META_KEYS:
            if k == "styx:power":
                # the one exception (README, Stop and start): which AWS/GCP machines `styx stop` stopped is
                # state styx keeps, not config; a plain `pulumi up` in the repo does not see it and would
                # start them (the machines, never the phases)
                reads_power = "power" in re.findall(r'(?:get|require)\w*\("(\w+)"\)', text)
                assert not reads_power or p.name == "program.py", p
                continue
            assert k.split(":", 1)[1] not in re.findall(r'(?:get|require)\w*\("(\w+)"\)', text), (p, k)
    assert ("cluster", "") in reads  # components/program.py: config.get_object("cluster")


def test_workspace_secret_text_matches_what_the_program_parses():
    """A YAML `true` under secret_env is "true" for the program (styx.model.config) and in styx's workspace."""
    from styx.model.config import parse_cluster

    c = local_cluster("secb")
    c["setup"]["secret_env"] = {"B": True, "N": 3}
    items = dict(eng._secret_items(c, []))
    cfg = parse_cluster(c)
    assert items == {f"setup.secret_env.{k}": v for k, v in cfg.setup.secret_env.items()}
