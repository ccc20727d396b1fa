"""Day two on a real cluster (1 head + 1 worker, local backend, official plugins, real Ray): every edit
after the first launch, one at a time. After each `up`: the engine events say exactly which
resources ran, and the nodes' files and processes are what the new config describes.

The tests run in order and share one cluster.
"""

from __future__ import annotations

import copy
import subprocess

import pytest

from tests.e2e.helpers import RAY_ENV, Stack, leftovers, require_engine_and_sandbox, sandbox_status

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "dayt"
NODES = ("head", "worker-0")
ORDER = ["wait_ssh", "system_packages", "python_env", "conda", "docker", "gpu", "file_sync", "env_vars", "workdir",
         "custom-one", "custom-two", "custom-three", "ray"]
SECRET_A, SECRET_B = "dayt-secret-aaaa-1f2e", "dayt-secret-bbbb-9c8d"


def _tree(root, files: dict[str, str]):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    require_engine_and_sandbox()
    tmp = tmp_path_factory.mktemp("dayt")
    code = tmp / "code"
    _tree(code, {"train.py": "print('v1')\n", "conf/a.yaml": "a: 1\n", "notes.txt": "n\n",
                 ".git/HEAD": "ref\n", "pkg/__pycache__/x.pyc": "bin", "big.ckpt": "skip me\n"})
    (code / ".styxignore").write_text("*.ckpt\n")
    data = tmp / "data"
    _tree(data, {"d.csv": "1,2\n"})
    cluster = {
        "name": NAME, "cloud": "local",
        "local": {"subnet": "10.81.0.0/24", "shm_size": "1g"},
        "head": {}, "workers": [{"name": "worker", "count": 1}],
        "setup": {
            "packages": ["jq"],
            "python": {"version": "system", "env_tool": "venv"},
            "ray": {"version": "2.60.0"},
            "file_mounts": [{"local": str(code), "remote": "/opt/dayt/code"}],
            "env": {"A": "1"},
            "secret_env": {"TOKEN": SECRET_A},
            "workdir": "/opt/dayt/work",
            "custom_scripts": [
                {"name": "one", "inline": "echo one > /opt/dayt/work/one.txt"},
                {"name": "two", "inline": "echo two-v1 > /opt/dayt/work/two.txt"},
            ],
        },
    }
    s = Stack(NAME, cluster, tmp)
    state = {"stack": s, "cluster": cluster, "code": code, "data": data, "tmp": tmp}
    yield state
    try:
        s.destroy()
    finally:
        s.stack.workspace.remove_stack(s.name)
    assert not leftovers(sandbox_status(NAME))


def edit(ctx, fn):
    c = copy.deepcopy(ctx["cluster"])
    fn(c)
    ctx["cluster"] = c
    ctx["stack"].reconfigure(c)
    _res, ops = ctx["stack"].up()
    return set(ops.changed())


def on(node: str, *phases: str) -> set[str]:
    return {f"{NAME}-{node}-{p}" for p in phases}


def from_(phase: str, present: list[str], nodes=NODES) -> set[str]:
    """`phase` and every phase after it that exists, on each node."""
    after = [p for p in ORDER[ORDER.index(phase):] if p in present]
    return set().union(*(on(n, *after) for n in nodes))


def sh(ctx, node: str, cmd: str, check: bool = True) -> str:
    out = ctx["stack"].outputs()
    ip = next(n["private_ip"] for n in out["nodes"] if n["name"] == node)
    return ctx["stack"].ssh(ip, cmd, check=check).stdout


def state_text(ctx) -> str:
    """Every file the engine wrote (checkpoints, backups, history) and the stack settings file."""
    tmp = ctx["tmp"]
    files = [p for p in (tmp / "state").rglob("*") if p.is_file()] + list((tmp / "ws").glob("Pulumi.*.yaml"))
    return "\n".join(f.read_bytes().decode(errors="replace") for f in files)


def env_file(ctx, node: str) -> str:
    return sh(ctx, node, "cat /etc/styx/env.sh 2>/dev/null || echo MISSING")


def ray_alive(ctx) -> int:
    out = sh(ctx, "head", RAY_ENV + "/opt/styx/venv/bin/python - <<'EOF'\nimport ray\n"
                          "ray.init(address='auto', logging_level='ERROR')\n"
                          "print(sum(1 for n in ray.nodes() if n['Alive']))\nEOF")
    return int(out.strip().splitlines()[-1])


PRESENT = ["wait_ssh", "system_packages", "python_env", "gpu", "file_sync", "env_vars", "workdir", "custom-one",
           "custom-two", "ray"]


def test_first_launch(ctx):
    ctx["stack"].up()
    assert ray_alive(ctx) == 2
    for n in NODES:
        assert "export A=1" in env_file(ctx, n)
        files = sh(ctx, n, "cd /opt/dayt/code && find . -type f | sort").split()
        # no .git/, __pycache__/, *.ckpt (.styxignore)
        assert files == ["./.styxignore", "./conf/a.yaml", "./notes.txt", "./train.py"], files
    assert SECRET_A not in state_text(ctx)


def test_nothing_changed_runs_nothing(ctx):
    _res, ops = ctx["stack"].up()
    assert ops.changed() == {}


def test_env_var_changed_and_added_keeps_the_env_file(ctx):
    changed = edit(ctx, lambda c: c["setup"]["env"].update(A="2", B="3"))
    assert changed == from_("env_vars", PRESENT)
    for n in NODES:
        text = env_file(ctx, n)
        assert "export A=2" in text and "export B=3" in text and "TOKEN=" in text, text
    assert ray_alive(ctx) == 2


def test_env_var_removed(ctx):
    changed = edit(ctx, lambda c: c["setup"]["env"].pop("B"))
    assert changed == from_("env_vars", PRESENT)
    for n in NODES:
        text = env_file(ctx, n)
        assert "export A=2" in text and "B=" not in text


def test_secret_env_changed_reaches_the_nodes_never_the_state(ctx):
    changed = edit(ctx, lambda c: c["setup"]["secret_env"].update(TOKEN=SECRET_B))
    assert changed == from_("env_vars", PRESENT)
    for n in NODES:
        assert SECRET_B in env_file(ctx, n)
    state = state_text(ctx)
    assert SECRET_A not in state and SECRET_B not in state
    # no secret in any process list on the node either (phases are done; Ray runs)
    assert SECRET_B not in sh(ctx, "head", "ps -eo args")


def test_all_env_removed_deletes_the_file_then_added_back(ctx):
    def drop(c):
        c["setup"]["env"] = {}
        c["setup"]["secret_env"] = {}

    changed = edit(ctx, drop)
    present = [p for p in PRESENT if p != "env_vars"]
    assert on("head", "env_vars") <= changed and on("worker-0", "env_vars") <= changed
    assert changed - on("head", "env_vars") - on("worker-0", "env_vars") == from_("workdir", present)
    for n in NODES:
        assert env_file(ctx, n).strip() == "MISSING"
    edit(ctx, lambda c: c["setup"].update(env={"A": "3"}, secret_env={"TOKEN": SECRET_B}))
    for n in NODES:
        assert "export A=3" in env_file(ctx, n)


def test_file_changed_added_removed(ctx):
    code = ctx["code"]
    for n in NODES:  # something the node wrote inside the mount: never styx's to remove
        sh(ctx, n, "echo mine > /opt/dayt/code/node-made.txt")
    (code / "train.py").write_text("print('v2')\n")
    (code / "new.py").write_text("x = 1\n")
    (code / "notes.txt").unlink()
    changed = edit(ctx, lambda c: None)
    assert changed == from_("file_sync", PRESENT) | on("head", "file_sync-copy") | on("worker-0", "file_sync-copy")
    for n in NODES:
        assert sh(ctx, n, "cat /opt/dayt/code/train.py").strip() == "print('v2')"
        assert sh(ctx, n, "cat /opt/dayt/code/new.py").strip() == "x = 1"
        assert sh(ctx, n, "test -e /opt/dayt/code/notes.txt && echo yes || echo no").strip() == "no"
        assert sh(ctx, n, "cat /opt/dayt/code/node-made.txt").strip() == "mine"
    assert ray_alive(ctx) == 2


def test_mount_added_then_removed(ctx):
    data = str(ctx["data"])
    edit(ctx, lambda c: c["setup"]["file_mounts"].append({"local": data, "remote": "/opt/dayt/data"}))
    for n in NODES:
        assert sh(ctx, n, "cat /opt/dayt/data/d.csv").strip() == "1,2"
    edit(ctx, lambda c: c["setup"]["file_mounts"].pop())
    for n in NODES:
        assert sh(ctx, n, "test -e /opt/dayt/data && echo yes || echo no").strip() == "no"
        assert sh(ctx, n, "cat /opt/dayt/code/train.py").strip() == "print('v2')"


def test_package_added(ctx):
    changed = edit(ctx, lambda c: c["setup"]["packages"].append("tree"))
    assert changed == from_("system_packages", PRESENT)  # the archive is not copied again
    for n in NODES:
        sh(ctx, n, "command -v tree && command -v jq")


def test_custom_scripts_edited_added_removed_reordered(ctx):
    def edit_two(c):
        c["setup"]["custom_scripts"][1]["inline"] = "echo two-v2 > /opt/dayt/work/two.txt"

    assert edit(ctx, edit_two) == from_("custom-two", PRESENT)
    assert sh(ctx, "worker-0", "cat /opt/dayt/work/two.txt").strip() == "two-v2"

    def add_three(c):
        c["setup"]["custom_scripts"].append({"name": "three", "inline": "echo three > /opt/dayt/work/three.txt"})

    present = [*PRESENT[:-1], "custom-three", "ray"]
    assert edit(ctx, add_three) == from_("custom-three", present)
    assert sh(ctx, "head", "cat /opt/dayt/work/three.txt").strip() == "three"

    def remove_one(c):
        c["setup"]["custom_scripts"].pop(0)

    changed = edit(ctx, remove_one)
    # custom-one goes; two, three and ray follow a new chain
    assert changed == from_("custom-one", present)

    def reorder(c):
        c["setup"]["custom_scripts"].reverse()

    changed = edit(ctx, reorder)
    assert changed == from_("custom-two", present)
    assert ray_alive(ctx) == 2


def test_worker_count_up_then_down(ctx):
    def grow(c):
        c["workers"][0]["count"] = 2

    changed = edit(ctx, grow)
    assert changed and all(n.startswith(f"{NAME}-worker-1") for n in changed), changed
    assert ray_alive(ctx) == 3

    def shrink(c):
        c["workers"][0]["count"] = 1

    changed = edit(ctx, shrink)
    assert changed and all(n.startswith(f"{NAME}-worker-1") for n in changed), changed
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert "worker-1" not in out or NAME not in out
    assert "print('v2')" in sh(ctx, "worker-0", "cat /opt/dayt/code/train.py")
