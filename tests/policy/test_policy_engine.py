"""The pack under the real engine: `pulumi preview --policy-pack policy/` on styx stacks.

The aws, gcp and tls provider plugins cannot be installed here (the module proxy refuses the
provider modules), so the cloud cases run against toolchain/stub-provider: a PREVIEW-ONLY test
double installed as `pulumi-resource-{aws,gcp,tls}` at the versions of the pinned Python SDKs. It
echoes inputs, reports computed outputs as unknown, answers getAmi/getAvailabilityZones with fake
values and refuses any real create/update. The engine, the language runtime, styx's program and the
policy pack are all real; only the cloud API behind the providers is missing. Policies validate
resource inputs, which the stubs pass through untouched, so what the pack sees is what it would see
with the real providers.

The stubs live in a throwaway PULUMI_HOME (one per test session, with the official command provider
that install-pulumi.sh registered in styx's own PULUMI_HOME copied in), never in styx's own
PULUMI_HOME. The stub binary is built once and cached by a hash of its sources under
$STYX_HOME/toolchain/stub-provider-<hash>/ (seconds with a warm Go build cache, up to ~2 min with a
cold one; later sessions reuse the binary).

Skips (saying why) only when the toolchain (toolchain/install-pulumi.sh) is missing, or when Go is
missing and no stub binary is cached. Each stack lives on a temporary file backend; nothing is ever
created (preview only) and no cloud is contacted.

Toolchain note: the official Python language host (v3.259.0) starts the pack from the folder the
engine sends in RunPluginRequest.info. Each workspace holds a `__main__.py` that fails loudly, so a
host that ran the project's `__main__.py` instead (as the v3.79 host styx used to build did, the
3.259 engine leaving RunPluginRequest.program empty) fails these tests instead of passing by
accident; an inline program never uses that file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policy"
STUB_SRC = ROOT / "toolchain" / "stub-provider"
STUBBED = ("aws", "gcp", "tls")  # packages whose real provider plugin is not installable here

pytestmark = [pytest.mark.engine, pytest.mark.timeout(420)]

WORLD = "styx-no-world-ingress-except-ssh"
RAY = "styx-ray-ports-not-public"


# --------------------------------------------------------------------------- toolchain


def _bin_dir() -> Path:
    from styx.app import engine

    d = engine.toolchain_bin()
    if not (d / "pulumi").exists():
        pytest.skip(f"pulumi CLI not found in {d}: run `bash toolchain/install-pulumi.sh` (or set STYX_PULUMI_BIN_DIR)")
    r = subprocess.run([str(d / "pulumi"), "version"], capture_output=True, text=True, timeout=60, check=False)
    if r.returncode != 0:
        pytest.skip(f"pulumi CLI in {d} does not run: {r.stderr.strip()[-300:]}")
    if not (d / "pulumi-language-python").exists():
        pytest.skip(f"pulumi-language-python missing in {d}: run `bash toolchain/install-pulumi.sh`")
    return d


def _base_env(bin_dir: Path, home: Path | str) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PULUMI_HOME": str(home),
        "PULUMI_CONFIG_PASSPHRASE": "styx-policy-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",  # only what the home holds: never a real provider on PATH
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def sdk_plugin_version(package: str) -> str:
    """The provider version a pinned Python SDK asks the engine for (its pulumi-plugin.json)."""
    spec = importlib.util.find_spec(f"pulumi_{package}")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"pulumi_{package} is not installed")
    meta = json.loads((Path(next(iter(spec.submodule_search_locations))) / "pulumi-plugin.json").read_text())
    return meta["version"]


def stub_sources_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(STUB_SRC.iterdir()):
        if p.name in ("go.mod", "go.sum") or (p.suffix == ".go" and not p.name.endswith("_test.go")):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_stub() -> Path:
    """The stub provider binary, built once per source hash under $STYX_HOME/toolchain/."""
    from styx.app import engine

    out_dir = engine.styx_home() / "toolchain" / f"stub-provider-{stub_sources_hash()}"
    binary = out_dir / "pulumi-resource-stub"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        pytest.skip("go not found: it is needed once to build toolchain/stub-provider (the preview-only stand-in "
                    "for the aws/gcp/tls providers)")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".build-{os.getpid()}"
    env = {**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", "-mod=mod"),
           "GOPROXY": os.environ.get("GOPROXY", "https://proxy.golang.org")}
    r = subprocess.run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "."], cwd=STUB_SRC,
                       env=env, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        pytest.fail(f"building toolchain/stub-provider failed:\n{r.stderr[-3000:]}")
    tmp.replace(binary)
    return binary


def install_plugin(bin_dir: Path, home: Path, name: str, version: str, binary: Path) -> None:
    r = subprocess.run([str(bin_dir / "pulumi"), "plugin", "install", "resource", name, version, "--file", str(binary)],
                       env={**os.environ, **_base_env(bin_dir, home)}, capture_output=True, text=True, timeout=300,
                       check=False)
    if r.returncode != 0:
        pytest.fail(f"pulumi plugin install resource {name} {version} failed: {r.stderr[-2000:]}")


def registered_command(bin_dir: Path) -> Path:
    """The official pulumi-resource-command that install-pulumi.sh registered (styx's PULUMI_HOME, else BIN)."""
    from styx.app import engine

    name = "pulumi-resource-command"
    for p in (engine.pulumi_home() / "plugins" / f"resource-command-v{engine.COMMAND_VERSION}" / name,
              bin_dir / name):
        if p.exists():
            return p
    pytest.skip(f"{name} v{engine.COMMAND_VERSION} not registered in {engine.pulumi_home()}: "
                "run `bash toolchain/install-pulumi.sh`")


@pytest.fixture(scope="session")
def stub_home(tmp_path_factory) -> Path:
    """A throwaway PULUMI_HOME with the aws/gcp/tls stubs and the official command provider."""
    from styx.app import engine

    bin_dir = _bin_dir()
    command = registered_command(bin_dir)
    binary = build_stub()
    home = tmp_path_factory.mktemp("stub-pulumi-home")
    for name in STUBBED:
        install_plugin(bin_dir, home, name, sdk_plugin_version(name), binary)
    install_plugin(bin_dir, home, "command", engine.COMMAND_VERSION, command)
    return home


# --------------------------------------------------------------------------- stacks


def stack_cluster(name: str) -> dict:
    """The `styx:cluster` object of stacks/Pulumi.<name>.yaml."""
    return yaml.safe_load((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())["config"]["styx:cluster"]


def make_stack(tmp: Path, home: Path | str, project: str, program, cluster: dict | None = None):
    from pulumi import automation as auto

    bin_dir = _bin_dir()
    ws_dir = tmp / "ws"
    ws_dir.mkdir()
    (ws_dir / "__main__.py").write_text(  # see the module docstring
        "raise SystemExit('the language host ran the workspace __main__.py instead of the policy pack')\n")
    (tmp / "state").mkdir()
    ws = auto.LocalWorkspace(
        work_dir=str(ws_dir),
        pulumi_home=str(home),
        pulumi_command=auto.PulumiCommand(root=str(bin_dir.parent), skip_version_check=True),
        env_vars=_base_env(bin_dir, home),
        project_settings=auto.ProjectSettings(name=project, runtime="python",
                                              backend=auto.ProjectBackend(url=f"file://{tmp / 'state'}")),
        secrets_provider="passphrase",
        program=program,
    )
    stack = auto.Stack.create_or_select("t", ws)
    if cluster is not None:
        from styx.app import engine

        engine.set_cluster_config(stack, cluster)
    return stack


def styx_program(extra=None):
    """styx's own program (styx.components.program.build), plus `extra(cluster)` registered alongside it."""

    def program():
        import pulumi

        from styx.components.program import build

        cluster = build(pulumi.Config("styx"), ROOT)
        if extra is not None:
            extra(cluster)

    return program


class Preview:
    """One `pulumi preview --policy-pack policy/`: whether it passed, its output, the resource types seen."""

    def __init__(self, stack):
        from pulumi import automation as auto

        self.types: Counter[str] = Counter()
        lines: list[str] = []
        try:
            stack.preview(policy_packs=[str(PACK)], color="never", on_output=lines.append, on_event=self._event)
            self.ok, self.text = True, "\n".join(lines)
        except auto.errors.CommandError as e:
            self.ok, self.text = False, "\n".join(lines) + "\n" + str(e)

    def _event(self, ev) -> None:
        pre = getattr(ev, "resource_pre_event", None)
        if pre is not None:
            self.types[pre.metadata.type] += 1

    def tail(self) -> str:
        return self.text[-4000:]


# --------------------------------------------------------------------------- tests


def test_pack_loads_under_the_engine(tmp_path):
    """A stack with no cloud resource: the engine starts the pack and reports it, without violations."""
    import pulumi

    def program():
        pulumi.export("hello", "world")

    home = tmp_path / "home"  # needs no plugin; styx's own PULUMI_HOME is never written to
    p = Preview(make_stack(tmp_path, home, "nothing", program))
    assert p.ok, p.tail()
    assert "styx-security" in p.text, p.tail()


def assert_passes(p: Preview, expected: dict[str, int]) -> None:
    assert p.ok, p.tail()
    assert "styx-security" in p.text, p.tail()  # the pack ran (Policies: styx-security@v0.1.0)
    assert WORLD not in p.text and RAY not in p.text, p.tail()
    for typ, n in expected.items():
        assert p.types[typ] == n, (typ, dict(p.types), p.tail())


def assert_blocked(p: Preview, resource: str, policies: tuple[str, ...]) -> None:
    assert not p.ok, p.tail()
    assert "mandatory" in p.text.lower(), p.tail()
    assert resource in p.text, p.tail()
    for name in policies:
        assert name in p.text, (name, p.tail())


AWS_GPU = {"aws:ec2/instance:Instance": 3, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 2,
           "aws:ec2/securityGroup:SecurityGroup": 1, "tls:index/privateKey:PrivateKey": 1}
GCP_GPU = {"gcp:compute/instance:Instance": 3, "gcp:compute/firewall:Firewall": 3,
           "gcp:serviceaccount/account:Account": 1, "tls:index/privateKey:PrivateKey": 1}


def test_aws_gpu_stack_passes(tmp_path, stub_home):
    """stacks/Pulumi.aws-gpu.yaml as is: every styx resource previews, the pack finds nothing."""
    assert_passes(Preview(make_stack(tmp_path, stub_home, "styx", styx_program(), stack_cluster("aws-gpu"))), AWS_GPU)


def test_aws_world_open_ray_port_fails(tmp_path, stub_home):
    """A raw rule next to the styx cluster opening Ray's GCS port (6379) to 0.0.0.0/0 blocks the preview."""

    def open_ray_gcs(cluster) -> None:
        import pulumi_aws as aws

        aws.vpc.SecurityGroupIngressRule(
            "ray-gcs-from-anywhere", security_group_id=cluster.extra_outputs["aws_security_group_id"],
            ip_protocol="tcp", from_port=6379, to_port=6379, cidr_ipv4="0.0.0.0/0",
        )

    p = Preview(make_stack(tmp_path, stub_home, "styx", styx_program(open_ray_gcs), stack_cluster("aws-gpu")))
    assert_blocked(p, "ray-gcs-from-anywhere", (RAY, WORLD))


def test_aws_instance_policies_fire(tmp_path, stub_home):
    """An instance without IMDSv2 or encryption next to the styx cluster: both instance policies block it."""

    def legacy_vm(cluster) -> None:
        import pulumi_aws as aws

        aws.ec2.Instance("legacy-vm", ami="ami-0123456789abcdef0", instance_type="m6i.large",
                         metadata_options={"http_tokens": "optional"}, root_block_device={"encrypted": False})

    p = Preview(make_stack(tmp_path, stub_home, "styx", styx_program(legacy_vm), stack_cluster("aws-gpu")))
    assert_blocked(p, "legacy-vm", ("styx-aws-imdsv2-required", "styx-aws-ebs-encrypted"))
    assert WORLD not in p.text and RAY not in p.text, p.tail()  # only the extra instance is at fault


def test_gcp_gpu_stack_passes(tmp_path, stub_home):
    """stacks/Pulumi.gcp-gpu.yaml as is (A2 spot GPU workers, TERMINATE): the pack finds nothing."""
    assert_passes(Preview(make_stack(tmp_path, stub_home, "styx", styx_program(), stack_cluster("gcp-gpu"))), GCP_GPU)


def test_gcp_world_open_dashboard_fails(tmp_path, stub_home):
    """A raw firewall next to the styx cluster opening the Ray dashboard (tcp:8265) to 0.0.0.0/0 blocks it."""

    def open_dashboard(cluster) -> None:
        import pulumi_gcp as gcp

        gcp.compute.Firewall(
            "ray-dashboard-from-anywhere", network=cluster.extra_outputs["network"], direction="INGRESS",
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["8265"])], source_ranges=["0.0.0.0/0"],
        )

    p = Preview(make_stack(tmp_path, stub_home, "styx", styx_program(open_dashboard), stack_cluster("gcp-gpu")))
    assert_blocked(p, "ray-dashboard-from-anywhere", (RAY, WORLD))


def test_gcp_gpu_live_migration_fails(tmp_path, stub_home):
    """A raw A2 (GPU) machine next to the styx cluster set to MIGRATE on host maintenance blocks the preview."""

    def migrating_gpu_vm(cluster) -> None:
        import pulumi_gcp as gcp

        c = gcp.compute
        c.Instance(
            "migrating-gpu-vm", machine_type="a2-highgpu-1g", zone="us-central1-a",
            boot_disk=c.InstanceBootDiskArgs(initialize_params=c.InstanceBootDiskInitializeParamsArgs(
                image="ubuntu-os-cloud/ubuntu-2204-lts")),
            network_interfaces=[c.InstanceNetworkInterfaceArgs(network=cluster.extra_outputs["network"])],
            scheduling=c.InstanceSchedulingArgs(on_host_maintenance="MIGRATE"),
        )

    p = Preview(make_stack(tmp_path, stub_home, "styx", styx_program(migrating_gpu_vm), stack_cluster("gcp-gpu")))
    assert_blocked(p, "migrating-gpu-vm", ("styx-gcp-gpu-terminate-on-maintenance",))
    assert WORLD not in p.text and RAY not in p.text, p.tail()


def test_stub_refuses_up(tmp_path, stub_home):
    """The stubs are preview-only: `up` fails at the first cloud resource with the stub's own message."""
    from pulumi import automation as auto

    def program():
        import pulumi_tls as tls

        tls.PrivateKey("k", algorithm="ED25519")

    stack = make_stack(tmp_path, stub_home, "stub-up", program)
    lines: list[str] = []
    with pytest.raises(auto.errors.CommandError) as e:
        stack.up(color="never", on_output=lines.append)
    text = "\n".join(lines) + "\n" + str(e.value)
    assert "styx stub provider: preview only (the real tls provider is not installable here)" in text, text[-3000:]
