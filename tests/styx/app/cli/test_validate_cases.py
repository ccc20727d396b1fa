"""`styx validate` on every invalid config of tests/validation_cases.py: exit 2, one line per problem
naming the key path, the bad value and what is allowed; and the warnings (stderr, exit 0)."""

from __future__ import annotations

import copy

import pytest
import yaml
from click.testing import CliRunner
from validation_cases import BASES, CASES, CATALOG, Case, line_for, merge

from styx.app.cli import main


@pytest.fixture(autouse=True)
def _catalog(monkeypatch):
    monkeypatch.setenv("STYX_CATALOG_DIR", str(CATALOG))


def _validate(tmp_path, cluster) -> tuple[int, list[str]]:
    f = tmp_path / "cluster.yaml"
    f.write_text(yaml.safe_dump(cluster, sort_keys=False))
    r = CliRunner().invoke(main, ["validate", str(f)])
    return r.exit_code, r.stderr.splitlines()


def test_enough_cases_on_every_cloud():
    assert len(CASES) >= 120
    assert {c.cloud for c in CASES} == set(BASES)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("cloud", sorted(BASES))
def test_the_bases_are_valid(cloud, tmp_path):
    code, err = _validate(tmp_path, BASES[cloud])
    assert code == 0, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_config_exits_2_with_one_line_per_problem(case: Case, tmp_path):
    code, err = _validate(tmp_path, case.config())
    assert code == 2, err
    assert line_for(case, err), err
    assert len(err) == len(set(err)), f"a problem printed twice: {err}"


def test_catalog_missing_is_a_warning_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STYX_CATALOG_DIR", str(tmp_path / "none"))
    cluster = merge(copy.deepcopy(BASES["aws"]), {"region": "us-east-9", "zone": "us-east-9a",
                                         "head": {"instance_type": "m7z.huge"}})
    code, err = _validate(tmp_path, cluster)
    assert code == 0, err
    assert any(ln.startswith("warning: styx:cluster: no instance catalog for aws") for ln in err), err


def test_allow_unlisted_accepts_a_type_the_catalog_does_not_list(tmp_path):
    code, err = _validate(tmp_path, merge(copy.deepcopy(BASES["aws"]), {"head": {"instance_type": "m8i.2xlarge"}}))
    assert code == 2 and "allow_unlisted: true" in "\n".join(err)
    code, err = _validate(tmp_path, merge(copy.deepcopy(BASES["aws"]), {"head": {"instance_type": "m8i.2xlarge",
                                                                         "allow_unlisted": True}}))
    assert code == 0, err


@pytest.mark.parametrize(("cloud", "overrides", "needle"), [
    ("aws", {"aws": {"ssh_cidrs": ["0.0.0.0/0"]}}, "warning: styx:cluster.aws.ssh_cidrs: 0.0.0.0/0 opens SSH"),
    ("gcp", {"gcp": {"ssh_cidrs": ["::/0"]}}, "warning: styx:cluster.gcp.ssh_cidrs: ::/0 opens SSH"),
    ("local", {"setup": {"ray": {"extra_start_args": ["--dashboard-host=0.0.0.0"]}}},
     "warning: styx:cluster.setup.ray.extra_start_args: --dashboard-host=0.0.0.0"),
    ("ssh", {"setup": {"secret_env": {"TOKEN": "plain"}}},
     "warning: styx:cluster.setup.secret_env.TOKEN is plain text"),
])
def test_warnings_go_to_stderr_and_exit_0(cloud, overrides, needle, tmp_path):
    code, err = _validate(tmp_path, merge(copy.deepcopy(BASES[cloud]), overrides))
    assert code == 0, err
    assert sum(ln.startswith(needle) for ln in err) == 1, err
