"""The stack's outputs read from its state export (styx.app.session.stack_outputs) are what the Automation
API's `outputs()` (`pulumi stack output --json [--show-secrets]`) gives, through the real Pulumi CLI on
a temp file backend: plain values, numbers, booleans, null, lists, nested objects and secrets at any
depth (skipped when the toolchain is missing)."""

from __future__ import annotations

import pytest

from styx.app import engine as eng
from styx.app.session import stack_outputs

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(not (eng.toolchain_bin() / "pulumi").exists(),
                                 reason=f"Pulumi CLI not installed at {eng.toolchain_bin()} "
                                        "(bash toolchain/install-pulumi.sh)")]


def test_outputs_from_the_export_equal_the_cli_outputs(tmp_path, monkeypatch):
    import pulumi
    from pulumi import automation as auto

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "outputs-test")

    def program() -> None:
        pulumi.export("ip", "10.0.0.2")
        pulumi.export("n", 3)
        pulumi.export("ratio", 0.5)
        pulumi.export("ok", True)
        pulumi.export("none", None)
        pulumi.export("key", pulumi.Output.secret("-----BEGIN KEY-----\nabc\n"))
        pulumi.export("nodes", {"head": {"ip": "10.0.0.2", "token": pulumi.Output.secret("t0k")},
                                "workers": [{"ip": "10.0.0.10"}, pulumi.Output.secret({"ip": "10.0.0.11"})]})

    (tmp_path / "ws").mkdir()
    (tmp_path / "state").mkdir()
    ws = auto.LocalWorkspace(
        work_dir=str(tmp_path / "ws"), pulumi_home=str(eng.pulumi_home()), pulumi_command=eng.pulumi_command(),
        env_vars={**eng.engine_env("outputs-test")}, secrets_provider="passphrase", program=program,
        project_settings=auto.ProjectSettings(name="styx-outputs-test", runtime="python",
                                              backend=auto.ProjectBackend(url=f"file://{tmp_path / 'state'}")))
    stack = auto.Stack.create("t", ws)
    assert stack_outputs(stack.export_stack().deployment) == {}  # no update yet
    stack.up(on_output=lambda _line: None)
    cli = {k: v.value for k, v in stack.outputs().items()}
    assert cli["nodes"]["head"]["token"] == "t0k"  # the CLI's reading shows the secrets
    assert stack_outputs(stack.export_stack().deployment) == cli
