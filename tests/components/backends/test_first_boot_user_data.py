"""setup.first_boot on the clouds under Pulumi mocks: what each node's user data carries, what never goes in, its
size against EC2's limit, and that a config edit replaces no instance (AWS and GCP are never contacted)."""

from __future__ import annotations

import base64
import json

import mocking
import pytest
import yaml
from test_aws_mocks import INSTANCE as AWS_INSTANCE
from test_aws_mocks import aws_cluster, user_data_of
from test_gcp_mocks import INSTANCE as GCP_INSTANCE
from test_gcp_mocks import gcp_cluster, gcp_runner

from styx.components.backends import check_cluster
from styx.components.first_boot import AWS_USER_DATA_LIMIT, BOOT_DIR
from styx.model.config import ConfigError

URL = "https://user:s3cr3t-token@pypi.example.com/simple"


@pytest.fixture
def gcp_program(monkeypatch, tmp_path):
    yield from gcp_runner(monkeypatch, tmp_path)


def _aws(run) -> dict[str, str]:
    return {r.name: user_data_of(r) for r in run.of_type(AWS_INSTANCE)}


def _gcp(rec) -> dict[str, str]:
    return {r.name: r.inputs["metadata"]["user-data"] for r in rec.of_type(GCP_INSTANCE)}


def _jobs(ud: str) -> list[str]:
    return yaml.safe_load(ud).get("runcmd", [[None, None]])[0][2:]


def test_aws_user_data_per_role_gzipped_under_the_limit(aws_program):
    run = aws_program(aws_cluster())
    for r in run.of_type(AWS_INSTANCE):
        assert "userData" not in r.inputs and mocking.is_secret_input(r.raw["userDataBase64"])
        assert len(base64.b64decode(r.inputs["userDataBase64"])) < AWS_USER_DATA_LIMIT, r.name
    uds = _aws(run)
    assert _jobs(uds["demo-head"]) == ["apt", "wheel_cache"]
    assert _jobs(uds["demo-gpu-0"]) == ["apt"] and _jobs(uds["demo-gpu-1"]) == ["apt"]
    for ud in uds.values():
        cc = yaml.safe_load(ud)
        assert cc["ssh_keys"]["ed25519_public"].startswith("ssh-ed25519 ")  # the host key as before
        assert f"{BOOT_DIR}/apt.pending" in [f["path"] for f in cc["write_files"]]


def test_aws_many_packages_still_under_the_limit(aws_program):
    many = {"packages": [f"lib{i:03d}-dev" for i in range(120)],
            "python": {"pip_packages": [f"package-{i:02d}=={i}.0.1" for i in range(60)]}}
    run = aws_program(aws_cluster(setup=many))
    for r in run.of_type(AWS_INSTANCE):
        assert len(base64.b64decode(r.inputs["userDataBase64"])) < AWS_USER_DATA_LIMIT, r.name


def test_aws_too_big_is_a_clear_error_before_anything_is_created():
    huge = {"packages": [f"p{i:05d}-{'x' * (i % 7)}" for i in range(4000)]}
    with pytest.raises(ConfigError, match=r"styx:cluster\.setup\.first_boot: the user data of a head would be "
                       r"about \d+ bytes gzipped, over the cloud's limit of 16384 \(allowed: fewer setup\.packages"):
        check_cluster(aws_cluster(setup=huge))
    check_cluster(aws_cluster(setup={**huge, "first_boot": "off"}))  # off: only the host key


HOST_KEY_ONLY = {"ssh_deletekeys", "ssh_genkeytypes", "ssh_keys"}
SECRETS = {"packages": ["jq"], "python": {"index_url": URL}, "secret_env": {"API_KEY": "hunter2-xyz"}}


def _no_secrets(uds: dict[str, str]) -> None:
    for name, ud in uds.items():
        assert _jobs(ud) == ["apt"], name  # no wheel fill with an index_url
        for s in ("s3cr3t-token", "pypi.example.com", "hunter2-xyz", "API_KEY"):
            assert s not in ud, (name, s)


def test_aws_off_is_only_the_host_key(aws_program):
    run = aws_program(aws_cluster(setup={"packages": ["jq"], "first_boot": "off"}))
    for r in run.of_type(AWS_INSTANCE):
        assert "userDataBase64" not in r.inputs and mocking.is_secret_input(r.raw["userData"])
        assert set(yaml.safe_load(r.inputs["userData"])) == HOST_KEY_ONLY


def test_gcp_off_is_only_the_host_key(gcp_program):
    for ud in _gcp(gcp_program(gcp_cluster(setup={"packages": ["jq"], "first_boot": "off"}))).values():
        assert set(yaml.safe_load(ud)) == HOST_KEY_ONLY


def test_aws_index_url_and_secret_env_never_in_user_data(aws_program):
    _no_secrets(_aws(aws_program(aws_cluster(setup=SECRETS))))


def test_gcp_index_url_and_secret_env_never_in_user_data(gcp_program):
    _no_secrets(_gcp(gcp_program(gcp_cluster(setup=SECRETS))))


def test_gcp_user_data_per_role(gcp_program):
    uds = _gcp(gcp_program(gcp_cluster()))
    assert _jobs(uds["demo-head"]) == ["apt", "wheel_cache"]
    assert _jobs(uds["demo-gpu-0"]) == ["apt"]


def _same_but(a: dict, b: dict, *skip: str) -> bool:
    return json.dumps({k: v for k, v in a.items() if k not in skip}, sort_keys=True, default=str) == \
        json.dumps({k: v for k, v in b.items() if k not in skip}, sort_keys=True, default=str)


def test_aws_a_config_edit_replaces_no_instance(aws_program):
    # AWS: user data is in ignore_changes (never an update, never a replace); nothing else of the instance changes
    a = aws_program(aws_cluster(setup={"packages": ["jq"]}))
    b = aws_program(aws_cluster(setup={"packages": ["jq", "htop"], "first_boot": "off"}))
    bs = {r.name: r for r in b.of_type(AWS_INSTANCE)}
    for r in a.of_type(AWS_INSTANCE):
        other = bs[r.name]
        assert {"userData", "userDataBase64"} <= set(a.graph.get(r.name).ignore_changes)
        assert _same_but(r.inputs, other.inputs, "userData", "userDataBase64"), r.name
    # a no-op: the same bytes (gzip without a timestamp)
    again = aws_program(aws_cluster(setup={"packages": ["jq"]}))
    assert {r.name: r.inputs["userDataBase64"] for r in again.of_type(AWS_INSTANCE)} == \
        {r.name: r.inputs["userDataBase64"] for r in a.of_type(AWS_INSTANCE)}


def test_gcp_a_config_edit_replaces_no_instance(gcp_program):
    # GCP: the user data is a metadata value, not a replace_on_changes key: an update in place, nothing else changes
    a = gcp_program(gcp_cluster(setup={"packages": ["jq"]}))
    b = gcp_program(gcp_cluster(setup={"packages": ["jq", "htop"]}))
    bs = {r.name: r.inputs for r in b.of_type(GCP_INSTANCE)}
    for r in a.of_type(GCP_INSTANCE):
        other = bs[r.name]
        assert r.inputs["metadata"]["user-data"] != other["metadata"]["user-data"]
        assert _same_but(r.inputs["metadata"], other["metadata"], "user-data")
        assert _same_but(r.inputs, other, "metadata"), r.name
