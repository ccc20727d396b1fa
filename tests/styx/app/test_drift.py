"""styx.app.drift without nodes: reading phases out of an exported state, verdicts, what a repair replaces."""

from __future__ import annotations

import json

from styx.app import drift as dr
from styx.app.remote import ExecResult, Target
from styx.components import runner

STACK = "urn:pulumi:s::styx::styx:index:Cluster$styx:index:Node$"
CHAIN = ["wait_ssh", "python_env", "file_sync", "env_vars", "custom-mark", "ray"]


def secret(v) -> dict:
    return {dr.SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "plaintext": json.dumps(v)}


def phase_res(node: str, phase: str, *, program: str | None = "styx_verifying", secret_stdin: bool = False) -> dict:
    create = "exec " + runner.command_text(phase, node, 300, "create")
    stdin = f"# program of {phase}\n{program}" if program is not None else None
    return {"urn": f"{STACK}command:remote:Command::c-{node}-{phase}", "type": "command:remote:Command",
            "inputs": {"create": create, "stdin": secret(stdin) if secret_stdin else stdin},
            "deletedWith": f"urn:pulumi:s::styx::command:local:Command::c-{node}-sandbox"}


def state(nodes=("head", "worker-0", "worker-1")) -> dict:
    res = [{"urn": "urn:pulumi:s::styx::pulumi:pulumi:Stack::styx-s", "type": "pulumi:pulumi:Stack"}]
    for n in nodes:
        for p in CHAIN:
            res.append(phase_res(n, p, secret_stdin=p == "env_vars"))
            if p == "file_sync":
                res.append({"urn": f"{STACK}command:remote:CopyToRemote::c-{n}-file_sync-copy",
                            "type": "command:remote:CopyToRemote", "inputs": {}})
    return {"resources": res}


def test_phases_are_read_from_the_state_in_chain_order_with_secrets_opened():
    got = dr.phase_resources(state())
    assert [(p.node, p.phase) for p in got[:6]] == [("head", p) for p in CHAIN]
    env = next(p for p in got if p.node == "head" and p.phase == "env_vars")
    assert env.program.startswith("# program of env_vars") and env.timeout_s == 300
    assert env.machine.endswith("c-head-sandbox")
    # kubectl-style local commands, foreign commands and pending deletes are not phases
    other = {"resources": [{"urn": "u1", "type": "command:remote:Command", "inputs": {"create": "echo hi"}},
                           {**phase_res("head", "ray"), "delete": True}]}
    assert dr.phase_resources(other) == []


def test_an_old_program_without_verify_is_never_sent():
    pr = dr.phase_resources({"resources": [phase_res("head", "ray", program="echo old")]})[0]
    calls = []
    node = dr.check_node(Target("head", "h", 22, "root", "k"), [pr], run=lambda *a, **k: calls.append(a))
    assert calls == [] and node.phases[0].status == dr.UNKNOWN and "older styx" in node.phases[0].detail


def fake_run(outcomes: dict[str, tuple[int, str, str]]):
    sent = []

    def run(t, command, *, timeout=None, stdin_text=None):
        phase = command.split()[-4]
        sent.append((t.node, phase, command, stdin_text))
        rc, out, err = outcomes.get(phase, (0, f"styx {phase}: ok: fine\n", ""))
        return ExecResult(t.node, t.host, command, rc, out, err)

    return run, sent


def test_verdicts_and_the_verify_action_with_the_program_on_stdin():
    run, sent = fake_run({"env_vars": (0, "styx env_vars: drifted: /etc/styx/env.sh content changed\n", ""),
                          "custom-mark": (0, "styx custom-mark: skipped: no check configured\n", ""),
                          "python_env": (1, "", "styx python_env: error: boom\n")})
    phases = dr.by_node(dr.phase_resources(state(("head",))))["head"]
    node = dr.check_node(Target("head", "h", 22, "root", "k"), phases, run=run)
    st = {p.phase: (p.status, p.detail) for p in node.phases}
    assert st["env_vars"] == ("drifted", "/etc/styx/env.sh content changed")
    assert st["custom-mark"][0] == "unchecked" and st["ray"] == ("ok", "fine")
    assert st["python_env"] == ("drifted", "its check failed: styx python_env: error: boom")
    assert node.status == "drifted"
    # the engine's wrapper with the action `verify`; the program (secrets included) only on stdin
    assert all(c.endswith(" verify") and "program of" not in c for _n, _p, c, _s in sent)
    assert sent[3][3].startswith("# program of env_vars")


def test_an_unreachable_gate_stops_the_node():
    run, sent = fake_run({"wait_ssh": (255, "", "ssh: connect to host h port 22: No route to host\n")})
    phases = dr.by_node(dr.phase_resources(state(("head",))))["head"]
    node = dr.check_node(Target("head", "h", 22, "root", "k"), phases, run=run)
    assert node.status == "unreachable" and len(sent) == 1
    assert {p.status for p in node.phases} == {"unreachable"} and len(node.phases) == len(CHAIN)


def report(**drifted) -> dr.DriftReport:
    nodes = []
    for n in ("head", "worker-0", "worker-1"):
        bad = drifted.get(n.replace("-", "_"), ())
        phases = [dr.PhaseCheck(p, "drifted" if p in bad else "ok", "") for p in CHAIN]
        nodes.append(dr.NodeCheck(n, "drifted" if bad else "ok", phases))
    return dr.DriftReport("s", "t", nodes)


def names(urns: list[str]) -> list[str]:
    return [u.rsplit("::", 1)[1] for u in urns]


def test_repair_replaces_the_first_drifted_phase_and_all_after_it_on_that_node_only():
    got = names(dr.repair_targets(report(worker_1=("file_sync", "custom-mark")), state()))
    assert got == ["c-worker-1-file_sync", "c-worker-1-file_sync-copy", "c-worker-1-env_vars",
                   "c-worker-1-custom-mark", "c-worker-1-ray"]
    assert dr.repair_targets(report(), state()) == []


def test_a_restarted_head_ray_takes_every_worker_ray_with_it():
    got = names(dr.repair_targets(report(head=("env_vars",)), state()))
    assert got == ["c-head-env_vars", "c-head-custom-mark", "c-head-ray", "c-worker-0-ray", "c-worker-1-ray"]
    assert names(dr.repair_targets(report(worker_0=("ray",)), state())) == ["c-worker-0-ray"]


def test_a_gone_machine_is_replaced_with_all_its_phases():
    r = report()
    r.nodes[2].gone, r.nodes[2].status = True, "unreachable"
    got = names(dr.repair_targets(r, state()))
    assert got[0] == "c-worker-1-sandbox" and got[1:] == [
        "c-worker-1-wait_ssh", "c-worker-1-python_env", "c-worker-1-file_sync", "c-worker-1-file_sync-copy",
        "c-worker-1-env_vars", "c-worker-1-custom-mark", "c-worker-1-ray"]


def test_the_last_report_is_kept_per_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("STYX_HOME", str(tmp_path))
    r = report(head=("env_vars",))
    dr.save(r, "file:///a")
    assert dr.last("s", "file:///a")["drifted"] == [{"node": "head", "phase": "env_vars", "detail": ""}]
    assert dr.last("s", "file:///b") is None
    assert r.as_dict()["clean"] is False and report().as_dict()["clean"] is True


def test_only_a_create_first_phase_loses_its_undo_before_its_repair():
    st = state(("worker-1",))
    for r in st["resources"]:
        if r.get("type") == "command:remote:Command":
            r["inputs"]["delete"] = "exec bash -c ... delete"
            r["outputs"] = {"delete": "exec bash -c ... delete", "stdout": "x"}
    urns = dr.repair_targets(report(worker_1=("file_sync",)), st)
    got = dr.retire_undos(st, urns)
    assert names(got) == ["c-worker-1-file_sync"]
    fs = next(r for r in st["resources"] if r["urn"] == got[0])
    assert "delete" not in fs["inputs"] and fs["outputs"] == {"stdout": "x"}
    ray = next(r for r in st["resources"] if r["urn"].endswith("c-worker-1-ray"))
    assert ray["inputs"]["delete"]  # delete-first phases keep theirs: the undo runs before the new create


def test_a_gone_nodes_phases_lose_their_undos():
    st = state(("head", "worker-1"))
    for r in st["resources"]:
        if r.get("type") == "command:remote:Command":
            r["inputs"]["delete"] = "d"
    got = dr.drop_undos(st, dr.phases_on(st, ["worker-1"]))
    assert len(got) == len(CHAIN) and all("c-worker-1-" in u for u in got)
    assert all(r["inputs"]["delete"] == "d" for r in st["resources"]
               if "c-head-" in r["urn"] and r["type"] == "command:remote:Command")


class _Session:
    """Just what api._machines_gone uses: the state, refresh, import."""

    def __init__(self, deployment, drop_on_refresh=()):
        self.dep, self.drop, self.refreshed, self.imported = deployment, set(drop_on_refresh), None, None

    def deployment(self):
        return json.loads(json.dumps(self.dep))

    def refresh(self, target=None):
        from types import SimpleNamespace

        self.refreshed = target
        self.dep["resources"] = [r for r in self.dep["resources"] if r["urn"] not in self.drop]
        return SimpleNamespace(ok=True, error=None)

    def edit_state(self, edit):
        dep = json.loads(json.dumps(self.dep))
        done = edit(dep)
        if done:
            self.imported = dep
        return done


def _with_undos(st):
    for r in st["resources"]:
        if r.get("type") == "command:remote:Command":
            r["inputs"]["delete"] = "d"
    st["resources"] += [{"urn": f"urn:pulumi:s::styx::command:local:Command::c-{n}-sandbox", "type": "x"}
                        for n in ("head", "worker-0")]
    return st


def test_a_backend_that_cannot_tell_gets_its_machines_refreshed_and_a_dropped_vm_made_again():
    from styx.app import api

    gone = "urn:pulumi:s::styx::command:local:Command::c-worker-0-sandbox"
    s = _Session(_with_undos(state(("head", "worker-0"))), drop_on_refresh=[gone])
    notes = []
    assert api._machines_gone(s, {"name": "c", "cloud": "aws"}, notes.append) == []
    assert s.refreshed == sorted({"urn:pulumi:s::styx::command:local:Command::c-head-sandbox", gone})
    # the VM left the state: its phases lose their undos (the old node cannot be dialled); up makes it again
    dropped = [r["urn"] for r in s.imported["resources"]
               if r.get("type") == "command:remote:Command" and "delete" not in r["inputs"]]
    assert dropped and all("c-worker-0-" in u for u in dropped) and "worker-0" in notes[0]


def test_the_local_backend_says_which_sandbox_is_gone(monkeypatch):
    from styx.app import api

    s = _Session(_with_undos(state(("head", "worker-0"))))
    monkeypatch.setattr(api, "_gone_nodes", lambda cluster, nodes: ["worker-0"])
    got = api._machines_gone(s, {"name": "c", "cloud": "local"}, lambda m: None)
    assert got == ["urn:pulumi:s::styx::command:local:Command::c-worker-0-sandbox"] and s.refreshed is None
