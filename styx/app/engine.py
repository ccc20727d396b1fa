"""The Pulumi engine through the Automation API: toolchain discovery, workspaces, stacks.

styx runs its program inline (in this process), so no language host is involved; the CLI and the
end-to-end tests share this module. `pulumi up -s <stack>` in the repo works too (Pulumi.yaml).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PULUMI_VERSION = "3.259.0"
COMMAND_VERSION = "1.2.1"
PROJECT = "styx"
# Resource operations the engine runs at once. Its default (4 x GOMAXPROCS: 8 on 2 cores) serialises
# clusters of more than a few nodes; phases wait on SSH and installs, not on this machine's CPU.
# bench/parallel_bench.py: 16 nodes x 3 phases of 5 s, efficiency 0.46 at the default, 0.79 here.
PARALLEL = 256
REPO = Path(__file__).resolve().parents[2]


def styx_home() -> Path:
    return Path(os.environ.get("STYX_HOME", Path.home() / ".styx")).expanduser()


def toolchain_bin() -> Path:
    """Where toolchain/install-pulumi.sh put pulumi + plugins (override: STYX_PULUMI_BIN_DIR)."""
    env = os.environ.get("STYX_PULUMI_BIN_DIR")
    if env:
        return Path(env)
    return styx_home() / "toolchain" / f"pulumi-v{PULUMI_VERSION}-cmd-v{COMMAND_VERSION}" / "bin"


def pulumi_home() -> Path:
    return Path(os.environ.get("PULUMI_HOME", styx_home() / "pulumi"))


# Pulumi 3.259's automatic log: every pulumi process writes each of its records up to debug level (the
# engine's verbose lines with their property values) JSON-encoded, gzip-compressed and, once the stack's
# secrets manager is loaded, encrypted into $PULUMI_HOME/logs/ (pkg/logging/encrypted.go StartLogging,
# called for every command in cmd/pulumi/pulumi.go). It is on for everyone and nothing turns it off;
# PULUMI_LOG_ROTATION_MAX_AGE_DAYS / PULUMI_LOG_ROTATION_MAX_TOTAL_MB (default 7 days / 500 MB,
# pkg/logging/rotation.go) bound what is kept. A no-op `up` of 16 nodes writes 6.5 MB of it, ~0.8 s of
# the CLI's CPU (bench/README.md §12). When the folder cannot be made the CLI goes on without the log
# ("automatic logging unavailable", an info line nobody sees), so with STYX_PULUMI_LOG=off (the default)
# the processes styx starts get a PULUMI_HOME of their own whose `logs` is a file (see nolog_home).
PULUMI_LOG_MODES = ("off", "on")
NOLOG_NOTE = ("styx: Pulumi's automatic log is off for the pulumi processes styx starts (STYX_PULUMI_LOG=off); "
              "STYX_PULUMI_LOG=on writes it to {home}/logs again.\n")


def pulumi_log_mode() -> str:
    """STYX_PULUMI_LOG: `off` (default) or `on` (Pulumi's automatic log, as the CLI alone writes it)."""
    raw = os.environ.get("STYX_PULUMI_LOG", "off")
    mode = raw.strip().lower() or "off"
    if mode not in PULUMI_LOG_MODES:
        raise ValueError(f"STYX_PULUMI_LOG={raw!r}: allowed values are {', '.join(PULUMI_LOG_MODES)}")
    return mode


def process_pulumi_home() -> Path:
    """The PULUMI_HOME of the pulumi processes styx starts: pulumi_home() itself with STYX_PULUMI_LOG=on,
    else its log-less view (nolog_home)."""
    home = pulumi_home()
    return home if pulumi_log_mode() == "on" else nolog_home(home)


def nolog_home(home: Path) -> Path:
    """A PULUMI_HOME that is `home` without the automatic log: $STYX_HOME/pulumi-nolog/<hash of home>/
    holds a symlink to every entry of `home` (plugins, workspaces, credentials, policies, ...) except
    `logs`, which is a file there (so the CLI cannot make its log folder). Plugins installed, stacks
    selected and logins made through it land in `home`; nothing is copied. Made again on every call
    (a listing and a few lstat calls): an entry added to `home` later gets its link."""
    import hashlib

    view = styx_home() / "pulumi-nolog" / hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    view.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    for sub in ("plugins", "workspaces"):  # what the CLI writes into: a link from the first run on
        (home / sub).mkdir(exist_ok=True)
    for entry in home.iterdir():
        link = view / entry.name
        if entry.name != "logs" and not os.path.lexists(link):  # what the CLI made here itself stays
            with _suppress_exists():
                link.symlink_to(entry)
    logs = view / "logs"
    if logs.is_dir() and not logs.is_symlink():
        import shutil

        shutil.rmtree(logs, ignore_errors=True)  # a log folder made here (by a run before the file)
    if not logs.is_file():
        with _suppress_exists():
            fd = os.open(logs, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(NOLOG_NOTE.format(home=home))
    return view


def _suppress_exists():
    import contextlib

    return contextlib.suppress(FileExistsError)


def passphrase_file() -> Path:
    return styx_home() / "passphrase"


@dataclass
class Passphrase:
    value: str
    source: str  # "env" | path of the generated file
    created: bool


def ensure_passphrase() -> Passphrase:
    """PULUMI_CONFIG_PASSPHRASE(_FILE) from the environment, else a generated one stored 0600."""
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        return Passphrase(os.environ["PULUMI_CONFIG_PASSPHRASE"], "env", False)
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        p = Path(os.environ["PULUMI_CONFIG_PASSPHRASE_FILE"])
        return Passphrase(p.read_text().strip(), str(p), False)
    p = passphrase_file()
    if p.exists():
        return Passphrase(p.read_text().strip(), str(p), False)
    p.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return Passphrase(value, str(p), True)


def engine_env(passphrase: str | None = None) -> dict[str, str]:
    """Environment for the pulumi CLI: offline, no update check, no plugin downloads."""
    bin_dir = toolchain_bin()
    venv_bin = Path(sys.executable).parent
    env = {
        "PATH": os.pathsep.join([str(bin_dir), str(venv_bin), os.environ.get("PATH", "")]),
        "PULUMI_HOME": str(process_pulumi_home()),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",  # use the registered plugins, not binaries on PATH
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    if passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    return env


class ToolchainMissing(RuntimeError):
    pass


# Strings only Pulumi's own builds carry: the command provider's remote package, and the module path
# of the Python language host (its own module since sdk 3.80; the v3.79 host lived in sdk/v3).
COMMAND_MARK = b"github.com/pulumi/pulumi-command/provider/pkg/provider/remote"
LANGHOST_MARK = b"github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3"


@dataclass
class PluginInfo:
    """One engine plugin as toolchain/install-pulumi.sh left it, from its origin record."""

    name: str
    path: Path
    exists: bool
    origin: str  # "official release" | "official source build" | "on PATH" | "unknown" | "missing"
    version: str | None  # from the origin record
    record: str  # the origin record's line ("" when there is none)
    official: bool  # the binary carries the marker of Pulumi's own code

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "exists": self.exists, "origin": self.origin,
                "version": self.version, "record": self.record, "official": self.official}


def _contains(path: Path, needle: bytes) -> bool:
    import mmap

    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(needle) >= 0
    except (OSError, ValueError):
        return False


def _plugin_info(name: str, path: Path, records: list[Path], mark: bytes, scan: bool) -> PluginInfo:
    import re

    record = next((r.read_text().strip() for r in records if r.is_file() and r.read_text().strip()), "")
    exists = path.exists()
    if not exists:
        origin = "missing"
    elif not record:
        origin = "unknown"
    else:
        origin = record.split(":", 1)[0].strip()
    m = re.search(r"(?:^|\s)v(\d+\.\d+\.\d+)(?=[\s(),]|$)", record)  # the first " vX.Y.Z" word
    return PluginInfo(name, path, exists, origin, m.group(1) if m else None, record,
                      exists and scan and _contains(path, mark))


def command_plugin(scan: bool = True) -> PluginInfo:
    """The command provider the engine runs: the one registered in PULUMI_HOME (scan: look for the
    official code's marker in the binary, ~0.1 s)."""
    path = pulumi_home() / "plugins" / f"resource-command-v{COMMAND_VERSION}" / "pulumi-resource-command"
    return _plugin_info("pulumi-resource-command", path,
                        [pulumi_home() / ".styx-command-origin", toolchain_bin() / ".command-origin"], COMMAND_MARK,
                        scan)


def language_host(scan: bool = True) -> PluginInfo:
    """The Python language host next to the CLI (only `pulumi up` in the repo and policy packs use it)."""
    bin_dir = toolchain_bin()
    return _plugin_info("pulumi-language-python", bin_dir / "pulumi-language-python",
                        [bin_dir / ".langhost-origin"], LANGHOST_MARK, scan)


def check_toolchain() -> dict[str, Any]:
    """What is installed; raises ToolchainMissing with a fix hint when the CLI is absent.

    Keys: the three binaries (bool), "plugin registered" (bool), and "command origin" /
    "language host origin" (e.g. "official source build v1.2.1"; "missing" when absent).
    """
    bin_dir = toolchain_bin()
    found: dict[str, Any] = {
        n: (bin_dir / n).exists() for n in ("pulumi", "pulumi-language-python", "pulumi-resource-command")}
    plugin_dir = pulumi_home() / "plugins" / f"resource-command-v{COMMAND_VERSION}"
    found["plugin registered"] = plugin_dir.exists()
    for key, info in (("command origin", command_plugin(scan=False)),
                      ("language host origin", language_host(scan=False))):
        found[key] = info.origin + (f" v{info.version}" if info.version else "")
    if not found["pulumi"]:
        raise ToolchainMissing(f"pulumi CLI not found in {bin_dir}: run `bash toolchain/install-pulumi.sh`")
    return found


_COMMANDS: dict[str, Any] = {}


def pulumi_command() -> Any:
    """The Automation API's handle on the toolchain's CLI, one per toolchain and process: each new
    `PulumiCommand` runs `pulumi version` (a CLI process, 0.1-0.3 s) to learn the version."""
    from pulumi import automation as auto

    root = str(toolchain_bin().parent)
    cmd = _COMMANDS.get(root)
    if cmd is None:
        cmd = _COMMANDS[root] = auto.PulumiCommand(root=root, skip_version_check=True)
    return cmd


def default_backend_url() -> str:
    return os.environ.get("PULUMI_BACKEND_URL") or f"file://{styx_home() / 'state'}"


def open_stack(
    stack_name: str,
    cluster: dict[str, Any],
    *,
    base_dir: Path,
    work_dir: Path | None = None,
    backend_url: str | None = None,
    secret_paths: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
):
    """Create or select a stack whose inline program is styx's, with `styx:cluster` = cluster.

    `secret_paths` are dotted paths inside the cluster object (e.g. setup.secret_env.TOKEN) stored as
    secure (encrypted) config values; every value under setup.secret_env and ssh.private_key is.
    """
    import pulumi
    from pulumi import automation as auto

    from styx.components.program import build

    check_toolchain()
    backend_url = backend_url or default_backend_url()
    if backend_url.startswith("file://"):
        Path(backend_url[len("file://"):]).mkdir(parents=True, exist_ok=True)
    pp = ensure_passphrase()
    work_dir = work_dir or (styx_home() / "workspaces" / stack_name)
    work_dir.mkdir(parents=True, exist_ok=True)
    # STYX_BACKEND_URL: where this stack lives, for what the program starts that outlives the update and
    # calls styx again (the local backend's autostop reaper: `styx down` on a down request)
    env = {**engine_env(pp.value), "STYX_BACKEND_URL": backend_url, **(extra_env or {})}

    def program() -> None:
        build(pulumi.Config("styx"), base_dir)

    ws = auto.LocalWorkspace(
        work_dir=str(work_dir),
        pulumi_home=env["PULUMI_HOME"],
        pulumi_command=pulumi_command(),
        env_vars=env,
        project_settings=auto.ProjectSettings(
            name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=backend_url)
        ),
        secrets_provider="passphrase",
        program=program,
    )
    stack = auto.Stack.create_or_select(stack_name, ws)
    set_cluster_config(stack, cluster, secret_paths)
    return stack


def set_cluster_config(stack, cluster: dict[str, Any], secret_paths: list[str] | None = None) -> None:
    """Write `styx:cluster` as one structured value into the stack's settings file; secrets (every
    setup.secret_env value, setup.ray.container.registry.password, ssh.private_key, extra dotted
    paths) become nested `secure:` values
    encrypted by the stack's secrets provider, so no secret is stored in plain text.

    Each secret goes to `pulumi config set --secret --path` on stdin (styx.app.secrets.config_set_stdin),
    never on a command line (the Automation API's set_config/set_all_config put values in argv).
    """
    import yaml


    items = list(_secret_items(cluster, secret_paths or []))
    path = Path(stack.workspace.work_dir) / f"Pulumi.{stack.name.split('/')[-1]}.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data = data or {}
    config = data.setdefault("config", {}) or {}
    data["config"] = config
    obj = _strip_secrets(cluster)
    _strip_extra(obj, secret_paths or [])
    for dotted, _ in items:  # the structure the secrets go into
        cur = obj
        for part in dotted.split(".")[:-1]:
            if not isinstance(cur.get(part), dict):
                cur[part] = {}
            cur = cur[part]
    config["styx:cluster"] = obj
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for dotted, value in items:
        config_set_stdin(stack, f"styx:cluster.{dotted}", value, path=True)


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj)


def _strip_secrets(cluster: dict[str, Any]) -> dict[str, Any]:
    import copy

    c = copy.deepcopy(cluster)
    setup = c.get("setup") or {}
    if setup.get("secret_env"):
        setup["secret_env"] = {}
    reg = ((setup.get("ray") or {}).get("container") or {}).get("registry") or {}
    reg.pop("password", None)
    if (c.get("ssh") or {}).get("private_key"):
        del c["ssh"]["private_key"]
    return c


def _secret_text(v: Any) -> str:
    """The string the program sees (styx.model.config's env normalisation), so both ways give one plaintext."""
    if isinstance(v, dict):
        raise ValueError("a secure: value reached the workspace undecrypted (styx.app.secrets.resolve_file first)")
    return "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _secret_items(cluster: dict[str, Any], extra: list[str]):
    for k, v in ((cluster.get("setup") or {}).get("secret_env") or {}).items():
        yield f"setup.secret_env.{k}", _secret_text(v)
    reg = (((cluster.get("setup") or {}).get("ray") or {}).get("container") or {}).get("registry") or {}
    if reg.get("password"):
        yield "setup.ray.container.registry.password", _secret_text(reg["password"])
    key = (cluster.get("ssh") or {}).get("private_key")
    if key:
        yield "ssh.private_key", key
    for path in extra:
        cur: Any = cluster
        for part in path.split("."):
            cur = cur[part]
        yield path, str(cur)


def _strip_extra(obj: dict[str, Any], extra: list[str]) -> None:
    for path in extra:
        cur: Any = obj
        parts = path.split(".")
        for part in parts[:-1]:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, dict):
            cur.pop(parts[-1], None)


def config_set_stdin(stack: Any, key: str, value: str, *, path: bool = False) -> None:
    """`pulumi config set --secret [--path] KEY` in the stack's workspace with the value on stdin."""
    ws = stack.workspace
    cmd = getattr(ws.pulumi_command, "command", None) or str(toolchain_bin() / "pulumi")
    args = [cmd, "config", "set", "--secret", "--non-interactive",
            "--stack", stack.name, key]
    if path:
        args.insert(4, "--path")
    env = {**os.environ, **(ws.env_vars or {}), "PULUMI_HOME": str(ws.pulumi_home or process_pulumi_home())}
    p = subprocess.run(args, input=value, cwd=ws.work_dir, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        from styx.model.secret_refs import SecretsError

        raise SecretsError(f"pulumi config set --secret {key} failed: {p.stderr.strip()[-800:]}")
