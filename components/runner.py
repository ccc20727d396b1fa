"""How one phase reaches a node: a short, fixed command text and a program on its stdin.

The official `command.remote.Command` puts the whole command text into its failure message, keeps no
bound on a running remote command and shows the text in the node's process list. So:

- the command text is the same small wrapper for every phase (`command_text`): the phase name, the
  node name, the time limit and the action (create/delete), nothing else: no parameter, no secret;
- everything else travels on stdin (`program`): the phase's parameters as quoted exports, a line
  that sources the styx library, then the script. The program holds the undo as well (the provider
  gives the delete command the same stdin); the wrapper's action picks one;
- the styx library (`setup_scripts/lib.sh`, its comment lines left out: `lib_text`) is written once
  per node by the gate, content-addressed (`/var/lib/styx/lib/<sha>.sh`); the gate's trigger holds its
  hash, so a new library re-runs the chain;
- the same program answers `styx drift`: run with the action `verify`, every phase script checks,
  read-only, that the node still is as the phase left it (`verify()` beside its `main()`);
- the wrapper bounds the phase with `timeout` (a message names the node, the phase and the limit)
  and watches its SSH session: when the connection goes (Ctrl-C of `styx launch`, a killed engine),
  the phase's process group is stopped.

A phase with an undo records its generation (the hash of its script and parameters) on the node when
it starts; its undo does nothing unless that generation is still the node's, so an old resource's
delete never removes what its replacement wrote.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from styx.components.phases import script_text

LIB_DIR = "/var/lib/styx/lib"
# The wrapper: $1 phase, $2 node, $3 limit (s), $4 action. fd 3 holds the program; the phase's own
# stdin is /dev/null. `timeout` puts the phase in its own process group and signals all of it.
WRAPPER = (
    'exec 3<&0 </dev/null; s=$PPID; '
    'STYX_ACTION=$4 timeout -k 15 "$3" bash /dev/fd/3 & c=$!; '
    '( while kill -0 "$s" 2>/dev/null; do sleep 2; done; kill -TERM "$c" ) >/dev/null 2>&1 & w=$!; '
    'wait "$c"; rc=$?; kill "$w" 2>/dev/null; '
    'if [ "$rc" = 124 ]; then echo "styx: phase $1 on node $2 stopped after its time limit of $3s '
    '(setup.timeouts.$1)" >&2; fi; exit "$rc"'
)


def lib_hash() -> str:
    return hashlib.sha256(script_text("lib.sh").encode()).hexdigest()[:16]


def lib_path() -> str:
    return f"{LIB_DIR}/{lib_hash()}.sh"


def strip_shell(text: str) -> str:
    """A bash script without its comment lines and blank lines (the shebang kept). Only whole-line comments go,
    so a script with a here-document or a string that opens at a line's end (lines that are data) is kept as
    it is."""
    if re.search(r"(?<!<)<<(?!<)|=['\"]$", text, re.M):
        return text
    lines = text.splitlines(keepends=True)
    head = lines[:1] if lines and lines[0].startswith("#!") else []
    return "".join(head + [ln for ln in lines[len(head):] if ln.strip() and not ln.lstrip().startswith("#")])


@cache
def lib_text() -> str:
    """The library as the gate (and the clouds' first boot) ships it: lib.sh stripped (strip_shell: 38 % of
    its bytes). The gate's program is stored twice per node in the stack's state (the command's input and
    its output), and the engine writes the whole state after every step, so its size is engine CPU: at
    32 nodes the gate was 60 % of the state. Bash defines the same functions and variables from both
    (`declare -f`/`-p` after sourcing: tests/components/test_runner.py). Its path stays keyed by
    `lib_hash()`, the hash of lib.sh as written."""
    text = strip_shell(script_text("lib.sh"))
    assert text != script_text("lib.sh"), "lib.sh now holds lines that are data: strip_shell keeps it whole"
    return text


def command_text(phase: str, node: str, timeout_s: int, action: str) -> str:
    """The command text the provider runs (and shows in errors): no parameters, no secrets."""
    return f"bash -c {shlex.quote(WRAPPER)} styx {shlex.quote(phase)} {shlex.quote(node)} {int(timeout_s)} {action}"


def export_line(env: Mapping[str, str]) -> str:
    """The `export K=V ...` line of a program's parameters (shell-quoted values; "" for none)."""
    if not env:
        return ""
    return "export " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(env.items())) + "\n"


def _source_lib(phase: str) -> str:
    p = lib_path()
    return (f"if [ ! -r {p} ]; then echo \"styx {phase}: error: the styx library {p} is missing on this node "
            "(changed outside styx): run styx launch again after `pulumi up --replace` of its wait_ssh gate\" >&2; "
            f"exit 1; fi\n. {p}\n")


@dataclass(frozen=True)
class Undo:
    body: str
    env: Mapping[str, str]


def program(phase: str, body: str, env: Mapping[str, str], *, undo: Undo | None = None,
            generation: str | None = None) -> str:
    """The phase program (stdin). With `undo`, `STYX_ACTION=delete` runs the undo instead, and only
    while the node's recorded generation of this phase is `generation`."""
    out = [f"# styx phase {phase} (program on stdin; generated)\n"]
    if undo is not None:
        out.append('if [ "${STYX_ACTION:-create}" = delete ]; then\n')
        out.append(export_line({"STYX_PHASE": f"{phase}-undo", **undo.env}))
        out.append(_source_lib(phase))
        if generation:
            out.append(f"if ! styx_generation_is {shlex.quote(phase)} {generation}; then "
                       f"styx_result skipped {shlex.quote('a newer ' + phase + ' owns this node: nothing removed')}; "
                       "exit 0; fi\n")
        out.append(undo.body.rstrip("\n") + "\n")
        if generation:
            out.append(f"styx_generation_clear {shlex.quote(phase)}\n")
        out.append("exit 0\nfi\n")
    out.append(export_line({"STYX_PHASE": phase, **env}))
    out.append(_source_lib(phase))
    if generation:  # `verify` (styx drift) only reads: it never claims the node
        out.append(f'[ "${{STYX_ACTION:-create}}" = verify ] || '
                   f'styx_generation_claim {shlex.quote(phase)} {generation}\n')
    out.append(body)
    return "".join(out)


def gate_program(body: str, env: Mapping[str, str]) -> str:
    """The gate's program: writes the styx library to its content-addressed path (once per node and
    library version), then runs the gate script. Needs root or passwordless sudo, like every phase."""
    lib = lib_text()
    marker = "STYX_LIB_" + lib_hash()
    assert marker not in lib
    p = lib_path()
    install = (
        f"t=$(mktemp)\ncat >\"$t\" <<'{marker}'\n{lib}{'' if lib.endswith(chr(10)) else chr(10)}{marker}\n"
        f"if [ \"$(id -u)\" = 0 ]; then s=; else s='sudo -n'; fi\n"
        f"if ! cmp -s \"$t\" {p} 2>/dev/null; then $s install -d -m 0755 {LIB_DIR} && "
        f"$s install -m 0644 \"$t\" {p}.new && $s mv -f {p}.new {p}; fi\nrm -f \"$t\"\n"
    )
    # `verify` (styx drift): reachable and the library in place; it writes nothing
    verify = (f'if [ "${{STYX_ACTION:-create}}" = verify ]; then\n{_source_lib("wait_ssh")}'
              f"styx_result ok {shlex.quote('reachable; styx library ' + lib_hash() + ' in place')}\nexit 0\nfi\n")
    return "# styx gate (program on stdin; generated)\n" + export_line({"STYX_PHASE": "wait_ssh", **env}) + verify + \
        install + _source_lib("wait_ssh") + body


# --------------------------------------------------------------------------- reading a program back

# `styx_generation_is|claim PHASE GENERATION`: the generation is the chain hash, not the script's
GENERATION = re.compile(r"(styx_generation_(?:is|claim) \S+) [0-9a-f]+")


def _export_words(text: str, start: int) -> tuple[dict[str, str], int]:
    """The `K=V` words of one `export` line written by `export_line` (shlex-quoted values, which may
    span lines inside quotes), from `start` to the first unquoted line break. -> (env, end)."""
    env: dict[str, str] = {}
    word: list[str] = []
    i, quote = start, None

    def flush() -> None:
        if word:
            k, _, v = "".join(word).partition("=")
            env[k] = v
            word.clear()

    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                word.append(c)
        elif quote == '"':
            if c == '"':
                quote = None
            elif c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$`':
                i += 1
                word.append(text[i])
            else:
                word.append(c)
        elif c in "'\"":
            quote = c
        elif c == " ":
            flush()
        elif c == "\n":
            break
        else:
            word.append(c)
        i += 1
    flush()
    return env, i + 1


def parse_program(text: str) -> tuple[dict[str, str], str]:
    """(parameters, script) of a phase or gate program made by `program`/`gate_program`: the inverse
    of its `export` line, and the rest with what does not come from the script or the parameters
    (the library's path and lines, the generation hashes) left out. For previews: what changed, and where."""
    main, env, end = -1, {}, 0
    pos = 0
    while True:  # the create part's export line: the last one that is not the undo's
        at = text.find("\nexport ", pos)
        if at < 0:
            break
        words, stop = _export_words(text, at + len("\nexport "))
        if "STYX_PHASE" in words and not words["STYX_PHASE"].endswith("-undo"):
            main, env, end = at, words, stop
        pos = at + 1
    if main < 0:
        return {}, text
    out = []
    for line in (text[:main] + "\n" + text[end:]).splitlines():
        s = line.strip()
        if s.startswith((f". {LIB_DIR}/", f"if [ ! -r {LIB_DIR}/", "# styx ")) or \
                (s.startswith("export ") and "STYX_PHASE=" in s):
            continue
        out.append(GENERATION.sub(r"\1 <generation>", line))
    return env, "\n".join(out).strip("\n") + "\n"
