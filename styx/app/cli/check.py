"""`styx check`: is this machine ready? Engine, plugins, cloud credentials, local backend prerequisites.

Nothing here calls a cloud: credentials are only looked for (environment, profile files).
Exit 0 when everything the local stack needs is present, 1 otherwise.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click

from styx.app.cli.common import emit_json, handle_errors, json_option


def _item(name: str, ok: bool, detail: str, fix: str = "", *, required: bool = True, group: str = "engine",
          ) -> dict[str, Any]:
    return {"name": name, "group": group, "ok": bool(ok), "required": required, "detail": detail,
            "fix": "" if ok else fix}


def _run(argv: list[str], timeout: int = 10) -> tuple[int, str]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return r.returncode, (r.stdout + r.stderr).strip()


def _origin_text(info, want: str) -> str:
    """e.g. "official source build v1.2.1 (commit ..., archive sha256 ...)"; says so when it is not Pulumi's code."""
    version = f"v{info.version}" if info.version else "version unknown"
    text = f"{info.origin} {version}"
    if "(" in info.record:
        text += " (" + info.record.split("(", 1)[1]
    if info.version and info.version != want:
        text += f" (want v{want})"
    if not info.official:
        text += " - NOT an official Pulumi build (reinstall)"
    return text


def engine_checks() -> list[dict[str, Any]]:
    from styx.app import engine as eng

    out = []
    bin_dir = eng.toolchain_bin()
    install = "bash toolchain/install-pulumi.sh"
    pulumi = bin_dir / "pulumi"
    if pulumi.exists():
        rc, text = _run([str(pulumi), "version"])
        want = f"v{eng.PULUMI_VERSION}"
        out.append(_item("pulumi CLI", rc == 0 and text.strip() == want,
                         f"{pulumi}: {text.strip() or 'no output'} (want {want})", install))
    else:
        out.append(_item("pulumi CLI", False, f"not found in {bin_dir}", install))
    cmd = eng.command_plugin()
    if not cmd.exists:
        detail = f"resource-command v{eng.COMMAND_VERSION} not registered in {cmd.path.parent.parent}"
    else:
        detail = f"{_origin_text(cmd, eng.COMMAND_VERSION)}, registered in {cmd.path.parent}"
    cmd_ok = cmd.exists and cmd.official and cmd.version in (None, eng.COMMAND_VERSION)
    out.append({**_item("command provider plugin", cmd_ok, detail, install),
                "origin": cmd.origin, "version": cmd.version, "official": cmd.official})
    for pkg, want in (("pulumi", eng.PULUMI_VERSION), ("pulumi-command", eng.COMMAND_VERSION)):
        try:
            have = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            have = None
        out.append(_item(f"python package {pkg}", have == want, f"{have or 'missing'} (want {want})",
                         f"pip install {pkg}=={want}"))
    lang = eng.language_host()
    detail = (_origin_text(lang, eng.PULUMI_VERSION) + f": {lang.path}") if lang.exists else f"not found: {lang.path}"
    lang_ok = lang.exists and lang.official and lang.version in (None, eng.PULUMI_VERSION)
    out.append({**_item("python language host", lang_ok,
                        f"{detail} (only for `pulumi up` in the repo and policy packs; styx runs its program inline)",
                        install, required=False),
                "origin": lang.origin, "version": lang.version, "official": lang.official})
    pp = eng.passphrase_file()
    src = "PULUMI_CONFIG_PASSPHRASE" if "PULUMI_CONFIG_PASSPHRASE" in os.environ else (
        "PULUMI_CONFIG_PASSPHRASE_FILE" if os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE") else
        (str(pp) if pp.exists() else f"{pp} (generated on first use)"))
    out.append(_item("secrets passphrase", True, src, required=False))
    backend = eng.default_backend_url()
    ok, detail = True, backend
    if backend.startswith("file://"):
        p = Path(backend[len("file://"):])
        parent = next((d for d in [p, *p.parents] if d.exists()), Path("/"))
        ok = os.access(parent, os.W_OK)
        detail = f"{backend} ({'writable' if ok else 'not writable'})"
    out.append(_item("state backend", ok, detail, "set PULUMI_BACKEND_URL or STYX_HOME to a writable place"))
    return out


def cloud_checks(env: dict[str, str] | None = None, home: Path | None = None) -> list[dict[str, Any]]:
    env = dict(os.environ if env is None else env)
    home = home or Path.home()
    out = []
    # AWS
    aws_files = [Path(env.get("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials")),
                 Path(env.get("AWS_CONFIG_FILE", home / ".aws" / "config"))]
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        out.append(_item("aws", True, "AWS_ACCESS_KEY_ID in the environment", group="clouds", required=False))
    elif env.get("AWS_PROFILE") or any(f.is_file() for f in aws_files):
        found = [str(f) for f in aws_files if f.is_file()]
        prof = env.get("AWS_PROFILE")
        out.append(_item("aws", True, (f"profile {prof}; " if prof else "") + ", ".join(found),
                         group="clouds", required=False))
    elif env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        out.append(_item("aws", True, "web identity / container credentials", group="clouds", required=False))
    else:
        out.append(_item("aws", False, "no credentials found (env, ~/.aws)",
                         "aws configure (or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE)",
                         group="clouds", required=False))
    # GCP
    gcloud_dir = Path(env.get("CLOUDSDK_CONFIG", home / ".config" / "gcloud"))
    adc = gcloud_dir / "application_default_credentials.json"
    gac = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if gac and Path(gac).is_file():
        out.append(_item("gcp", True, f"GOOGLE_APPLICATION_CREDENTIALS={gac}", group="clouds", required=False))
    elif adc.is_file():
        out.append(_item("gcp", True, f"application default credentials {adc}", group="clouds", required=False))
    else:
        out.append(_item("gcp", False, "no application default credentials",
                         "gcloud auth application-default login (or GOOGLE_APPLICATION_CREDENTIALS=key.json)",
                         group="clouds", required=False))
    # Kubernetes
    kc = env.get("KUBECONFIG")
    paths = [Path(p) for p in kc.split(os.pathsep) if p] if kc else [home / ".kube" / "config"]
    found = [str(p) for p in paths if p.is_file()]
    if env.get("KUBERNETES_SERVICE_HOST"):
        out.append(_item("kubernetes", True, "in-cluster service account", group="clouds", required=False))
    else:
        out.append(_item("kubernetes", bool(found), ", ".join(found) or "no kubeconfig",
                         "set KUBECONFIG or create ~/.kube/config", group="clouds", required=False))
    return out


def local_checks() -> list[dict[str, Any]]:
    from styx.app.engine import REPO

    deps = "bash sandbox/host-deps.sh"
    out = [_item("root", os.geteuid() == 0, f"uid {os.geteuid()}", "run as root (sudo) for the local backend",
                 group="local")]
    rc, text = _run(["unshare", "--help"]) if shutil.which("unshare") else (127, "")
    out.append(_item("unshare (namespaces)", rc == 0 and "--kill-child" in text,
                     "util-linux unshare with --kill-child" if rc == 0 else "unshare not found",
                     "apt-get install util-linux (recent)", group="local"))
    if shutil.which("ip"):
        rc, text = _run(["ip", "netns", "list"])
        out.append(_item("ip netns", rc == 0, "works" if rc == 0 else text.splitlines()[-1:] or "failed",
                         f"{deps} (iproute2); needs root", group="local"))
    else:
        out.append(_item("ip netns", False, "ip not found", f"{deps} (iproute2)", group="local"))
    for tool, pkg in (("debootstrap", "debootstrap"), ("iptables", "iptables"), ("nsenter", "util-linux"),
                      ("ssh", "openssh-client"), ("ssh-keygen", "openssh-client")):
        path = shutil.which(tool)
        out.append(_item(tool, bool(path), path or "not found", f"{deps} (apt-get install {pkg})", group="local"))
    try:
        overlay = "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        overlay = False
    out.append(_item("overlayfs", overlay, "in /proc/filesystems" if overlay else "not available",
                     "modprobe overlay", group="local"))
    ctl = REPO / "sandbox" / "sandboxctl.sh"
    out.append(_item("sandbox scripts", ctl.is_file(), str(ctl), "restore sandbox/ from the repo", group="local"))
    return out


@click.command("check")
@json_option
@handle_errors
def check(as_json):
    """Check the engine, plugins, cloud credentials and local backend prerequisites (with fix hints)."""
    items = engine_checks() + local_checks() + cloud_checks()
    local_ready = all(i["ok"] for i in items if i["required"])
    clouds = {i["name"]: {"credentials": i["ok"], "detail": i["detail"]} for i in items if i["group"] == "clouds"}
    if as_json:
        emit_json({"ok": local_ready, "local_ready": local_ready, "checks": items, "clouds": clouds})
    else:
        group = None
        for i in items:
            if i["group"] != group:
                group = i["group"]
                click.echo(f"{group}:")
            mark = "ok" if i["ok"] else ("MISSING" if i["required"] else "-")
            click.echo(f"  {mark:<8}{i['name']}: {i['detail']}")
            if i["fix"]:
                click.echo(f"  {'':<8}fix: {i['fix']}")
        click.echo("local stack: " + ("ready" if local_ready else "NOT ready (fix the MISSING lines)"))
    raise SystemExit(0 if local_ready else 1)
