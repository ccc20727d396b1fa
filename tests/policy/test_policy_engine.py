"""The pack under the real engine: `preview --policy-pack policy/` on tiny inline stacks.

Needs STYX_PULUMI_BIN_DIR (a folder with `pulumi` and `pulumi-language-python`, e.g. the one
toolchain/install-pulumi.sh fills). The AWS cases also need the pulumi-resource-aws plugin, which
cannot be installed here (provider modules are refused by the module proxy): they skip, saying so.
Each stack lives on a temporary file backend; nothing is ever created (preview only) and AWS is
never contacted (fake credentials, every provider check skipped).

Toolchain note: the language host that install-pulumi.sh builds (sdk 3.79) starts a Python policy pack
as `python <RunPluginRequest.program>`, and the 3.259 engine leaves that field empty (it sends
`info` instead), so the host runs `python <pwd>`. Each workspace therefore gets a two-line
`__main__.py` shim that runs policy/__main__.py; with a language host that reads `info`, the shim is
simply never used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policy"

pytestmark = pytest.mark.engine


def _bin_dir() -> Path:
    raw = os.environ.get("STYX_PULUMI_BIN_DIR")
    if not raw:
        pytest.skip("STYX_PULUMI_BIN_DIR is not set (run toolchain/install-pulumi.sh and point it at its bin folder)")
    d = Path(raw).expanduser()
    try:
        r = subprocess.run([str(d / "pulumi"), "version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as e:
        pytest.skip(f"no working pulumi CLI in STYX_PULUMI_BIN_DIR={d}: {e}")
    if r.returncode != 0:
        pytest.skip(f"pulumi CLI in {d} does not run: {r.stderr.strip()[-300:]}")
    if not (d / "pulumi-language-python").exists():
        pytest.skip(f"pulumi-language-python missing in {d}")
    return d


def _pulumi_home() -> str:
    if os.environ.get("PULUMI_HOME"):
        return os.environ["PULUMI_HOME"]
    try:
        from styx import engine

        return str(engine.pulumi_home())
    except ImportError:
        return str(Path.home() / ".pulumi")


def _env(bin_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PULUMI_HOME": _pulumi_home(),
        "PULUMI_CONFIG_PASSPHRASE": "styx-policy-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
        "AWS_SECRET_ACCESS_KEY": "fake",
        "AWS_REGION": "us-east-1",
    }


def _has_plugin(bin_dir: Path, env: dict[str, str], kind: str, name: str) -> bool:
    r = subprocess.run([str(bin_dir / "pulumi"), "plugin", "ls", "--json"], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=120, check=False)
    try:
        return any(p.get("kind") == kind and p.get("name") == name for p in json.loads(r.stdout or "[]"))
    except ValueError:
        return False


def _stack(tmp: Path, name: str, program):
    from pulumi import automation as auto

    bin_dir = _bin_dir()
    ws_dir = tmp / "ws"
    ws_dir.mkdir()
    (ws_dir / "__main__.py").write_text(  # see the module docstring
        f"import runpy\nrunpy.run_path({str(PACK / '__main__.py')!r}, run_name='__main__')\n")
    (tmp / "state").mkdir()
    ws = auto.LocalWorkspace(
        work_dir=str(ws_dir),
        pulumi_home=_pulumi_home(),
        pulumi_command=auto.PulumiCommand(root=str(bin_dir.parent), skip_version_check=True),
        env_vars=_env(bin_dir),
        project_settings=auto.ProjectSettings(name=name, runtime="python",
                                              backend=auto.ProjectBackend(url=f"file://{tmp / 'state'}")),
        secrets_provider="passphrase",
        program=program,
    )
    return auto.Stack.create_or_select("t", ws)


def _preview(stack):
    """(ok, text) of a preview with the pack."""
    from pulumi import automation as auto

    lines: list[str] = []
    try:
        stack.preview(policy_packs=[str(PACK)], color="never", on_output=lines.append)
        return True, "\n".join(lines)
    except auto.errors.CommandError as e:
        return False, "\n".join(lines) + "\n" + str(e)


def test_pack_loads_under_the_engine(tmp_path):
    """A stack with no cloud resource: the engine starts the pack and reports it, without violations."""
    import pulumi

    def program():
        pulumi.export("hello", "world")

    ok, text = _preview(_stack(tmp_path, "nothing", program))
    assert ok, text[-3000:]
    assert "styx-security" in text, text[-3000:]


def _aws_program(port: int, tokens: str, encrypted: bool):
    def program():
        import pulumi
        import pulumi_aws as aws

        prov = aws.Provider("p", region="us-east-1", access_key="AKIAFAKEFAKEFAKE0000", secret_key="fake",
                            skip_credentials_validation=True, skip_requesting_account_id=True,
                            skip_metadata_api_check="true", skip_region_validation=True)
        opts = pulumi.ResourceOptions(provider=prov)
        aws.vpc.SecurityGroupIngressRule("rule", security_group_id="sg-0123456789abcdef0", ip_protocol="tcp",
                                         from_port=port, to_port=port, cidr_ipv4="0.0.0.0/0", opts=opts)
        aws.ec2.Instance("vm", ami="ami-0123456789abcdef0", instance_type="m6i.large",
                         metadata_options={"http_tokens": tokens},
                         root_block_device={"encrypted": encrypted}, opts=opts)

    return program


def _require_aws_plugin():
    bin_dir = _bin_dir()
    if not _has_plugin(bin_dir, _env(bin_dir), "resource", "aws"):
        pytest.skip("pulumi-resource-aws plugin not installable here (provider modules are refused by the module "
                    "proxy); the policies are covered by tests/policy/test_policies.py and test_policy_grpc.py")


def test_aws_violations_block_preview(tmp_path):
    _require_aws_plugin()
    ok, text = _preview(_stack(tmp_path, "bad", _aws_program(8265, "optional", False)))
    assert not ok, text[-3000:]
    for name in ("styx-no-world-ingress-except-ssh", "styx-ray-ports-not-public", "styx-aws-imdsv2-required",
                 "styx-aws-ebs-encrypted"):
        assert name in text, (name, text[-3000:])


def test_aws_compliant_preview_passes(tmp_path):
    _require_aws_plugin()
    ok, text = _preview(_stack(tmp_path, "good", _aws_program(22, "required", True)))
    assert ok, text[-3000:]
