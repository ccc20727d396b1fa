"""styx.app.preview_report: engine events of a preview -> report -> markdown, against golden files.

The events are built as the engine sends them (EngineEvent.from_json of resourcePreEvent JSON), with
real phase programs (components/runner.py) as stdin and `[secret]` where the engine masks a secret.
The e2e twin (tests/e2e/test_pr_preview.py) renders previews of a real stack. Regenerate the goldens
with STYX_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pulumi.automation import events as ev

from styx.app.events import PlanCollector
from styx.app.preview_report import explain, render_markdown, scrub
from styx.components import runner

GOLDEN = Path(__file__).resolve().parent / "golden"
NODE_T = "styx:index:Cluster$styx:index:Node"
REMOTE_T = "command:remote:Command"
LOCAL_T = "command:local:Command"
SENTINEL = "sentinel-SECRET-4711"
PRICE0 = {"currency": "USD", "per_hour": 0.0}


def urn(typ: str, name: str, parent: str = NODE_T) -> str:
    return f"urn:pulumi:prv::styx::{parent}${typ}::{name}"


def program(phase: str, body: str, env: dict[str, str]) -> str:
    return runner.program(phase, body, {"STYX_NODE_NAME": "head", "STYX_NODE_ROLE": "head", **env})


HELLO = 'echo "hello from $(hostname)" > /tmp/hello\nstyx_result ok "custom script hello finished"\n'
HELLO2 = 'echo "hello again from $(hostname)" > /tmp/hello\nstyx_result ok "custom script hello finished"\n'


def phase_inputs(stdin: str, own: str, chain: str) -> dict:
    return {"connection": {"host": "10.93.0.2", "privateKey": "[secret]", "user": "root"},
            "create": "bash -c '...' styx x head 120 create", "stdin": stdin, "triggers": [own, chain]}


def pre(op: str, typ: str, name: str, old: dict | None, new: dict | None, diff: dict | None = None,
        parent: str = NODE_T) -> ev.EngineEvent:
    u = urn(typ, name, parent)
    md = {"op": op, "urn": u, "type": typ, "provider": ""}
    if old is not None:
        md["old"] = {"type": typ, "urn": u, "inputs": old}
    if new is not None:
        md["new"] = {"type": typ, "urn": u, "inputs": new}
    if diff:
        md["detailedDiff"] = {k: {"diffKind": v} for k, v in diff.items()}
        md["diffs"] = sorted({k.split("[")[0].split(".")[0] for k in diff})
    return ev.EngineEvent.from_json({"sequence": 0, "timestamp": 0, "resourcePreEvent": {"metadata": md}})


def base_steps(node: str, *, hello: str = HELLO, env_stdin: str | None = None, chain: str = "c1"):
    """(name, typ, inputs) of one node's resources in the order the engine registers them."""
    env_stdin = env_stdin or "[secret]"
    return [
        (f"prv-{node}-sandbox", LOCAL_T, {"create": "sandboxctl.sh create", "triggers": ["10.93.0.2"]}),
        (f"prv-{node}-wait_ssh", REMOTE_T, phase_inputs(runner.gate_program("true\n", {}), "g", "g")),
        (f"prv-{node}-env_vars", REMOTE_T, phase_inputs(env_stdin, "[secret]", "g")),
        (f"prv-{node}-custom-hello", REMOTE_T,
         phase_inputs(program("custom-hello", hello, {}), "h-" + str(hash(hello) % 1000), "[secret]")),
        (f"prv-{node}-custom-setup", REMOTE_T, phase_inputs(program("custom-setup", "echo setup\n", {
            "STYX_PIP_PACKAGES": "numpy\nrich"}), "s", "[secret]")),
    ]


def collect(events_: list[ev.EngineEvent], nodes=("head", "worker-0")) -> PlanCollector:
    c = PlanCollector("prv", nodes)
    for e in events_:
        c.handle(e)
    return c


def same_events(nodes=("head", "worker-0")):
    out = [pre("same", LOCAL_T, "prv-ray-token", {"create": "x"}, {"create": "x"}, parent="styx:index:Cluster")]
    for n in nodes:
        out += [pre("same", t, name, i, i) for name, t, i in base_steps(n)]
    return out


def check_golden(name: str, text: str) -> None:
    p = GOLDEN / f"preview-{name}.md"
    if os.environ.get("STYX_UPDATE_GOLDEN") == "1":
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    assert p.is_file(), f"missing golden {p}: run with STYX_UPDATE_GOLDEN=1"
    assert text == p.read_text(), f"{p} differs: run STYX_UPDATE_GOLDEN=1 pytest {__file__} and review the diff"


def render(events_, changes, *, nodes=("head", "worker-0"), packs=("policy",), after=PRICE0, before=PRICE0):
    c = collect(events_, nodes)
    rep = explain("prv", c, changes=changes, price_before=before, price_after=after, policy_packs=packs)
    return rep, render_markdown(rep, redact=[SENTINEL])


def test_no_change():
    rep, md = render(same_events(), {"same": 13})
    assert all(not n["rows"] for n in rep["nodes"])
    assert "no changes" in md and "No phase on any node changes." in md
    check_golden("no-change", md)


def test_one_script_changed():
    evs = [pre("same", LOCAL_T, "prv-ray-token", {"create": "x"}, {"create": "x"}, parent="styx:index:Cluster")]
    for n in ("head", "worker-0"):
        old, new = base_steps(n), base_steps(n, hello=HELLO2)
        for (name, t, o), (_, _, nw) in zip(old, new, strict=True):
            if name.endswith("custom-hello"):
                evs.append(pre("replace", t, name, o, nw, {"stdin": "update", "triggers[0]": "update-replace"}))
            elif name.endswith("custom-setup"):
                nw = {**nw, "triggers": [nw["triggers"][0], "[secret]"]}
                evs.append(pre("replace", t, name, o, nw, {"triggers[1]": "update-replace"}))
            else:
                evs.append(pre("same", t, name, o, nw))
    rep, md = render(evs, {"replace": 4, "same": 9})
    head = next(n for n in rep["nodes"] if n["node"] == "head")
    assert [r["phase"] for r in head["rows"]] == ["custom-hello", "custom-setup"]
    assert head["rows"][0]["why"] == ["script changed"]
    assert head["rows"][1]["why"] == ["re-runs: an earlier phase on this node changed (custom-hello)"]
    check_golden("script-changed", md)


def test_a_workers_ray_that_follows_the_heads_says_so():
    """setup.ray.worker_start with_head: the head's Ray generation is a parameter of the worker's Ray
    (it waits for it in the head's GCS) and its third trigger; its change is not the worker's own."""
    ray_env = {"STYX_RAY_VERSION": "2.60.0", "STYX_RAY_AUTH": "none"}

    def worker_ray(gen: str) -> dict:
        stdin = program("ray", "echo ray\n", {**ray_env, "STYX_RAY_HEAD_GENERATION": gen})
        return {**phase_inputs(stdin, "own-r", "c-w"), "triggers": ["own-r", "c-w", gen]}

    o, n = worker_ray("gen-old"), worker_ray("gen-new")
    diff = {"stdin": "update", "triggers[2]": "update-replace"}
    c = collect([pre("replace", REMOTE_T, "prv-worker-0-ray", o, n, diff)])
    rep = explain("prv", c, changes={"replace": 1})
    row = next(nd for nd in rep["nodes"] if nd["node"] == "worker-0")["rows"][0]
    assert row["why"] == ["re-runs: the phase it follows on another node changed"]


def test_worker_count_changed():
    evs = same_events(("head", "worker-0"))
    evs += [pre("create", t, name, None, i) for name, t, i in base_steps("worker-1")]
    rep, md = render(evs, {"create": 5, "same": 13}, nodes=("head", "worker-0", "worker-1"))
    w1 = next(n for n in rep["nodes"] if n["node"] == "worker-1")
    assert w1["rows"][0]["op"] == "create" and w1["rows"][0]["why"][0].startswith("new node: 5 resources")
    check_golden("worker-count", md)


def test_secret_changed_never_shows_the_value():
    evs = [pre("same", LOCAL_T, "prv-ray-token", {"create": "x"}, {"create": "x"}, parent="styx:index:Cluster")]
    for n in ("head", "worker-0"):
        for name, t, i in base_steps(n):
            if name.endswith("env_vars"):
                evs.append(pre("replace", t, name, i, i, {"stdin": "update", "triggers[0]": "update-replace"}))
            elif "custom" in name:
                evs.append(pre("replace", t, name, i, i, {"triggers[1]": "update-replace"}))
            else:
                evs.append(pre("same", t, name, i, i))
    rep, md = render(evs, {"replace": 6, "same": 7})
    head = next(n for n in rep["nodes"] if n["node"] == "head")
    assert head["rows"][0] == {"phase": "env_vars", "op": "replace",
                               "why": ["program holds a secret: changed [secret]"]}
    assert head["rows"][1]["why"] == ["re-runs: an earlier phase on this node changed (env_vars)"]
    assert SENTINEL not in md
    check_golden("secret-changed", md)


def test_parameters_diff_and_a_leaked_secret_is_scrubbed():
    """Named parameters: old -> new (lists as +/- elements); a secret the engine failed to mask (here
    planted in a plain parameter) is still never shown."""
    old_p = program("custom-setup", "echo setup\n", {"STYX_PIP_PACKAGES": "numpy\nrich", "STYX_X": "a"})
    new_p = program("custom-setup", "echo setup\n", {"STYX_PIP_PACKAGES": "numpy\nrich\ntorch", "STYX_X": "b",
                                                     "STYX_TOKEN": SENTINEL})
    evs = [pre("replace", REMOTE_T, "prv-head-custom-setup", phase_inputs(old_p, "s", "c"),
               phase_inputs(new_p, "s2", "c"), {"stdin": "update", "triggers[0]": "update-replace"})]
    rep, md = render(evs, {"replace": 1}, nodes=("head",))
    why = rep["nodes"][0]["rows"][0]["why"]
    assert why[0].startswith("parameters changed: STYX_PIP_PACKAGES: +'torch'; STYX_TOKEN: (unset) → ")
    assert "STYX_X: 'a' → 'b'" in why[0]
    assert SENTINEL not in md and "[secret]" in md


def test_a_time_limit_change_is_named():
    p = program("custom-setup", "echo setup\n", {})
    old = {**phase_inputs(p, "s", "c"), "create": runner.command_text("custom-setup", "head", 3600, "create")}
    new = {**old, "create": runner.command_text("custom-setup", "head", 60, "create")}
    rep, _ = render([pre("update", REMOTE_T, "prv-head-custom-setup", old, new, {"create": "update"})],
                    {"update": 1}, nodes=("head",))
    assert rep["nodes"][0]["rows"][0] == {"phase": "custom-setup", "op": "update",
                                          "why": ["time limit changed: 3600s → 60s (setup.timeouts)"]}


def test_policy_findings_and_prices():
    evs = same_events(("head",))
    evs.append(ev.EngineEvent.from_json({"sequence": 0, "timestamp": 0, "policyEvent": {
        "message": "ingress from 0.0.0.0/0 opens 6379\nmore detail", "color": "never",
        "policyName": "styx-ray-ports-not-public", "policyPackName": "styx-security", "policyPackVersion": "0.1.0",
        "enforcementLevel": "mandatory", "resourceUrn": urn("aws:ec2/securityGroup:SecurityGroup", "prv-sg",
                                                            "styx:index:Cluster")}}))
    rep, md = render(evs, {"same": 6}, nodes=("head",), before=None,
                     after={"currency": "USD", "per_hour": 32.7726})
    assert rep["policy"] == [{"policy": "styx-ray-ports-not-public", "pack": "styx-security", "level": "mandatory",
                              "resource": "(cluster)/sg", "message": "ingress from 0.0.0.0/0 opens 6379"}]
    assert "| per hour | — | $32.7726 |" in md
    assert "1 finding(s)" in md


def test_policy_not_run_is_said():
    _, md = render(same_events(("head",)), {"same": 6}, nodes=("head",), packs=())
    assert "**Policy:** not checked" in md


@pytest.mark.parametrize("text", [
    "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
    f"token {SENTINEL} here",
])
def test_scrub(text):
    out = scrub(text, [SENTINEL])
    assert "[secret]" in out and SENTINEL not in out and "abc" not in out
