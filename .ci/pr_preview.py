#!/usr/bin/env python3
"""What .github/workflows/preview.yml runs: pull-request previews and launches on merge.

    pr_preview.py affected --base REF [--head REF]              stacks a change affects (a JSON list)
    pr_preview.py preview --stacks JSON --out DIR [--policy-pack DIR]  `styx preview --markdown` of each
    pr_preview.py assemble DIR --out FILE [--sha SHA]           one comment: the marker + every section
    pr_preview.py comment --repo OWNER/NAME --pr N --body FILE  post it, or update the one posted before
    pr_preview.py marked --stacks JSON                          those marked `styx:launch_on_merge: true`
    pr_preview.py launch --stacks JSON                          `styx launch --yes` of each
    pr_preview.py plugins                                       install the cloud provider plugins

(JSON: a list of stack names, as `affected` and `marked` print it.)

Affected stacks: a change under components/, setup_scripts/ or styx/ (or to stacks/schema.json,
__main__.py, Pulumi.yaml, pyproject.toml) affects every stack; a change to stacks/Pulumi.X.yaml affects
X; a stack file with `config: styx:pr_preview: false` is left out (the local stack: its preview
needs root and the sandbox tools, which a hosted runner lacks). The comment is found again by its
hidden marker (`<!-- styx-preview -->`) through the GitHub API (`gh api`, which reads GH_TOKEN), so
later pushes update one comment instead of adding more.
A stack is launched on merge when its stack file says so (`config: styx:launch_on_merge: true`).
Standard library and PyYAML (installed with styx); tested with a fake `gh` and a fake `pulumi`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- styx-preview -->"
ALL_PREFIXES = ("components/", "setup_scripts/", "styx/")
ALL_FILES = ("stacks/schema.json", "__main__.py", "Pulumi.yaml", "pyproject.toml")
def _flag(value, *, default: bool) -> bool:
    """A stack file's yes/no: YAML's true/false, or the string `pulumi config set` writes ("false")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return default


MERGE_KEY = "styx:launch_on_merge"
PREVIEW_KEY = "styx:pr_preview"
# the provider SDKs styx pins (pyproject.toml); their plugins are installed at the same versions
PROVIDERS = ("aws", "gcp", "kubernetes", "tls")
MAX_COMMENT = 65000  # GitHub's limit on a comment body is 65536 characters


def all_stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (root / "stacks").glob("Pulumi.*.yaml"))


def affected(changed: list[str], root: Path = ROOT) -> list[str]:
    """The stacks (with a stack file in `root`, not opted out) that a change to the paths `changed` affects."""
    stacks = all_stacks(root)
    if not any(p.startswith(ALL_PREFIXES) or p in ALL_FILES for p in changed):
        hit = {p[len("stacks/Pulumi."):-len(".yaml")] for p in changed
               if p.startswith("stacks/Pulumi.") and p.endswith(".yaml")}
        stacks = [s for s in stacks if s in hit]
    return [s for s in stacks if _flag(_stack_config(s, root).get(PREVIEW_KEY), default=True)]


def _stack_config(stack: str, root: Path) -> dict:
    import yaml

    p = root / "stacks" / f"Pulumi.{stack}.yaml"
    if not p.is_file():
        return {}
    return (yaml.safe_load(p.read_text()) or {}).get("config") or {}


def changed_files(base: str, head: str, root: Path = ROOT) -> list[str]:
    r = subprocess.run(["git", "-C", str(root), "diff", "--name-only", f"{base}...{head}"],
                       capture_output=True, text=True, check=True)
    return [ln for ln in r.stdout.splitlines() if ln.strip()]


def marked(stacks: list[str], root: Path = ROOT) -> list[str]:
    """The stacks whose stack file has `config: styx:launch_on_merge: true`."""
    return [s for s in stacks if _flag(_stack_config(s, root).get(MERGE_KEY), default=False)]


def plugins() -> int:
    """`pulumi plugin install resource <p> <version>` for each provider SDK styx pins (the version
    installed in this Python), with styx's engine and PULUMI_HOME (the command provider is already
    there: toolchain/install-pulumi.sh)."""
    from importlib.metadata import PackageNotFoundError, version

    from styx.app import engine

    env = {**os.environ, "PULUMI_HOME": str(engine.pulumi_home()), "PULUMI_SKIP_UPDATE_CHECK": "true"}
    failed = 0
    for p in PROVIDERS:
        try:
            v = version(f"pulumi-{p}")
        except PackageNotFoundError:
            continue
        r = subprocess.run([str(engine.toolchain_bin() / "pulumi"), "plugin", "install", "resource", p, v],
                           env=env, check=False)
        failed += r.returncode != 0
    return failed


def _styx(*args: str) -> list[str]:
    return [sys.executable, "-m", "styx.app.cli", *args]


def preview(stacks: list[str], out: Path, policy_packs: list[str], root: Path = ROOT) -> int:
    """`styx preview --markdown` per stack into out/<stack>.md; a stack whose preview fails gets a
    section saying so (its last error line). Returns how many failed."""
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for s in stacks:
        md = out / f"{s}.md"
        argv = _styx("preview", str(root / "stacks" / f"Pulumi.{s}.yaml"), "--stack", s, "--markdown", str(md))
        for p in policy_packs:
            argv += ["--policy-pack", p]
        r = subprocess.run(argv, cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            failed += 1
            if not md.is_file() or not md.read_text().strip():
                last = next((ln for ln in reversed(r.stderr.splitlines()) if ln.strip()), f"exit {r.returncode}")
                md.write_text(f"### Stack `{s}`: preview failed\n\n> {last.strip()[:500]}\n")
    return failed


def assemble(sections: Path, sha: str | None = None) -> str:
    """One comment body: the marker, a title, then each stack's section (sorted by stack)."""
    parts = [MARKER, "## styx preview" + (f" of {sha[:12]}" if sha else ""), ""]
    files = sorted(sections.glob("*.md"))
    if not files:
        parts.append("No stack is affected by this change.")
    for f in files:
        parts += [f.read_text().rstrip(), ""]
    body = "\n".join(parts).rstrip() + "\n"
    if len(body) > MAX_COMMENT:
        body = body[:MAX_COMMENT - 80] + "\n\n… (cut: the preview is longer than a comment may be)\n"
    return body


def _gh(*args: str, body: dict | None = None) -> str:
    r = subprocess.run(["gh", "api", *args, *(["--input", "-"] if body is not None else [])],
                       input=json.dumps(body) if body is not None else None,
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"gh api {' '.join(args)} failed: {r.stderr.strip()[-500:]}")
    return r.stdout


def comment(repo: str, pr: int, body: str) -> str:
    """Create the PR's preview comment, or update the one with the marker. Returns 'created' or 'updated'."""
    pages = _gh(f"repos/{repo}/issues/{pr}/comments?per_page=100", "--paginate", "--jq", ".[] | [.id, .body]")
    for line in pages.splitlines():
        cid, text = json.loads(line)
        if MARKER in (text or ""):
            _gh("--method", "PATCH", f"repos/{repo}/issues/comments/{cid}", body={"body": body})
            return "updated"
    _gh("--method", "POST", f"repos/{repo}/issues/{pr}/comments", body={"body": body})
    return "created"


def launch(stacks: list[str], root: Path = ROOT) -> int:
    failed = 0
    for s in stacks:
        r = subprocess.run(_styx("launch", str(root / "stacks" / f"Pulumi.{s}.yaml"), "--stack", s, "--yes"),
                           cwd=root, stdin=subprocess.DEVNULL, check=False)
        failed += r.returncode != 0
    return failed


def _names(text: str) -> list[str]:
    """A JSON list of stack names (what `affected` prints); each must be a stack file's name."""
    try:
        names = json.loads(text or "[]")
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"--stacks: not a JSON list: {text!r}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise argparse.ArgumentTypeError(f"--stacks: expected a JSON list of stack names, got {text!r}")
    bad = [n for n in names if n not in all_stacks()]
    if bad:
        raise argparse.ArgumentTypeError(f"--stacks: no stacks/Pulumi.<name>.yaml for {bad}; "
                                         f"allowed: {all_stacks()}")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pr_preview.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("affected")
    a.add_argument("--base", required=True)
    a.add_argument("--head", default="HEAD")
    p = sub.add_parser("preview")
    p.add_argument("--stacks", required=True, type=_names)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--policy-pack", action="append", default=[])
    s = sub.add_parser("assemble")
    s.add_argument("sections", type=Path)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--sha")
    c = sub.add_parser("comment")
    c.add_argument("--repo", required=True)
    c.add_argument("--pr", required=True, type=int)
    c.add_argument("--body", required=True, type=Path)
    m = sub.add_parser("marked")
    m.add_argument("--stacks", required=True, type=_names)
    la = sub.add_parser("launch")
    la.add_argument("--stacks", required=True, type=_names)
    sub.add_parser("plugins")
    ns = ap.parse_args(argv)
    if ns.cmd == "affected":
        print(json.dumps(affected(changed_files(ns.base, ns.head))))
    elif ns.cmd == "preview":
        return 1 if preview(ns.stacks, ns.out, ns.policy_pack) else 0
    elif ns.cmd == "assemble":
        ns.out.write_text(assemble(ns.sections, ns.sha or os.environ.get("GITHUB_SHA")))
    elif ns.cmd == "comment":
        print(comment(ns.repo, ns.pr, ns.body.read_text()))
    elif ns.cmd == "marked":
        print(json.dumps(marked(ns.stacks)))
    elif ns.cmd == "launch":
        return 1 if launch(ns.stacks) else 0
    elif ns.cmd == "plugins":
        return 1 if plugins() else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
