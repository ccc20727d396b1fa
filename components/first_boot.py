"""What a cloud node does at first boot (setup.first_boot: auto; aws and gcp): its user data fills the caches the
SSH phases read while the engine still waits for SSH, with the phases' own programs.

The jobs are rows of the phase table (components/phases.py), run with their own script and parameters and one
switch each: `apt` is system_packages with STYX_APT_DOWNLOAD_ONLY=1 (apt-get update, setup.packages downloaded,
nothing installed; on every node), `wheel_cache` the head's wheel_cache with STYX_WC_SERVE=0 (the same fill: key,
folder, sha256 checks; no server: the head's private address is not known yet). setup_scripts/first_boot.sh runs
them from cloud-init's runcmd; lib.sh's styx_first_boot_wait makes a phase that comes early wait for its job.

What never goes into user data: setup.python.index_url (it may hold credentials: with one set, the head's fill is
left to its phase) and the secret env; no job reads them. The scripts travel without their comment lines (shell) and
docstrings (Python, an AST round trip): the same code, small enough for AWS's 16 KB limit once gzipped
(`gzip_user_data`)."""

from __future__ import annotations

import ast
import base64
import gzip
import hashlib
from typing import Any

import pulumi
import yaml

from styx.components.backends.base import HostKey, NodeRequest
from styx.components.keys import cloud_init_user_data
from styx.components.phases import PHASES, NodeInfo, PhaseContext, script_text
from styx.components.runner import export_line, lib_text, strip_shell
from styx.model.config import CONFIG_KEY, ClusterConfig, NodeSpec

BOOT_DIR = "/var/lib/styx/first-boot"
AWS_USER_DATA_LIMIT = 16384  # bytes, before base64 (EC2's limit)
GCP_METADATA_VALUE_LIMIT = 262144  # bytes per metadata value
# what a job's parameters never hold: the server's address (not known at boot) and the index (may hold credentials)
_LEFT_OUT = {"wheel_cache": ("STYX_WC_BIND", "STYX_WC_PORT", "STYX_PIP_INDEX_URL")}


def strip_python(text: str) -> str:
    """A Python program without comments and docstrings: its AST written back (the same code)."""
    tree = ast.parse(text)
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                n.body = n.body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


# the Python programs a job's parameters carry travel as files beside it (no shell quoting): name -> file
_FILE_PARAMS = {"STYX_WC_PROGRAM": "wheel_cache.py", "STYX_UVW_PROGRAM": "uv_wheel.py"}


def _job_env(name: str, ctx: PhaseContext) -> dict[str, str]:
    row = next(p for p in PHASES if p.name == name)
    env = {k: v for k, v in row.env(ctx).items() if k not in _LEFT_OUT.get(name, ())}
    env.update({"STYX_WC_SERVE": "0"} if name == "wheel_cache" else {"STYX_APT_DOWNLOAD_ONLY": "1"})
    assert all(isinstance(v, str) for v in env.values()), f"first boot {name}: a parameter is not known before boot"
    return env


def boot_files(cfg: ClusterConfig, role: str, spec: NodeSpec, node: str) -> tuple[list[str], dict[str, str]]:
    """(the jobs, in order; the files under BOOT_DIR: each job's program JOB.sh, the styx library, first_boot.sh and
    the Python programs of the jobs' parameters) for one node; ([], {}) with setup.first_boot off."""
    if cfg.setup.first_boot != "auto":
        return [], {}
    ctx = PhaseContext(cluster=cfg, node=NodeInfo(name=node, role=role, spec=spec, private_ip="", head_ip=""),
                       wheel_cache_on_head=True)
    rows = {"apt": "system_packages"}
    wc = next(p for p in PHASES if p.name == "wheel_cache")
    if wc.applies(ctx) and not cfg.setup.python.index_url:
        rows["wheel_cache"] = "wheel_cache"
    files = {"lib.sh": lib_text(), "first_boot.sh": strip_shell(script_text("first_boot.sh"))}
    for job, row in rows.items():
        env = _job_env(row, ctx)
        reads = ""
        for k in sorted(set(env) & set(_FILE_PARAMS)):
            files[_FILE_PARAMS[k]] = strip_python(env.pop(k))
            reads += f'{k}=$(<"{BOOT_DIR}/{_FILE_PARAMS[k]}"); export {k}\n'
        script = next(p for p in PHASES if p.name == row).script
        files[f"{job}.sh"] = (f"# styx first-boot job {job}: the {row} phase's program (generated)\n"
                              + export_line({"STYX_PHASE": "first-boot", **env}) + reads
                              + f". {BOOT_DIR}/lib.sh\n" + strip_shell(script_text(script)))
    return list(rows), files


def boot_config(cfg: ClusterConfig, role: str, spec: NodeSpec, node: str) -> dict[str, Any] | None:
    """The cloud-config keys of the first-boot work (write_files, runcmd), or None with setup.first_boot off.
    write_files runs before sshd starts, so a JOB.pending mark is there before any phase can connect."""
    jobs, files = boot_files(cfg, role, spec, node)
    if not jobs:
        return None
    out = [{"path": f"{BOOT_DIR}/{n}", "permissions": "0755" if n == "first_boot.sh" else "0644", "content": t}
           for n, t in files.items()]
    out += [{"path": f"{BOOT_DIR}/{job}.pending", "permissions": "0644", "content": ""} for job in jobs]
    return {"write_files": out, "runcmd": [["bash", f"{BOOT_DIR}/first_boot.sh", *jobs]]}


def render_boot(boot: dict[str, Any]) -> str:
    """The first-boot keys as YAML, to follow the host key's cloud-config (block scalars for the scripts)."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, s: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)

    _Dumper.add_representer(str, _str)
    return yaml.dump(boot, Dumper=_Dumper, sort_keys=False, width=1 << 16)


def gzip_user_data(text: str) -> str:
    """User data gzipped (cloud-init reads it), base64 for EC2's user_data_base64; no timestamp, so the same text
    always gives the same bytes."""
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()


# a stand-in of the host key's part (an ed25519 key's size) for the size check before anything is created
_KEY_PART = "#cloud-config\n" + base64.b64encode(b"".join(hashlib.sha256(bytes([i])).digest()
                                                           for i in range(16))).decode()


def _size(text: str, gzipped: bool) -> int:
    probe = (_KEY_PART + text).encode()
    return len(gzip.compress(probe, 9, mtime=0)) if gzipped else len(probe)


def size_problems(cfg: ClusterConfig, *, gzipped: bool, limit: int) -> list[str]:
    """The config check (before anything is created): each role's user data fits the cloud's limit."""
    out = []
    for role in ("head", "worker"):
        boot = boot_config(cfg, role, cfg.head, role)
        size = _size(render_boot(boot), gzipped) if boot else 0
        if size > limit:
            out.append(f"{CONFIG_KEY}.setup.first_boot: the user data of a {role} would be about {size} bytes"
                       f"{' gzipped' if gzipped else ''}, over the cloud's limit of {limit} (allowed: fewer "
                       "setup.packages or setup.python.pip_packages, or setup.first_boot: off)")
    return out


def user_data(cfg: ClusterConfig, node: NodeRequest, hk: HostKey, *, gzipped: bool,
              limit: int) -> tuple[pulumi.Output[str], bool]:
    """A cloud node's user data (a secret) and whether it carries the first-boot work: the host key's cloud-config,
    then the first-boot keys. `gzipped`: the size that counts is the gzip's (EC2's user_data_base64); over `limit`
    (the config check, `size_problems`, refuses it first) an error."""
    boot = boot_config(cfg, node.role, node.spec, node.name)
    text = render_boot(boot) if boot else ""
    if text and _size(text, gzipped) > limit:
        raise ValueError("; ".join(size_problems(cfg, gzipped=gzipped, limit=limit)))
    return cloud_init_user_data(hk, text), bool(text)
