"""`styx preview --markdown` of edits to a real stack (local backend, 1 head + 1 worker, no Ray: env
vars, a secret_env with a sentinel value and a custom script), compared to golden files.

One launch, then previews (nothing changes in between): no change; the custom script changed (also
from "another machine": a fresh STYX_HOME on the same backend, as in CI); the worker count 1 -> 2;
the secret changed. The markdown is normalised for addresses only (the previews
show none today; kept so a future row with an address does not make the test flaky). The sentinel
secret never appears in the markdown, the --json report, or stderr. `styx down` in a finally.
Regenerate the goldens with STYX_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.e2e.test_cli_local import cli, teardown  # noqa: F401  (the CLI fixture: own STYX_HOME)

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "prv"
SUBNET = "10.93.0.0/26"
SENTINEL = "prv-sentinel-Z9q7Xw2Lk4"
SENTINEL_B = "prv-sentinel-Bb81mNc3Qe"
GOLDEN = Path(__file__).resolve().parent / "golden"
HELLO = 'echo "hello from $(hostname)" > /tmp/prv-hello'


def cluster(**setup) -> dict:
    c = {
        "name": NAME,
        "cloud": "local",
        "workers": [{"name": "worker", "count": 1}],
        "local": {"subnet": SUBNET},
        "setup": {
            "ray": {"enabled": False},
            "env": {"PRV_GREETING": "hello"},
            "secret_env": {"PRV_TOKEN": SENTINEL},
            "custom_scripts": [{"name": "hello", "inline": HELLO}],
        },
    }
    c["setup"].update(setup)
    return c


def normalise(text: str) -> str:
    return re.sub(r"\b10\.93\.0\.\d+\b", "10.93.0.X", text)


def check_golden(name: str, text: str) -> None:
    p = GOLDEN / f"preview-{name}.md"
    if os.environ.get("STYX_UPDATE_GOLDEN") == "1":
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    assert p.is_file(), f"missing golden {p}: run with STYX_UPDATE_GOLDEN=1"
    assert text == p.read_text(), f"{p} differs:\n{text}"


def test_preview_markdown_of_edits(cli):  # noqa: F811
    base = cluster()
    cfg = cli.config(base)
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"] and [n["name"] for n in up["outputs"]["nodes"]] == ["head", "worker-0"]

        def preview(case: str, c: dict, extra_env: dict | None = None) -> str:
            p = cli.tmp / f"{case}.yaml"
            p.write_text(json.dumps(c))
            out = cli.tmp / f"{case}.md"
            t = time.monotonic()
            r = cli.run("preview", str(p), "--stack", NAME, "--markdown", str(out), "--json",
                        "--policy-pack", "policy", extra_env=extra_env)
            print(f"preview {case}: {time.monotonic() - t:.1f}s")
            assert r.returncode == 0, r.stderr[-3000:]
            for text in (r.stdout, r.stderr, out.read_text()):
                assert SENTINEL not in text and SENTINEL_B not in text
            md = normalise(out.read_text())
            print(md)
            check_golden(case, md)
            return md

        md = preview("no-change", copy.deepcopy(base))
        assert "no changes" in md

        c = copy.deepcopy(base)
        c["setup"]["custom_scripts"][0]["inline"] = HELLO + "\necho again >> /tmp/prv-hello"
        md = preview("script-changed", c)
        assert "| head | `custom-hello` | replace | script changed |" in md

        # as in CI: another machine (a fresh STYX_HOME, no stack settings there) on the same backend and
        # passphrase gets the same section, the price before from the backend's record of the launch
        home = Path(cli.env["STYX_HOME"])
        ci_env = {"STYX_HOME": str(cli.tmp / "ci-home"), "PULUMI_BACKEND_URL": f"file://{home / 'state'}",
                  "PULUMI_CONFIG_PASSPHRASE_FILE": str(home / "passphrase")}
        assert preview("script-changed", c, extra_env=ci_env) == md

        c = copy.deepcopy(base)
        c["workers"][0]["count"] = 2
        md = preview("worker-count", c)
        assert "| worker-1 | `(node)` | create | new node" in md

        c = copy.deepcopy(base)
        c["setup"]["secret_env"]["PRV_TOKEN"] = SENTINEL_B
        md = preview("secret-changed", c)
        assert "| head | `env_vars` | replace |" in md and "[secret]" in md

        # the previews changed nothing: the stored config is the launched one
        st = cli.json("preview", "--stack", NAME)
        assert set(st["changes"]) <= {"same"}, st["changes"]
    finally:
        teardown(cli, NAME, NAME)
