"""components/first_boot.py: the first-boot jobs are the phases' own programs, nothing secret, small enough."""

from __future__ import annotations

import ast
import gzip
import subprocess

import pytest
import yaml

from styx.components import first_boot as fb
from styx.components import runner
from styx.components.phases import wheel_cache_key
from styx.model.config import parse_cluster

BASE = {"name": "boot", "cloud": "aws", "region": "us-east-1", "head": {"instance_type": "m6i.large"},
        "workers": [{"name": "cpu", "count": 2, "instance_type": "m6i.large"}],
        "aws": {"ssh_cidrs": ["203.0.113.0/24"]}}


def _cfg(**setup):
    return parse_cluster({**BASE, "setup": setup})


def _files(cfg, role):
    return fb.boot_files(cfg, role, cfg.head, role)


def test_head_fills_apt_and_the_wheel_cache_worker_apt_only():
    cfg = _cfg(packages=["jq", "htop"])
    jobs, files = _files(cfg, "head")
    assert jobs == ["apt", "wheel_cache"]
    assert {"lib.sh", "first_boot.sh", "apt.sh", "wheel_cache.sh", "wheel_cache.py", "uv_wheel.py"} == set(files)
    assert "STYX_APT_DOWNLOAD_ONLY=1" in files["apt.sh"] and "STYX_APT_PACKAGES='jq\nhtop'" in files["apt.sh"]
    wc = files["wheel_cache.sh"]
    assert "STYX_WC_SERVE=0" in wc and f"STYX_WC_KEY={wheel_cache_key(cfg, 'system')} " in wc  # the phase's key
    assert "STYX_WC_DIR=/var/lib/styx/wheel-cache" in wc
    assert "STYX_WC_BIND" not in wc.split("\n. ")[0] and "STYX_PIP_INDEX_URL" not in wc.split("\n. ")[0]
    jobs, files = _files(cfg, "worker")
    assert jobs == ["apt"] and "wheel_cache.sh" not in files
    boot = fb.boot_config(cfg, "head", cfg.head, "head")
    paths = [f["path"] for f in boot["write_files"]]
    assert "/var/lib/styx/first-boot/apt.pending" in paths and "/var/lib/styx/first-boot/wheel_cache.pending" in paths
    assert boot["runcmd"] == [["bash", "/var/lib/styx/first-boot/first_boot.sh", "apt", "wheel_cache"]]


def test_apt_runs_without_packages_and_no_wheel_fill_without_python_work():
    jobs, _ = _files(_cfg(ray={"enabled": False}), "head")
    assert jobs == ["apt"]  # nothing for python_env to install: no wheel cache
    jobs, _ = _files(_cfg(python={"wheel_cache": "off"}), "head")
    assert jobs == ["apt"]


def test_off_renders_nothing():
    cfg = _cfg(first_boot="off", packages=["jq"])
    assert fb.boot_files(cfg, "head", cfg.head, "head") == ([], {})
    assert fb.boot_config(cfg, "head", cfg.head, "head") is None


def test_index_url_and_secret_env_never_in_user_data():
    url = "https://user:s3cr3t-token@pypi.example.com/simple"
    cfg = _cfg(packages=["jq"], python={"index_url": url}, secret_env={"API_KEY": "hunter2-xyz"},
               env={"PLAIN": "visible"})
    jobs, _ = _files(cfg, "head")
    assert jobs == ["apt"]  # with an index_url the head's fill is left to its phase
    text = fb.render_boot(fb.boot_config(cfg, "head", cfg.head, "head"))
    for secret in ("s3cr3t-token", "pypi.example.com", "hunter2-xyz", "API_KEY"):
        assert secret not in text


def test_rendered_yaml_gives_back_the_same_files():
    cfg = _cfg(packages=["jq"])
    _, files = _files(cfg, "head")
    boot = yaml.safe_load(fb.render_boot(fb.boot_config(cfg, "head", cfg.head, "head")))
    got = {f["path"].rsplit("/", 1)[1]: f["content"] for f in boot["write_files"]}
    assert {k: got[k] for k in files} == files


def test_stripped_scripts_are_the_same_code():
    for name in ("lib.sh", "system_packages.sh", "wheel_cache.sh", "first_boot.sh"):
        src = fb.script_text(name)
        out = runner.strip_shell(src)
        assert len(out) < len(src)
        assert subprocess.run(["bash", "-n"], input=out, text=True, check=False).returncode == 0, name
        code = [ln for ln in src.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert [ln for ln in out.splitlines() if not ln.startswith("#!")] == code, name
    assert runner.strip_shell("cat <<EOF\n# data\nEOF\n") == "cat <<EOF\n# data\nEOF\n"  # a here-document: kept as is
    assert runner.strip_shell("P='\n# data\n'\n") == "P='\n# data\n'\n"  # a multi-line string: kept as is
    src = fb.script_text("wheel_cache.py")
    out = fb.strip_python(src)

    def body(tree):  # the AST without docstrings
        for n in ast.walk(tree):
            b = getattr(n, "body", None)
            if isinstance(b, list) and b and isinstance(b[0], ast.Expr) and isinstance(b[0].value, ast.Constant) \
                    and isinstance(b[0].value.value, str):
                n.body = b[1:] or [ast.Pass()]
        return ast.dump(tree)

    assert body(ast.parse(out)) == body(ast.parse(src)) and len(out) < len(src)


MANY = {"packages": [f"lib{i:03d}-dev" for i in range(120)] + ["build-essential", "htop", "jq"],
        "python": {"pip_packages": [f"package-{i:02d}=={i}.0.1" for i in range(60)]}}


@pytest.mark.parametrize("setup", [{}, {"packages": ["jq"]}, MANY], ids=["default", "jq", "many"])
def test_size_under_the_aws_limit(setup):
    cfg = _cfg(**setup)
    for role in ("head", "worker"):
        text = fb._KEY_PART + fb.render_boot(fb.boot_config(cfg, role, cfg.head, role))
        size = len(gzip.compress(text.encode(), 9, mtime=0))
        assert size < fb.AWS_USER_DATA_LIMIT, (role, size)
        assert len(text.encode()) < fb.GCP_METADATA_VALUE_LIMIT


def test_gzip_is_deterministic():
    assert fb.gzip_user_data("#cloud-config\n") == fb.gzip_user_data("#cloud-config\n")
