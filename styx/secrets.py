"""Secrets of a cluster: `setup.secret_env.*` and `ssh.private_key` inside `styx:cluster`.

The source of truth is the user's stack file (e.g. stacks/Pulumi.local.yaml), where each secret is a
nested `secure:` value encrypted by Pulumi (passphrase provider, the file's `encryptionsalt`):

    pulumi config set --secret --path 'styx:cluster.setup.secret_env.NAME' < value-file   # in the project
    styx secret set NAME --stack S < value-file                                           # the same

styx reads the plaintext back only through Pulumi (`pulumi config --show-secrets --json` on the stack
selected in a LocalWorkspace whose work_dir is the project dir), and writes it into its private
workspace again through Pulumi (`pulumi config set --secret`, value on stdin), so the workspace file
holds only ciphertext and no value is ever on a command line (the Automation API's set_config puts
the value in argv; `_config_set_stdin` does not).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from styx import engine as eng

CONFIG_KEY = "styx:cluster"
PLACEHOLDER = "<secret>"  # what validation sees for a `secure:` value


class SecretsError(RuntimeError):
    pass


# --------------------------------------------------------------------------- the shapes


def is_secure(v: Any) -> bool:
    """A Pulumi `secure:` value as it appears in a stack file: {secure: v1:...}."""
    return isinstance(v, dict) and set(v) == {"secure"} and isinstance(v["secure"], str)


def secret_items(cluster: Any) -> Iterator[tuple[str, Any]]:
    """(dotted path inside the cluster, value) of every secret: setup.secret_env.*, ssh.private_key."""
    if not isinstance(cluster, dict):
        return
    setup = cluster.get("setup")
    env = setup.get("secret_env") if isinstance(setup, dict) else None
    if isinstance(env, dict):
        for k, v in env.items():
            yield f"setup.secret_env.{k}", v
    ssh = cluster.get("ssh")
    if isinstance(ssh, dict) and ssh.get("private_key") is not None:
        yield "ssh.private_key", ssh["private_key"]


def has_secure(obj: Any) -> bool:
    if is_secure(obj):
        return True
    if isinstance(obj, dict):
        return any(has_secure(v) for v in obj.values())
    if isinstance(obj, list):
        return any(has_secure(v) for v in obj)
    return False


def with_placeholders(obj: Any) -> Any:
    """A copy where every `secure:` value is a present string (for validation without decrypting)."""
    if is_secure(obj):
        return PLACEHOLDER
    if isinstance(obj, dict):
        return {k: with_placeholders(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [with_placeholders(v) for v in obj]
    return obj


def _secure_paths(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if is_secure(obj):
        yield prefix
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _secure_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _secure_paths(v, (*prefix, i))


def merge_decrypted(raw: dict[str, Any], decrypted: dict[str, Any]) -> dict[str, Any]:
    """`raw` with each `secure:` value replaced by the plaintext at the same place in `decrypted`."""
    out = copy.deepcopy(raw)
    for path in _secure_paths(raw):
        src: Any = decrypted
        dst: Any = out
        try:
            for part in path:
                src = src[part]
        except (KeyError, IndexError, TypeError):
            raise SecretsError(f"{CONFIG_KEY}.{'.'.join(map(str, path))}: Pulumi did not return its value") from None
        for part in path[:-1]:
            dst = dst[part]
        dst[path[-1]] = src
    return out


def encrypt_hint(dotted: str, stack: str | None) -> str:
    s = f" --stack {stack}" if stack else ""
    if dotted.startswith("setup.secret_env."):
        return f"styx secret set {dotted.rsplit('.', 1)[-1]}{s} < value-file"
    return f"pulumi config set --secret --path '{CONFIG_KEY}.{dotted}'{' -s ' + stack if stack else ''} < value-file"


def plain_text_warnings(cluster: Any, file: str | Path, stack: str | None) -> list[str]:
    """One warning per secret written in plain text in a stack file (naming the command that fixes it)."""
    out = []
    for dotted, v in secret_items(cluster):
        if not is_secure(v) and v not in (None, ""):
            out.append(f"warning: {CONFIG_KEY}.{dotted} is plain text in {_shown(file)}; "
                       f"encrypt it: {encrypt_hint(dotted, stack)}")
    return out


def _shown(file: str | Path) -> str:
    p = Path(file)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------- the project's stack files


def project_dir_of(stack_file: Path) -> Path | None:
    """The project dir (with Pulumi.yaml) whose stack config dir holds `stack_file`, else None."""
    import yaml

    f = stack_file.expanduser().resolve()
    for d in [f.parent, *f.parent.parents][:3]:
        proj = d / "Pulumi.yaml"
        if proj.is_file():
            try:
                doc = yaml.safe_load(proj.read_text()) or {}
            except yaml.YAMLError:
                return None
            cfg_dir = (d / str(doc.get("stackConfigDir") or ".")).resolve()
            return d if cfg_dir == f.parent else None
    return None


def stack_file(project_dir: Path, stack: str) -> Path:
    import yaml

    doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    return project_dir / str(doc.get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml"


def stack_of_file(path: Path) -> str | None:
    n = path.name
    if n.startswith("Pulumi.") and n.endswith((".yaml", ".yml")):
        return n[len("Pulumi."):].rsplit(".", 1)[0]
    return None


def _env(backend_url: str, extra_env: dict[str, str] | None) -> dict[str, str]:
    pp = eng.ensure_passphrase()
    return {**eng.engine_env(pp.value), "PULUMI_BACKEND_URL": backend_url, **(extra_env or {})}


def project_stack(project_dir: Path, stack: str, *, backend_url: str | None = None,
                  extra_env: dict[str, str] | None = None):
    """The stack `stack` (created in the backend when missing) in a LocalWorkspace on the project dir.

    No project_settings: the project's own Pulumi.yaml (stackConfigDir: stacks) is used, not rewritten.
    """
    from pulumi import automation as auto

    eng.check_toolchain()
    backend_url = backend_url or eng.default_backend_url()
    if backend_url.startswith("file://"):
        Path(backend_url[len("file://"):].split("?", 1)[0]).mkdir(parents=True, exist_ok=True)
    ws = auto.LocalWorkspace(
        work_dir=str(project_dir),
        pulumi_home=str(eng.pulumi_home()),
        pulumi_command=auto.PulumiCommand(root=str(eng.toolchain_bin().parent), skip_version_check=True),
        env_vars=_env(backend_url, extra_env),
        secrets_provider="passphrase",
    )
    return auto.Stack.create_or_select(stack, ws)


def config_set_stdin(stack: Any, key: str, value: str, *, path: bool = False) -> None:
    """`pulumi config set --secret [--path] KEY` in the stack's workspace with the value on stdin."""
    ws = stack.workspace
    cmd = getattr(ws.pulumi_command, "command", None) or str(eng.toolchain_bin() / "pulumi")
    args = [cmd, "config", "set", "--secret", "--non-interactive",
            "--stack", stack.name, key]
    if path:
        args.insert(4, "--path")
    env = {**os.environ, **(ws.env_vars or {}), "PULUMI_HOME": str(ws.pulumi_home or eng.pulumi_home())}
    p = subprocess.run(args, input=value, cwd=ws.work_dir, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SecretsError(f"pulumi config set --secret {key} failed: {p.stderr.strip()[-800:]}")


def decrypted_cluster(stack: Any) -> dict[str, Any]:
    """`styx:cluster` of a stack with its secrets in plain text (Pulumi decrypts; nothing is written)."""
    allc = stack.get_all_config()  # pulumi config --show-secrets --json: the values come back on a pipe
    if CONFIG_KEY not in allc:
        raise SecretsError(f"stack {stack.name} has no {CONFIG_KEY} config")
    return json.loads(allc[CONFIG_KEY].value)


def resolve_file(cluster: dict[str, Any], file: Path, *, backend_url: str | None = None,
                 extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """`cluster` (read from stack file `file`) with its `secure:` values decrypted by Pulumi."""
    if not has_secure(cluster):
        return cluster
    project = project_dir_of(file)
    stack = stack_of_file(file)
    if project is None or stack is None:
        raise SecretsError(f"{file}: secure: values can be decrypted only in a stack file Pulumi.<stack>.yaml in "
                           "the project's stackConfigDir (next to Pulumi.yaml's stackConfigDir)")
    st = project_stack(project, stack, backend_url=backend_url, extra_env=extra_env)
    return merge_decrypted(cluster, decrypted_cluster(st))


def set_secret(project_dir: Path, stack: str, dotted: str, value: str, *, backend_url: str | None = None,
               extra_env: dict[str, str] | None = None) -> Path:
    """Store `styx:cluster.<dotted>` encrypted in the project's stack file; returns that file."""
    st = project_stack(project_dir, stack, backend_url=backend_url, extra_env=extra_env)
    config_set_stdin(st, f"{CONFIG_KEY}.{dotted}", value, path=True)
    return stack_file(project_dir, stack)


def remove_secret(project_dir: Path, stack: str, dotted: str, *, backend_url: str | None = None,
                  extra_env: dict[str, str] | None = None) -> None:
    st = project_stack(project_dir, stack, backend_url=backend_url, extra_env=extra_env)
    st.remove_config(f"{CONFIG_KEY}.{dotted}", path=True)


def list_secret_env(file: Path) -> list[tuple[str, bool]]:
    """(NAME, encrypted?) of setup.secret_env in a stack file, read without decrypting anything."""
    import yaml

    if not file.is_file():
        return []
    doc = yaml.safe_load(file.read_text()) or {}
    cluster = (doc.get("config") or {}).get(CONFIG_KEY) or {}
    return [(d.rsplit(".", 1)[-1], is_secure(v)) for d, v in secret_items(cluster)
            if d.startswith("setup.secret_env.")]
