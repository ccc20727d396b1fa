"""The shapes of secrets inside `styx:cluster` (`setup.secret_env.*`, `ssh.private_key`): which values
are secrets, which are Pulumi `secure:` values, the placeholder validation sees for them, and the
warning for a secret written in plain text. Pure data: reading and writing secrets through Pulumi is
the application's (styx.app.secrets).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CONFIG_KEY = "styx:cluster"
PLACEHOLDER = "<secret>"  # what validation sees for a `secure:` value


class SecretsError(RuntimeError):
    pass


# --------------------------------------------------------------------------- the shapes


def is_secure(v: Any) -> bool:
    """A Pulumi `secure:` value as it appears in a stack file: {secure: v1:...}."""
    return isinstance(v, dict) and set(v) == {"secure"} and isinstance(v["secure"], str)


def secret_items(cluster: Any) -> Iterator[tuple[str, Any]]:
    """(dotted path inside the cluster, value) of every secret: setup.secret_env.*,
    setup.ray.container.registry.password, ssh.private_key."""
    if not isinstance(cluster, dict):
        return
    setup = cluster.get("setup")
    env = setup.get("secret_env") if isinstance(setup, dict) else None
    if isinstance(env, dict):
        for k, v in env.items():
            yield f"setup.secret_env.{k}", v
    ray = setup.get("ray") if isinstance(setup, dict) else None
    box = ray.get("container") if isinstance(ray, dict) else None
    reg = box.get("registry") if isinstance(box, dict) else None
    if isinstance(reg, dict) and reg.get("password") is not None:
        yield "setup.ray.container.registry.password", reg["password"]
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
