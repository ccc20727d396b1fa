"""List values of the config (`setup.packages`, `setup.python.pip_packages`, `setup.conda.packages`,
`setup.ray.extra_start_args`) reach their command on the node as one argument each, exactly as
written: config -> the phase row's env -> the runner's program on stdin -> the real script -> the argv
of a stub command (recorded NUL-separated, so argument boundaries are seen as they are)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from styx.components import phases, runner
from styx.components.phases import GATE, PHASES, NodeInfo, PhaseContext, body_of, script_text
from styx.model.config import parse_cluster

RAY_ARGS = ['--resources={"custom": 1, "b": 2}', "--temp-dir=/tmp/ray dir", "--labels={'zone': 'a b'}",
            "--include-log-monitor=$HOME*"]
PIP = ['torch==2.3; python_version > "3.8"', "six==1.16.0", "--extra-index-url=https://x.example/simple a",
       "pkg[extra]  >=1,<2"]
CONDA = ["numpy>=1.26,<2", "--channel=conda-forge", "scipy 1.13.*"]
APT = ["jq", "curl=7.88.1-10+deb12u5", "htop"]

# what each stub does besides recording its argv into $ARGV_DIR/<name>.<ns>
RECORD = 'printf "%s\\0" "$@" >"$ARGV_DIR/$(basename "$0").$(date +%s%N)"\n'
STUBS = {
    "dpkg-query": "exit 1",  # nothing installed
    "apt-cache": 'echo "  Candidate: 1.0"',
    "apt-get": "exit 0",
    "python3": 'case $2 in *version_info*) echo 3.11 ;; esac; exit 0',
}
VENV_PY = r"""
if [ "$1" = -c ]; then
  case $2 in
    *version_info*) echo 3.11 ;;
    *python_version*) echo 3.11.9 ;;
    *'version("ray")'*) echo "$STYX_RAY_VERSION" ;;
    *Requirement*) exit 1 ;;  # not satisfied: pip install runs
    *'cli.main'*) exit 0 ;;  # ray.sh's START_PY: `ray start ARGS` in-process, then the node alive
    *get_all_node_info*) echo "${3%:*}" ;;  # the GCS at ADDR lists the node at ADDR's host alive
  esac
  exit 0
fi
echo "Successfully installed something"
"""
CONDA_BIN = 'case $1 in --version) echo "conda 24.11.3" ;; list) echo "# packages" ;; esac; exit 0'


def _cfg(**setup):
    return parse_cluster({"name": "lists", "cloud": "local", "workers": [{"count": 1}], "setup": setup})


def _row_env(cfg, phase: str, role: str = "head") -> dict:
    node = NodeInfo("head", role, cfg.head, "10.0.0.2", "10.0.0.2")
    return dict(next(p for p in PHASES if p.name == phase).env(PhaseContext(cfg, node)))


def test_lists_are_one_element_per_line():
    cfg = _cfg(packages=APT, python={"pip_packages": PIP}, conda={"enabled": True, "packages": CONDA},
               ray={"extra_start_args": RAY_ARGS})
    assert _row_env(cfg, "system_packages")["STYX_APT_PACKAGES"].split("\n") == APT
    assert _row_env(cfg, "python_env")["STYX_PIP_PACKAGES"].split("\n") == [*PIP, "ray[default]==2.60.0"]
    assert _row_env(cfg, "conda")["STYX_CONDA_PACKAGES"].split("\n") == CONDA
    assert _row_env(cfg, "ray")["STYX_RAY_EXTRA_ARGS"].split("\n") == RAY_ARGS
    assert _row_env(_cfg(), "ray")["STYX_RAY_EXTRA_ARGS"] == ""


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "", "  "])
def test_an_element_that_cannot_be_one_line_is_refused(bad):
    """By the model (so `styx validate` says it, naming the key), and again by the phase row."""
    from styx.model.config import ConfigError

    key = r"styx:cluster\.setup\.ray\.extra_start_args\[1\]: "
    with pytest.raises(ConfigError, match=key + ".*non-empty and on one line"):
        _cfg(ray={"extra_start_args": ["--x=1", bad]})
    with pytest.raises(ValueError, match=r"setup\.ray\.extra_start_args\[1\]"):
        phases._lines(["--x=1", bad], "setup.ray.extra_start_args")


def test_every_script_reads_its_list_with_mapfile_never_word_splitting():
    for script, var in [("system_packages.sh", "STYX_APT_PACKAGES"), ("python_env.sh", "STYX_PIP_PACKAGES"),
                        ("conda.sh", "STYX_CONDA_PACKAGES"), ("ray.sh", "STYX_RAY_EXTRA_ARGS")]:
        text = script_text(script)
        assert f"< <(printf '%s' \"${var}\")" in text, script
        assert f'<<<"${var}"' not in text and f" ${var};" not in text, script


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A fake node: the styx library installed by the real gate, stub commands first on PATH."""
    monkeypatch.setattr(runner, "LIB_DIR", str(tmp_path / "lib"))
    stub_dir, argv_dir = tmp_path / "stubs", tmp_path / "argv"
    stub_dir.mkdir()
    argv_dir.mkdir()
    for name, body in STUBS.items():
        _write_stub(stub_dir / name, body)
    env = {"STYX_STATE_DIR": str(tmp_path / "state"), "STYX_LOG_DIR": str(tmp_path / "log"),
           "STYX_PROFILE_DIR": str(tmp_path / "profile.d"), "STYX_COMMAND_DIR": str(tmp_path / "cmdbin"),
           "STYX_APT_LISTS_DIR": str(tmp_path / "apt-lists"), "STYX_PROC_ROOT": str(tmp_path / "proc"),
           "ARGV_DIR": str(argv_dir),
           "PATH": f"{stub_dir}:/usr/local/bin:/usr/bin:/bin"}
    env["STYX_FILE_OWNER"] = subprocess.run(["sh", "-c", "echo $(id -un):$(id -gn)"], capture_output=True,
                                            text=True, check=True).stdout.strip()
    (tmp_path / "proc").mkdir()
    gate = _run("wait_ssh", runner.gate_program(body_of(GATE), env), env)
    assert gate.returncode == 0, gate.stderr
    return tmp_path, env


def _write_stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n" + RECORD + body + "\n")
    path.chmod(0o755)


def _run(phase: str, program: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", runner.command_text(phase, "head", 60, "create")], input=program,
                          capture_output=True, text=True, timeout=60, check=False, env=env)


def _calls(argv_dir: Path, name: str) -> list[list[str]]:
    files = sorted(argv_dir.glob(f"{name}.*"), key=lambda p: int(p.suffix[1:]))
    return [p.read_bytes().decode().split("\0")[:-1] for p in files]


def _has_run(calls: list[list[str]], *args: str) -> bool:
    n = len(args)
    return any(c[i:i + n] == list(args) for c in calls for i in range(len(c) - n + 1))


def _phase(node, cfg, phase: str, **extra) -> subprocess.CompletedProcess:
    _tmp, env = node
    penv = {**_row_env(cfg, phase), **extra}
    prog = runner.program(phase, body_of(next(p for p in PHASES if p.name == phase)), {**env, **penv})
    r = _run(phase, prog, env)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    return r


def test_ray_start_gets_each_extra_arg_as_one_argument(node):
    tmp, _env = node
    venv = tmp / "venv"
    _write_stub(venv / "bin" / "ray", "exit 0")
    _write_stub(venv / "bin" / "python", VENV_PY)
    r = _phase(node, _cfg(ray={"extra_start_args": RAY_ARGS, "auth": "none"}), "ray", STYX_VENV_DIR=str(venv),
               STYX_ENV_FILE=str(tmp / "env.sh"))
    assert r.stdout.startswith("styx ray: ok: ray 2.60.0 head started")
    # `ray start` runs in the venv's Python (ray.sh's START_PY: python -c PROG ADDR IP TIMEOUT ARGS...)
    starts = [c for c in _calls(tmp / "argv", "python") if c[:1] == ["-c"] and "cli.main" in c[1]]
    assert len(starts) == 1 and starts[0][-len(RAY_ARGS):] == RAY_ARGS, starts


def test_apt_get_gets_each_package_as_one_argument(node):
    tmp, _env = node
    _phase(node, _cfg(packages=APT), "system_packages")
    installs = [c for c in _calls(tmp / "argv", "apt-get") if "install" in c]
    assert installs and installs[0][-len(APT):] == APT, installs


def test_pip_gets_each_spec_as_one_argument(node):
    tmp, _env = node
    venv = tmp / "venv"
    _write_stub(venv / "bin" / "python", VENV_PY)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    r = _phase(node, _cfg(python={"pip_packages": PIP}, ray={"enabled": False}), "python_env",
               STYX_VENV_DIR=str(venv))
    assert "4 pip specs satisfied" in r.stdout
    calls = _calls(tmp / "argv", "python")
    assert _has_run(calls, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", *PIP), calls
    # the "already satisfied" check gets them one by one as well
    assert any(c[:1] == ["-c"] and c[2:] == PIP for c in calls), calls


def test_conda_gets_each_spec_and_option_as_one_argument(node):
    tmp, _env = node
    prefix = tmp / "conda"
    _write_stub(prefix / "bin" / "conda", CONDA_BIN)
    _phase(node, _cfg(conda={"enabled": True, "env_name": "ml", "python": "3.11", "packages": CONDA}), "conda",
           STYX_CONDA_PREFIX=str(prefix))
    creates = [c for c in _calls(tmp / "argv", "conda") if c[:1] == ["create"]]
    assert creates == [["create", "-y", "-q", "-n", "ml", "--channel=conda-forge", "python=3.11",
                        "numpy>=1.26,<2", "scipy 1.13.*"]], creates
