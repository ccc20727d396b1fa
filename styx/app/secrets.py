"""Secrets of a cluster: `setup.secret_env.*` and `ssh.private_key` inside `styx:cluster`.

The source of truth is the user's stack file (e.g. stacks/Pulumi.local.yaml), where each secret is a
nested `secure:` value encrypted by Pulumi (passphrase provider, the file's `encryptionsalt`):

    pulumi config set --secret --path 'styx:cluster.setup.secret_env.NAME' < value-file   # in the project
    styx secret set NAME --stack S < value-file                                           # the same

styx reads the plaintext back only through Pulumi (`pulumi config --show-secrets --json` on the stack
selected in a LocalWorkspace whose work_dir is the project dir), and writes it into its private
workspace again through Pulumi (`pulumi config set --secret`, value on stdin), so the workspace file
holds only ciphertext and no value is ever on a command line (the Automation API's set_config puts
the value in argv; `styx.app.engine.config_set_stdin` does not).
The shapes (which values are secrets) are the model's: styx.model.secret_refs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from styx.app import engine as eng
from styx.app.engine import config_set_stdin
from styx.model.secret_refs import (  # noqa: F401  (re-exported: the CLI and tests read them here)
    CONFIG_KEY,
    PLACEHOLDER,
    SecretsError,
    has_secure,
    is_secure,
    merge_decrypted,
    plain_text_warnings,
    secret_items,
    with_placeholders,
)

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
