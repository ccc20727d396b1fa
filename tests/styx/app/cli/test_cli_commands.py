"""status, ssh, exec, dashboard, down, preview, cost-report, validate, check against the fake engine."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta

import pytest
from cli_fakes import FAKE_KEY, local_cluster
from click.testing import CliRunner

from styx.app.cli import main
from styx.app.session import OpResult


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def launched(fake_engine, cluster_file):
    r = run("launch", str(cluster_file()), "--json")
    assert r.exit_code == 0, r.output
    return fake_engine


# --------------------------------------------------------------------------- status


def test_status_json_shape(launched, fake_ssh, monkeypatch):
    status_mod = importlib.import_module("styx.app.cli.status")

    launched.now += timedelta(hours=2)
    monkeypatch.setattr(status_mod, "now", lambda: launched.now)
    r = run("status", "--json", "--no-ray")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["ok"] is True and body["backend"] == "file:///fake/state"
    [c] = body["clusters"]
    assert c["stack"] == "demo" and c["cloud"] == "local" and c["state"] == "up"
    assert [n["name"] for n in c["nodes"]] == ["head", "worker-0"]
    head = c["nodes"][0]
    assert head["role"] == "head" and head["host"] == "10.78.0.2" and head["ready"] is True
    assert head["phases"]["custom-hello"] == {"status": "ok", "line": "styx custom-hello: ok: done"}
    assert c["price_per_hour"] == 0.0 and c["ray"] is None
    assert c["last_update"]["result"] == "succeeded"
    assert c["uptime_s"] is not None and c["uptime_s"] >= 0


def test_status_ray_health_over_ssh(launched, fake_ssh, tmp_path, monkeypatch):
    st = launched.stacks["demo"]
    c = st.cluster()
    c["setup"]["ray"] = {"enabled": True}
    st.set_cluster(c)
    # the fake ssh runs the remote command locally: give it a `ray` that prints a status
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "ray").write_text("#!/bin/sh\necho \"RAY_USAGE_STATS_ENABLED=$RAY_USAGE_STATS_ENABLED\" >&2\n"
                              "cat <<'EOF'\n======== Autoscaler status ========\nNode status\n-----\n"
                              "Active:\n 1 node_aaa\n 1 node_bbb\n"
                              "Pending:\n (no pending nodes)\nRecent failures:\n (no failures)\n\nResources\n-----\n"
                              "Usage:\n 0.0/8.0 CPU\n 0B/10.00GiB memory\nEOF\n")
    (venv / "ray").chmod(0o755)
    c["setup"]["python"] = {"venv_dir": str(tmp_path / "venv")}
    st.set_cluster(c)
    r = run("status", "--json")
    assert r.exit_code == 0, r.output
    ray = json.loads(r.stdout)["clusters"][0]["ray"]
    assert ray == {"enabled": True, "ok": True, "expected_nodes": 2, "active_nodes": 2, "pending_nodes": 0,
                   "usage": ["0.0/8.0 CPU", "0B/10.00GiB memory"]}
    log = fake_ssh.read_text()
    assert "RAY_USAGE_STATS_ENABLED=0" in log and "KEYMODE 600" in log
    h = run("status")
    assert "healthy (2/2 nodes)" in h.stdout and "worker-0" in h.stdout


def test_status_without_clusters(fake_engine):
    r = run("status", "--json")
    assert json.loads(r.stdout) == {"ok": True, "backend": "file:///fake/state", "at": json.loads(r.stdout)["at"],
                                    "clusters": []}
    assert run("status").exit_code == 0


def test_status_unknown_stack_fails(launched):
    r = run("status", "--stack", "nope", "--json")
    assert r.exit_code == 1 and "nope" in json.loads(r.stdout)["error"]


# --------------------------------------------------------------------------- ssh / exec / dashboard


def test_exec_returns_the_remote_exit_code_and_removes_the_key(launched, fake_ssh):
    r = run("exec", "--", "echo hello; exit 7")
    assert r.exit_code == 7
    rj = run("exec", "--json", "--", "echo hello; exit 7")
    assert rj.exit_code == 7 and json.loads(rj.stdout)["stdout"] == "hello\n"
    log = fake_ssh.read_text()
    assert "root@10.78.0.2" in log and "KEYMODE 600" in log and "BatchMode=yes" in log
    keyfile = next(ln.split()[2] for ln in log.splitlines() if ln.startswith("KEYMODE"))
    import os

    assert not os.path.exists(keyfile)  # removed after ssh exits
    assert (fake_ssh.parent / "ssh.log.keys").read_text().startswith(FAKE_KEY)
    assert FAKE_KEY.splitlines()[1] not in r.output  # never printed


def test_exec_on_a_named_node_json(launched, fake_ssh):
    r = run("exec", "worker-0", "--json", "--", "echo", "a b")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body.pop("duration_s") >= 0
    assert body == {"ok": True, "node": "worker-0", "host": "10.78.0.3", "command": "echo 'a b'", "exit_code": 0,
                    "stdout": "a b\n", "stderr": "", "timed_out": False}


def test_exec_node_without_dashdash(launched, fake_ssh):
    r = run("exec", "worker-0", "true")
    assert r.exit_code == 0
    assert "root@10.78.0.3" in fake_ssh.read_text()


def test_exec_unknown_node_and_missing_command(launched, fake_ssh):
    r = run("exec", "nope", "--", "true")
    assert r.exit_code == 2 and "no node 'nope'" in r.stderr
    assert run("exec").exit_code == 2
    assert run("exec", "a", "b", "--", "true").exit_code == 2


def test_ssh_opens_a_shell_and_print_hides_the_key(launched, fake_ssh, monkeypatch):
    monkeypatch.setattr(importlib.import_module("styx.app.cli.remote"), "_stdin_tty", lambda: True)
    r = run("ssh", "worker-0")
    assert r.exit_code == 0 and "root@10.78.0.3" in fake_ssh.read_text()
    assert "-t" in fake_ssh.read_text().split()
    p = run("ssh", "--print")
    assert p.exit_code == 0 and "<key file>" in p.stdout and "root@10.78.0.2" in p.stdout
    assert "ssh_private_key --show-secrets" in p.stderr
    assert "FAKEKEY" not in p.stdout


def test_dashboard_print(launched):
    r = run("dashboard", "--print", "--json")
    assert r.exit_code == 0
    body = json.loads(r.stdout)
    assert body["url"] == "http://127.0.0.1:8265" and "-L 8265:127.0.0.1:8265" in body["command"]
    assert "<key file>" in body["command"]
    h = run("dashboard", "--print", "--port", "9000")
    assert "-L 9000:127.0.0.1:8265" in h.stdout and "http://127.0.0.1:9000" in h.stdout


def test_dashboard_runs_the_tunnel(launched, fake_ssh):
    r = run("dashboard", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["url"] == "http://127.0.0.1:8265"
    assert "ExitOnForwardFailure=yes" in fake_ssh.read_text()


def test_several_stacks_need_a_choice(launched, cluster_file):
    assert run("launch", str(cluster_file(local_cluster("other"))), "--json").exit_code == 0
    r = run("exec", "--", "true")
    assert r.exit_code == 2 and "--stack" in r.stderr


# --------------------------------------------------------------------------- down


def test_down_refuses_without_yes_when_not_a_terminal(launched):
    r = run("down")
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert "demo" in launched.stacks


def test_down_json(launched):
    r = run("down", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"ok": True, "stack": "demo", "destroyed": True, "removed": True,
                                    "changes": {"delete": 5}}
    assert launched.stacks == {}


def test_down_prompts_on_a_terminal(launched, monkeypatch):
    from styx.app.cli import common

    monkeypatch.setattr(common, "is_interactive", lambda: True)
    down_mod = importlib.import_module("styx.app.cli.down")

    monkeypatch.setattr(down_mod, "is_interactive", lambda: True)
    r = run("down", input="n\n")
    assert r.exit_code == 1 and "demo" in launched.stacks
    r = run("down", input="y\n")
    assert r.exit_code == 0 and launched.stacks == {}


def test_down_failure_keeps_the_stack(launched):
    launched.destroy_result = OpResult(False, error="error: delete failed")
    r = run("down", "--yes", "--json")
    assert r.exit_code == 1 and "demo" in launched.stacks
    assert json.loads(r.stdout)["ok"] is False


def test_down_keep_stack(launched):
    r = run("down", "--yes", "--keep-stack")
    assert r.exit_code == 0 and "demo" in launched.stacks


# --------------------------------------------------------------------------- preview


def test_preview_table_and_json(launched):
    r = run("preview", "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["stack"] == "demo"
    assert body["nodes"]["head"] == {"provision": "same", "wait_ssh": "same", "custom-hello": "replace"}
    assert body["nodes"]["worker-0"]["custom-hello"] == "create"
    assert body["nodes"]["(cluster)"] == {"network": "same"}
    rows = {row["node"]: row for row in body["rows"]}
    assert rows["head"]["replace"] == ["custom-hello"] and len(rows["head"]["same"]) == 2
    assert launched.stacks["demo"].program_bound
    h = run("preview")
    assert "head" in h.stdout and "custom-hello" in h.stdout and "replace 1" in h.stdout


def test_preview_diff(launched):
    r = run("preview", "--diff")
    assert "~triggers" in r.stdout
    assert "~triggers" in json.loads(run("preview", "--diff", "--json").stdout)["diff"]


def test_preview_markdown_to_stdout_and_file(launched, tmp_path):
    r = run("preview", "--markdown")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("### Stack `demo`: 4 to create, 1 to replace\n")
    assert "| worker-0 | `(node)` | create | new node: " in r.stdout
    assert "| per hour | $0.0000 | $0.0000 |" in r.stdout and "**Policy:** not checked" in r.stdout
    out = tmp_path / "p.md"
    r = run("preview", "--markdown", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("### Stack `demo`") and json.loads(r.stdout)["report"]["stack"] == "demo"


def test_preview_failed_on_mandatory_policy_findings_still_reports(launched, monkeypatch, tmp_path):
    from pulumi.automation import events as ev

    session = launched.stacks["demo"]
    seen = {}

    def preview(on_event=None, diff=False, policy_packs=None):
        seen["packs"] = policy_packs
        on_event(ev.EngineEvent.from_json({"sequence": 0, "timestamp": 0, "policyEvent": {
            "message": "port 6379 open to 0.0.0.0/0", "color": "never", "policyName": "styx-ray-ports-not-public",
            "policyPackName": "styx-security", "policyPackVersion": "0.1.0", "enforcementLevel": "mandatory",
            "resourceUrn": "urn:pulumi:demo::styx::aws:ec2/securityGroup:SecurityGroup::demo-sg"}}))
        return OpResult(False, error="error: preview failed: 1 mandatory policy violation")

    monkeypatch.setattr(session, "preview", preview)
    pack = tmp_path / "pack"
    pack.mkdir()
    r = run("preview", "--markdown", "--policy-pack", str(pack))
    assert r.exit_code == 1
    assert seen["packs"] == [str(pack.resolve())]
    assert "> **preview failed:** mandatory policy findings" in r.stdout
    assert "| mandatory | `styx-ray-ports-not-public` | `(cluster)/sg` | port 6379 open to 0.0.0.0/0 |" in r.stdout
    body = json.loads(run("preview", "--json", "--policy-pack", str(pack)).stdout)
    assert body["ok"] is False and body["exit_code"] == 1 and body["report"]["policy"][0]["level"] == "mandatory"
    monkeypatch.setattr(session, "preview", lambda **kw: OpResult(False, error="error: boom"))
    r = run("preview", "--markdown")
    assert r.exit_code == 1 and "boom" in r.output and "### Stack" not in r.stdout


def test_preview_of_a_new_config_leaves_no_stack(fake_engine, cluster_file):
    r = run("preview", str(cluster_file()), "--json")
    assert r.exit_code == 0, r.output
    assert fake_engine.stacks == {}
    md = run("preview", str(cluster_file()), "--markdown").stdout
    assert "| per hour | — | $0.0000 |" in md  # never launched: no price before


def test_preview_markdown_of_a_config_prices_the_launch_record(launched, cluster_file):
    md = run("preview", str(cluster_file(local_cluster(workers=3))), "--markdown").stdout
    assert "| per hour | $0.0000 | $0.0000 |" in md


def test_preview_of_a_config_restores_the_stored_one(launched, cluster_file):
    changed = local_cluster(workers=3)
    r = run("preview", str(cluster_file(changed)), "--json")
    assert r.exit_code == 0
    assert launched.stacks["demo"].cluster()["workers"][0]["count"] == 1


# --------------------------------------------------------------------------- cost-report


def test_cost_report_reads_the_recorded_price_not_the_catalog(launched, monkeypatch):
    status_mod = importlib.import_module("styx.app.cli.status")

    st = launched.stacks["demo"]
    t0 = launched.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    st.set_meta("styx:pricing", {"currency": "USD", "per_hour": 2.5, "priced_at": t0, "complete": True,
                                 "nodes": [{"node": "head", "instance_type": "gone.type", "price_per_hour": 2.5}],
                                 "history": [{"since": t0, "per_hour": 2.5}]})
    st.set_meta("styx:launched_at", t0)
    at = launched.now + timedelta(hours=4)
    monkeypatch.setattr(status_mod, "now", lambda: at)

    def boom(*a, **k):
        raise AssertionError("the catalog must not be read")

    monkeypatch.setattr("styx.model.catalog.load_catalog", boom)
    r = run("cost-report", "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    [c] = body["clusters"]
    assert c["price_per_hour"] == 2.5 and c["uptime_s"] == 4 * 3600 and c["cost_so_far"] == 10.0
    assert body["total_per_hour"] == 2.5 and body["total_so_far"] == 10.0 and body["currency"] == "USD"
    h = run("cost-report")
    assert "$2.5000" in h.stdout and "$10.00" in h.stdout and "gone.type" in h.stdout


def test_cost_report_leaves_out_stopped_time_of_a_cloud_cluster(launched, monkeypatch):
    """An AWS cluster whose worker was stopped for 1 of 4 hours (styx:power): its compute is not counted."""
    status_mod = importlib.import_module("styx.app.cli.status")

    st = launched.stacks["demo"]
    st.set_cluster({**st.cluster(), "cloud": "aws"})
    t0 = launched.now
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    st.set_meta("styx:pricing", {"currency": "USD", "per_hour": 3.0, "priced_at": iso(t0), "complete": True,
                                 "nodes": [{"node": "head", "instance_type": "m6i.large", "price_per_hour": 1.0},
                                           {"node": "worker-0", "instance_type": "m6i.xlarge", "price_per_hour": 2.0}],
                                 "history": [{"since": iso(t0), "per_hour": 3.0}]})
    st.set_meta("styx:launched_at", iso(t0))
    st.set_meta("styx:power", {"stopped": {"head": iso(t0 + timedelta(hours=3, minutes=30))},
                               "intervals": [{"node": "worker-0", "from": iso(t0 + timedelta(hours=1)),
                                              "to": iso(t0 + timedelta(hours=2))}]})
    monkeypatch.setattr(status_mod, "now", lambda: t0 + timedelta(hours=4))
    r = run("cost-report", "--json")
    assert r.exit_code == 0, r.output
    [c] = json.loads(r.stdout)["clusters"]
    assert c["cloud"] == "aws" and c["stopped_s"] == {"worker-0": 3600, "head": 1800}
    assert c["stopped_credit"] == 2.5 and c["cost_so_far"] == 12.0 - 2.5


def test_cost_report_empty(fake_engine):
    body = json.loads(run("cost-report", "--json").stdout)
    assert body["clusters"] == [] and body["total_so_far"] == 0.0


# --------------------------------------------------------------------------- validate


def test_validate_ok_and_json(cluster_file):
    f = str(cluster_file())
    r = run("validate", f)
    assert r.exit_code == 0 and "ok: cluster demo on local, 2 node(s)" in r.stdout
    body = json.loads(run("validate", f, "--json").stdout)
    assert body["ok"] is True and body["nodes"] == [{"name": "head", "role": "head"},
                                                    {"name": "worker-0", "role": "worker"}]


def test_validate_errors_exit_2_one_line_per_problem(cluster_file):
    bad = local_cluster()
    bad["cloud"] = "azure"
    bad["setup"]["custom_scripts"] = [{"name": "x", "file": "missing.sh"}]
    r = run("validate", str(cluster_file(bad)))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert lines and all(ln.startswith("styx:cluster.") for ln in lines), lines
    assert any("styx:cluster.cloud" in ln for ln in lines)
    body = json.loads(run("validate", str(cluster_file(bad)), "--json").stdout)
    assert body["ok"] is False and body["exit_code"] == 2


def test_validate_missing_script_file(cluster_file):
    c = local_cluster()
    c["setup"]["custom_scripts"] = [{"name": "x", "file": "missing.sh"}]
    r = run("validate", str(cluster_file(c)))
    assert r.exit_code == 2 and "styx:cluster.setup.custom_scripts[0].file" in r.stderr


def test_validate_stack_file_without_cluster_key(tmp_path):
    p = tmp_path / "Pulumi.x.yaml"
    p.write_text("config:\n  other: 1\n")
    r = run("validate", str(p))
    assert r.exit_code == 2 and "styx:cluster" in r.stderr


def test_validate_not_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("a: [1,\n")
    assert run("validate", str(p)).exit_code == 2


# --------------------------------------------------------------------------- check


def test_check_json_shape(monkeypatch, tmp_path):
    monkeypatch.setenv("STYX_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("STYX_PULUMI_BIN_DIR", raising=False)
    monkeypatch.delenv("PULUMI_HOME", raising=False)
    r = run("check", "--json")
    body = json.loads(r.stdout)
    assert r.exit_code == (0 if body["local_ready"] else 1)
    names = {c["name"] for c in body["checks"]}
    assert {"pulumi CLI", "command provider plugin", "root", "ip netns", "debootstrap", "iptables",
            "unshare (namespaces)", "aws", "gcp", "kubernetes"} <= names
    assert set(body["clouds"]) == {"aws", "gcp", "kubernetes"}
    plugins = {"command provider plugin", "python language host"}
    for c in body["checks"]:
        base = {"name", "group", "ok", "required", "detail", "fix"}
        assert set(c) == (base | {"origin", "version", "official"} if c["name"] in plugins else base)
        if not c["ok"] and c["required"]:
            assert c["fix"]
    # an empty STYX_HOME has no toolchain: not ready, exit 1, with the install hint
    pul = next(c for c in body["checks"] if c["name"] == "pulumi CLI")
    assert pul["ok"] is False and "install-pulumi.sh" in pul["fix"] and r.exit_code == 1
    cmd = next(c for c in body["checks"] if c["name"] == "command provider plugin")
    assert cmd["ok"] is False and cmd["origin"] == "missing" and "install-pulumi.sh" in cmd["fix"]


def _toolchain(tmp_path, monkeypatch, command: bytes, langhost: bytes, command_origin: str, langhost_origin: str):
    """A fake STYX_HOME as install-pulumi.sh leaves it: BIN with the binaries, the plugin registered."""
    from styx.app import engine

    monkeypatch.setenv("STYX_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("STYX_PULUMI_BIN_DIR", raising=False)
    monkeypatch.delenv("PULUMI_HOME", raising=False)
    bin_dir, home = engine.toolchain_bin(), engine.pulumi_home()
    plugin = home / "plugins" / f"resource-command-v{engine.COMMAND_VERSION}" / "pulumi-resource-command"
    plugin.parent.mkdir(parents=True)
    bin_dir.mkdir(parents=True)
    for p, data in ((plugin, command), (bin_dir / "pulumi-resource-command", command),
                    (bin_dir / "pulumi-language-python", langhost)):
        p.write_bytes(b"\x7fELF..." + data + b"...")
    (home / ".styx-command-origin").write_text(command_origin + "\n")
    (bin_dir / ".command-origin").write_text(command_origin + "\n")
    (bin_dir / ".langhost-origin").write_text(langhost_origin + "\n")
    return bin_dir, home


def test_check_reports_official_source_builds(monkeypatch, tmp_path):
    from styx.app import engine
    from styx.app.cli.check import engine_checks

    _toolchain(tmp_path, monkeypatch, engine.COMMAND_MARK, engine.LANGHOST_MARK,
               "official source build: pulumi-command v1.2.1 (commit 7f3eb6f3, archive sha256 aa29)",
               "official source build: pulumi-language-python v3.259.0 (commit 0ac56e87, archive sha256 6e3c)")
    got = {c["name"]: c for c in engine_checks()}
    cmd, lang = got["command provider plugin"], got["python language host"]
    assert cmd["ok"] and cmd["official"] and cmd["origin"] == "official source build" and cmd["version"] == "1.2.1"
    assert "official source build v1.2.1 (commit 7f3eb6f3, archive sha256 aa29)" in cmd["detail"]
    assert lang["ok"] and lang["official"] and lang["origin"] == "official source build"
    assert lang["version"] == "3.259.0" and "official source build v3.259.0" in lang["detail"]


def test_check_reports_official_release(monkeypatch, tmp_path):
    from styx.app import engine
    from styx.app.cli.check import engine_checks

    _toolchain(tmp_path, monkeypatch, engine.COMMAND_MARK, engine.LANGHOST_MARK,
               "official release: pulumi-command v1.2.1",
               "official release: pulumi-language-python v3.259.0 (Pulumi's installer)")
    got = {c["name"]: c for c in engine_checks()}
    cmd = got["command provider plugin"]
    assert cmd["ok"] and cmd["origin"] == "official release" and cmd["version"] == "1.2.1"
    assert cmd["detail"].startswith("official release v1.2.1, registered in ")
    assert got["python language host"]["origin"] == "official release"


def test_check_flags_a_command_plugin_that_is_not_pulumis(monkeypatch, tmp_path):
    """e.g. the home-made provider of earlier styx versions, still registered without an origin record."""
    from styx.app.cli.check import engine_checks

    _, home = _toolchain(tmp_path, monkeypatch, b"styx.local/command-provider", b"sdk/v3/python/cmd", "", "")
    (home / ".styx-command-origin").unlink()
    got = {c["name"]: c for c in engine_checks()}
    cmd, lang = got["command provider plugin"], got["python language host"]
    assert not cmd["ok"] and cmd["origin"] == "unknown" and not cmd["official"]
    assert "NOT an official Pulumi build" in cmd["detail"] and "install-pulumi.sh" in cmd["fix"]
    assert not lang["ok"] and not lang["required"] and "NOT an official" in lang["detail"]


def test_check_toolchain_origins(monkeypatch, tmp_path):
    from styx.app import engine

    bin_dir, _ = _toolchain(tmp_path, monkeypatch, engine.COMMAND_MARK, engine.LANGHOST_MARK,
                            "official source build: pulumi-command v1.2.1 (commit 7f3eb6f3, archive sha256 aa29)",
                            "official release: pulumi-language-python v3.259.0 (Pulumi's installer)")
    with pytest.raises(engine.ToolchainMissing):
        engine.check_toolchain()
    (bin_dir / "pulumi").write_text("#!/bin/sh\n")
    found = engine.check_toolchain()
    assert found["pulumi"] and found["plugin registered"]
    assert found["command origin"] == "official source build v1.2.1"
    assert found["language host origin"] == "official release v3.259.0"


def test_cloud_credentials_are_found_without_calling_clouds(tmp_path):
    from styx.app.cli.check import cloud_checks

    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("[default]\n")
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text("apiVersion: v1\n")
    got = {c["name"]: c for c in cloud_checks(env={}, home=home)}
    assert got["aws"]["ok"] and got["kubernetes"]["ok"] and not got["gcp"]["ok"]
    assert "gcloud auth application-default login" in got["gcp"]["fix"]
    adc = tmp_path / "adc.json"
    adc.write_text("{}")
    got = {c["name"]: c for c in cloud_checks(env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc),
                                                   "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
                                              home=tmp_path / "empty")}
    assert got["gcp"]["ok"] and got["aws"]["ok"] and not got["kubernetes"]["ok"]


def test_help_lists_every_command():
    r = run("--help")
    for cmd in ("launch", "preview", "status", "ssh", "exec", "dashboard", "down", "check", "cost-report",
                "validate", "optimize", "show-gpus"):
        assert cmd in r.stdout
