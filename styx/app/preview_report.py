"""A preview as a report (plain data) and as markdown (a pull-request comment): per stack and node,
which phases are created, replaced or deleted and why, resource counts, policy findings, $/hour.

`explain` turns a PlanCollector (the engine's planned steps, with old and new inputs) into a report:
- a phase's "why" comes from its program (stdin, read back with `runner.parse_program`): its script
  changed, or named parameters changed (a short old -> new diff), or only its chain hash changed:
  it re-runs because an earlier phase on that node (or the head's, for a worker's Ray) changed;
- a node whose every resource is created (or deleted) is one row: a new (removed) node;
- other resources (machines, copies, cluster-wide ones) list the inputs that changed, values only
  for short plain scalars of their own keys (never a connection: it holds the SSH key).

Secrets: the engine masks secret values in its events (`[secret]`): a program that holds a secret
(secret_env, the Ray token) is masked as a whole, so its phase reads "program holds a secret: changed
[secret]". On top of that, `render_markdown` is given the plaintext secrets the caller knows
(`redact`), and replaces any of them, and anything that looks like a private key, with `[secret]`.
`render_markdown` is a pure function of the report: tests compare it to golden files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from styx.app.events import CLUSTER_ROW, PlanCollector, Step
from styx.components.phases import PHASES
from styx.components.runner import parse_program

MASK = "[secret]"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an input known only after an update
PHASE_TYPE = "command:remote:Command"
CHANGING = ("create", "update", "replace", "delete")
OPS_ORDER = ("create", "update", "replace", "delete", "same")
HIDDEN_INPUTS = ("connection", "environment", "stdin", "triggers", "create", "delete", "update")
VALUE_MAX = 40
PARAMS_MAX = 6
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)
# not the phase's own parameters: its name, and another node's chain hash (Phase.chain_params: a worker's
# Ray waits for the head's Ray generation), whose change reads as "the phase it follows changed"
SELF_PARAMS = ("STYX_PHASE", *sorted({k for p in PHASES for k in p.chain_params}))


def _masked(v: Any) -> bool:
    return v == MASK or (isinstance(v, dict) and any(k.startswith("4dabf18193072939515e22adb298388d") for k in v))


def _short(v: str | None) -> str:
    if v is None:
        return "(unset)"
    if v == UNKNOWN:
        return "(known after launch)"
    v = v.replace("\n", " ")
    return repr(v if len(v) <= VALUE_MAX else v[:VALUE_MAX - 1] + "…")


def _param_change(key: str, old: str | None, new: str | None) -> str:
    if _masked(old) or _masked(new):
        return f"{key}: {MASK}"
    if old is not None and new is not None and ("\n" in old or "\n" in new):  # a list: one element a line
        o, n = old.splitlines(), new.splitlines()
        parts = [f"+{_short(x)}" for x in n if x not in o] + [f"-{_short(x)}" for x in o if x not in n]
        return f"{key}: {' '.join(parts) or 'reordered'}"
    return f"{key}: {_short(old)} → {_short(new)}"


def _triggers_changed(st: Step) -> set[int]:
    """Which of [own hash, chain hash, hash of another node's phase] changed."""
    out: set[int] = set()
    for k in st.diffs:
        m = re.fullmatch(r"triggers\[(\d+)\]", k)
        if m:
            out.add(int(m.group(1)))
    if not out and any(k == "triggers" for k in st.diffs):
        old = (st.old or {}).get("triggers") or []
        new = (st.new or {}).get("triggers") or []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else None
            b = new[i] if i < len(new) else None
            if a != b or _masked(a) or _masked(b):
                out.add(i)
    return out


def _phase_reasons(st: Step) -> tuple[list[str], bool]:
    """(reasons, own): why a phase's Command changes; `own` is False when only its position in the
    chain (an earlier phase) is the cause."""
    old_in, new_in = st.old or {}, st.new or {}
    old_p, new_p = old_in.get("stdin"), new_in.get("stdin")
    reasons: list[str] = []
    program_changed = "stdin" in st.diffs or any(k.startswith("stdin") for k in st.diffs) or old_p != new_p
    if _masked(old_p) or _masked(new_p):
        if program_changed or 0 in _triggers_changed(st):
            reasons.append(f"program holds a secret: changed {MASK}")
    elif isinstance(old_p, str) and isinstance(new_p, str) and UNKNOWN not in (old_p, new_p):
        if old_p != new_p:
            old_env, old_body = parse_program(old_p)
            new_env, new_body = parse_program(new_p)
            if old_body != new_body:
                reasons.append("script changed")
            keys = sorted(k for k in {*old_env, *new_env} if k not in SELF_PARAMS and old_env.get(k) != new_env.get(k))
            if keys:
                shown = [_param_change(k, old_env.get(k), new_env.get(k)) for k in keys[:PARAMS_MAX]]
                more = f" (+{len(keys) - PARAMS_MAX} more)" if len(keys) > PARAMS_MAX else ""
                reasons.append("parameters changed: " + "; ".join(shown) + more)
    elif program_changed:
        reasons.append("program changed (known after launch)")
    own = bool(reasons)
    trig = _triggers_changed(st)
    if not own and 0 in trig:
        reasons.append("its hash changed")
        own = True
    for k in st.diffs:  # anything else the provider compares: the command text (its time limit), the connection
        top = re.split(r"[.\[]", k, maxsplit=1)[0]
        if top in ("stdin", "triggers"):
            continue
        if top in ("create", "delete", "update"):
            line = _limit_change(old_in.get(top), new_in.get(top))
        elif top == "connection":
            line = "connection changed (address, user or key)"
        else:
            line = f"{top} changed"
        if line not in reasons:
            reasons.append(line)
            own = own or top != "connection"
    return reasons, own


def _limit_change(old: Any, new: Any) -> str:
    """The command text is runner.command_text: `... styx PHASE NODE LIMIT ACTION`; only LIMIT varies."""
    def limit(text: Any) -> str | None:
        parts = text.rsplit(" ", 2) if isinstance(text, str) and not _masked(text) else []
        return parts[1] if len(parts) == 3 and parts[1].isdigit() else None

    a, b = limit(old), limit(new)
    if a and b and a != b:
        return f"time limit changed: {a}s → {b}s (setup.timeouts)"
    return "command text changed"


def _other_reasons(st: Step) -> list[str]:
    out: list[str] = []
    old_in, new_in = st.old or {}, st.new or {}
    for k in st.diffs:
        top = re.split(r"[.\[]", k, maxsplit=1)[0]
        o, n = old_in.get(top), new_in.get(top)
        if top in HIDDEN_INPUTS or not all(isinstance(x, (str, int, float, bool)) or x is None for x in (o, n)):
            line = f"{top} changed"
        else:
            line = _param_change(top, None if o is None else str(o), None if n is None else str(n))
        if line not in out:
            out.append(line)
    return out


def explain(stack: str, collector: PlanCollector, *, changes: dict[str, int] | None = None,
            price_before: dict[str, Any] | None = None, price_after: dict[str, Any] | None = None,
            policy_packs: Iterable[str] = (), error: str | None = None) -> dict[str, Any]:
    """The report of one stack's preview (plain data; `render_markdown` draws it)."""
    by_node: dict[str, list[Step]] = {}
    for st in sorted(collector.steps.values(), key=lambda s: s.order):
        by_node.setdefault(st.node, []).append(st)
    nodes = []
    for node, steps in by_node.items():
        ops = {s.op for s in steps}
        changed = [s for s in steps if s.op in CHANGING]
        unchanged = len(steps) - len(changed)
        if node != CLUSTER_ROW and ops in ({"create"}, {"delete"}):
            op = ops.pop()
            nodes.append({"node": node, "unchanged": 0, "rows": [{
                "phase": "(node)", "op": op,
                "why": [f"{'new' if op == 'create' else 'removed'} node: {len(steps)} resources ("
                        + ", ".join(s.phase for s in steps) + ")"]}]})
            continue
        rows = []
        first_own: str | None = None
        for st in changed:
            if st.op in ("create", "delete"):
                why = ["new in the config" if st.op == "create" else "no longer in the config"]
                own = True
            elif st.type == PHASE_TYPE:
                why, own = _phase_reasons(st)
                if not own:
                    trig = _triggers_changed(st)
                    if trig & {2, 3, 4}:
                        why.insert(0, "re-runs: the phase it follows on another node changed")
                    if 1 in trig or not trig:
                        cause = f" ({first_own})" if first_own else ""
                        why.insert(0, f"re-runs: an earlier phase on this node changed{cause}")
            else:
                why, own = _other_reasons(st) or ["replaced by the provider"], True
            if own and first_own is None:
                first_own = st.phase if st.phase != "provision" else "the machine"
            rows.append({"phase": st.phase, "op": st.op, "why": why})
        nodes.append({"node": node, "unchanged": unchanged, "rows": rows})
    nodes.sort(key=lambda r: (r["node"] == CLUSTER_ROW, r["node"] != "head", r["node"]))
    policy = []
    for f in collector.policy:
        hit = collector.names.resolve(f.urn) if f.urn else None
        where = f"{hit[0]}/{hit[1]}" if hit else (f.urn.rsplit("::", 1)[-1] if f.urn else "(stack)")
        policy.append({"policy": f.policy, "pack": f.pack, "level": f.level, "resource": where,
                       "message": f.message.splitlines()[0] if f.message else ""})
    return {
        "stack": stack,
        "changes": {k: v for k, v in (changes or collector.summary or {}).items() if v},
        "nodes": nodes,
        "price": {"before": _per_hour(price_before), "after": _per_hour(price_after),
                  "currency": (price_after or price_before or {}).get("currency", "USD")},
        "policy_packs": list(policy_packs),
        "policy": policy,
        "error": error,
    }


def _per_hour(rec: dict[str, Any] | None) -> float | None:
    if not isinstance(rec, dict) or rec.get("per_hour") is None:
        return None
    return float(rec["per_hour"])


# --------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _money(v: float | None, currency: str) -> str:
    if v is None:
        return "—"
    return f"{'$' if currency == 'USD' else currency + ' '}{v:.4f}"


def scrub(text: str, redact: Iterable[str] = ()) -> str:
    """`text` with every value of `redact` (and anything that looks like a private key) as `[secret]`."""
    for v in sorted({str(v) for v in redact if v and len(str(v)) >= 4}, key=len, reverse=True):
        text = text.replace(v, MASK)
    return PRIVATE_KEY.sub(MASK, text)


def headline(report: dict[str, Any]) -> str:
    ch = report["changes"]
    parts = [f"{ch[k]} to {k}" for k in CHANGING if ch.get(k)]
    return ", ".join(parts) if parts else "no changes"


def render_markdown(report: dict[str, Any], *, redact: Iterable[str] = ()) -> str:
    """One stack's section of a pull-request comment (GitHub-flavoured markdown)."""
    out = [f"### Stack `{report['stack']}`: {headline(report)}", ""]
    if report.get("error"):
        out += [f"> **preview failed:** {_cell(report['error'])}", ""]
    ch = report["changes"]
    counts = " · ".join(f"{k} {ch[k]}" for k in (*OPS_ORDER, *sorted(set(ch) - set(OPS_ORDER))) if ch.get(k))
    out.append(f"**Resources:** {counts or 'none'}")
    out.append("")
    rows = [(n["node"], r) for n in report["nodes"] for r in n["rows"]]
    if rows:
        out += ["| node | phase | action | why |", "| - | - | - | - |"]
        for node, r in rows:
            out.append(f"| {_cell(node)} | `{_cell(r['phase'])}` | {r['op']} | {_cell('; '.join(r['why']))} |")
    else:
        out.append("No phase on any node changes.")
    out.append("")
    pr = report["price"]
    cur = pr.get("currency", "USD")
    out += ["| cost | before | after |", "| - | - | - |",
            f"| per hour | {_money(pr.get('before'), cur)} | {_money(pr.get('after'), cur)} |", ""]
    packs = ", ".join(f"`{p}`" for p in report.get("policy_packs") or [])
    if not packs:
        out.append("**Policy:** not checked (no policy pack given).")
    elif not report.get("policy"):
        out.append(f"**Policy** ({packs}): no findings.")
    else:
        out += [f"**Policy** ({packs}): {len(report['policy'])} finding(s)", "",
                "| level | policy | resource | message |", "| - | - | - | - |"]
        for f in report["policy"]:
            out.append(f"| {_cell(f['level'])} | `{_cell(f['policy'])}` | `{_cell(f['resource'])}` | "
                       f"{_cell(f['message'])} |")
    out.append("")
    return scrub("\n".join(out), redact)
