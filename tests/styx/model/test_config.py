"""The config model: every invalid config names its key path, the bad value and what is allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from styx.components.backends import check_cluster
from styx.model.config import ConfigError, json_schema, parse_cluster

ROOT = Path(__file__).resolve().parents[3]

BASE = {"name": "demo", "cloud": "local", "workers": [{"count": 2}]}


def with_(**changes):
    c = copy.deepcopy(BASE)
    for path, value in changes.items():
        cur = c
        parts = path.split("__")
        for p in parts[:-1]:
            cur = cur[int(p)] if p.isdigit() else cur.setdefault(p, {})
        cur[parts[-1]] = value
    return c


# (config, key path expected in the message, words expected in the message)
INVALID = [
    (with_(name="Demo"), "styx:cluster.name", "pattern"),
    (with_(name=""), "styx:cluster.name", "pattern"),
    (with_(name="a" * 40), "styx:cluster.name", "pattern"),
    (with_(cloud="azure"), "styx:cluster.cloud", "'aws', 'gcp', 'kubernetes', 'ssh' or 'local'"),
    (with_(cloud=3), "styx:cluster.cloud", "'aws'"),
    (with_(clod="local"), "styx:cluster.clod", "unknown key; allowed keys here: name, cloud"),
    (with_(workers__0__count=-1), "styx:cluster.workers[0].count", "greater than or equal to 0"),
    (with_(workers__0__count=1001), "styx:cluster.workers[0].count", "less than or equal to 1000"),
    (with_(workers__0__count="two"), "styx:cluster.workers[0].count", "'two'"),
    (with_(workers__0__name="Worker"), "styx:cluster.workers[0].name", "pattern"),
    (with_(workers=[{"name": "w"}, {"name": "w"}]), "styx:cluster", "unique; repeated: ['w']"),
    (with_(workers=[{"name": "head"}]), "styx:cluster", "cannot be named 'head'"),
    (with_(workers__0__disk_size_gb=1), "styx:cluster.workers[0].disk_size_gb", "greater than or equal to 10"),
    (with_(workers__0__spot="sometimes"), "styx:cluster.workers[0].spot", "boolean"),
    (with_(workers__0__instance_type="auto"), "styx:cluster.workers[0]", "needs `resources`"),
    (with_(workers__0__resources={"accelerators": "A100:0"}), "styx:cluster.workers[0].resources.accelerators",
     "count must be >= 1"),
    (with_(workers__0__resources={"accelerators": "A100:x"}), "styx:cluster.workers[0].resources.accelerators",
     "NAME:COUNT"),
    (with_(workers__0__resources={"cpus": "abc"}), "styx:cluster.workers[0].resources.cpus", "N+ (at least N)"),
    (with_(workers__0__resources={"memory": "-4"}), "styx:cluster.workers[0].resources.memory", "not a size"),
    (with_(workers__0__resources={"any_of": ["H100:8", "??"]}), "styx:cluster.workers[0].resources.any_of",
     "not an accelerator"),
    (with_(workers=[{"hosts": ["10.0.0.5"]}]), "styx:cluster.workers[0].hosts", "only allowed for a cloud that adopts"),
    (with_(head={"host": "10.0.0.1"}), "styx:cluster.head.host", "only allowed for a cloud that adopts"),
    (with_(head={"hots": "x"}), "styx:cluster.head.hots", "allowed keys here: instance_type"),
    (with_(ssh={"port": 70000}), "styx:cluster.ssh.port", "less than or equal to 65535"),
    (with_(ssh={"connect_timeout_s": 1}), "styx:cluster.ssh.connect_timeout_s", "greater than or equal to 5"),
    (with_(ssh={"private_key": "x", "private_key_file": "y"}), "styx:cluster.ssh", "not both"),
    (with_(setup={"packages": ["Bad Name"]}), "styx:cluster.setup.packages", "not a Debian package"),
    (with_(setup={"python": {"version": "2.7"}}), "styx:cluster.setup.python.version", "pattern"),
    (with_(setup={"python": {"env_tool": "pipenv"}}), "styx:cluster.setup.python.env_tool",
     "'venv', 'uv' or 'none'"),
    (with_(setup={"python": {"installer": "poetry"}}), "styx:cluster.setup.python.installer", "'uv' or 'pip'"),
    (with_(setup={"python": {"wheel_cache": "on"}}), "styx:cluster.setup.python.wheel_cache", "'auto' or 'off'"),
    (with_(setup={"conda": {"installer_sha256": "abc"}}), "styx:cluster.setup.conda.installer_sha256", "pattern"),
    (with_(setup={"conda": {"enabled": "maybe"}}), "styx:cluster.setup.conda.enabled", "boolean"),
    (with_(setup={"docker": {"mode": "yes"}}), "styx:cluster.setup.docker.mode", "'skip', 'check' or 'install'"),
    (with_(setup={"docker": {"method": "snap"}}), "styx:cluster.setup.docker.method", "'distro' or 'docker-repo'"),
    (with_(setup={"gpu": {"mode": "maybe"}}), "styx:cluster.setup.gpu.mode", "'auto', 'force' or 'skip'"),
    (with_(setup={"gpu": {"driver_version": "latest"}}), "styx:cluster.setup.gpu.driver_version", "pattern"),
    (with_(setup={"gpu": {"cuda_version": "12"}}), "styx:cluster.setup.gpu.cuda_version", "pattern"),
    (with_(setup={"ray": {"version": "latest"}}), "styx:cluster.setup.ray.version", "pattern"),
    (with_(setup={"ray": {"port": 80}}), "styx:cluster.setup.ray.port", "greater than or equal to 1024"),
    (with_(setup={"ray": {"dashboard_port": 6379}}), "styx:cluster.setup.ray", "ports must differ"),
    (with_(setup={"env": {"1BAD": "x"}}), "styx:cluster.setup.env", "not a valid environment variable name"),
    (with_(setup={"env": {"A": {"nested": 1}}}), "styx:cluster.setup.env", "must be a string"),
    (with_(setup={"env": {"A": "1"}, "secret_env": {"A": "2"}}), "styx:cluster.setup", "both env and secret_env"),
    (with_(setup={"workdir": "relative/path"}), "styx:cluster.setup.workdir", "pattern"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "relative"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "is not absolute"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/etc"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "system directory itself"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/usr/local"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "system directory itself"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/opt/app\n/etc"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "control character"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/opt/a/../etc"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "not normalised"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/opt/app/"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "not normalised"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/var/lib/styx/x"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "styx or the system manages"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/proc/1"}]}),
     "styx:cluster.setup.file_mounts[0].remote", "styx or the system manages"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/opt/a"}, {"local": "y", "remote": "/opt/a/b"}]}),
     "styx:cluster.setup", "do not nest"),
    (with_(setup={"file_mounts": [{"local": "x", "remote": "/opt/a", "exclude": ["!keep"]}]}),
     "styx:cluster.setup.file_mounts[0].exclude", "negation"),
    (with_(setup={"timeouts": {"pyhton_env": 60}}),
     "styx:cluster.setup", "unknown phase 'pyhton_env'"),
    (with_(setup={"timeouts": {"ray": 5}}),
     "styx:cluster.setup.timeouts", "from 10 to 86400"),
    (with_(setup={"timeouts": {"ray": True}}),
     "styx:cluster.setup.timeouts", "from 10 to 86400"),
    (with_(setup={"custom_scripts": [{"name": "x"}]}), "styx:cluster.setup.custom_scripts[0]",
     "exactly one of inline or file"),
    (with_(setup={"custom_scripts": [{"name": "a", "inline": "x"}, {"name": "a", "inline": "y"}]}),
     "styx:cluster.setup", "repeated: ['a']"),
    (with_(setup={"custom_scripts": [{"name": "a", "inline": "x", "run_on": "gpu"}]}),
     "styx:cluster.setup.custom_scripts[0].run_on", "'all', 'head' or 'workers'"),
    (with_(setup={"unknown": 1}), "styx:cluster.setup.unknown", "allowed keys here: packages, python"),
    (with_(local={"subnet": "10.77.0.0/33"}), "styx:cluster.local.subnet", "not an IPv4 network"),
    (with_(local={"subnet": "10.77.0.0/30"}), "styx:cluster.local.subnet", "too small"),
    (with_(local={"subnet": "8.8.8.0/24"}), "styx:cluster.local.subnet", "not a private range"),
    (with_(local={"shm_size": "lots"}), "styx:cluster.local.shm_size", "pattern"),
    (with_(local={"group_block": 1}, workers=[{"count": 3}]), "styx:cluster.workers[0].count",
     "exceeds local.group_block"),
    ({"name": "a", "cloud": "ssh"}, "styx:cluster.head.host", "required for cloud ssh"),
    ({"name": "a", "cloud": "ssh", "head": {"host": "h"}, "workers": [{"count": 1}]},
     "styx:cluster.workers[0].hosts", "required for cloud ssh"),
    ({"name": "a", "cloud": "ssh", "head": {"host": "h"}, "workers": [{"count": 2, "hosts": ["x"]}]},
     "styx:cluster.workers[0]", "count is 2 but 1 hosts"),
    ({"name": "a", "cloud": "aws", "head": {"instance_type": "m6i.large"}, "aws": {"ssh_cidrs": ["1.2.3.0/24"]}},
     "styx:cluster.region", "required for cloud aws"),
    ({"name": "a", "cloud": "aws", "region": "us-east-1", "head": {"instance_type": "m6i.large"}},
     "styx:cluster.aws.ssh_cidrs", "never opens SSH to 0.0.0.0/0"),
    ({"name": "a", "cloud": "gcp", "region": "us-central1", "gcp": {"ssh_cidrs": ["1.2.3.0/24"]}},
     "styx:cluster.head.instance_type", "required for cloud gcp"),
    ({"name": "a", "cloud": "aws", "region": "r", "aws": {"ssh_cidrs": ["not-a-cidr"]}},
     "styx:cluster.aws.ssh_cidrs", "not a CIDR"),
    ({"name": "a", "cloud": "aws", "region": "r", "aws": {"subnet_id": "subnet-0abc"}},
     "styx:cluster.aws", "subnet_id needs vpc_id"),
    ({"name": "a", "cloud": "kubernetes", "kubernetes": {"operator": "ray"}},
     "styx:cluster.kubernetes.operator", "'none' or 'kuberay'"),
    ({"name": "a", "cloud": "kubernetes", "kubernetes": {"service_type": "External"}},
     "styx:cluster.kubernetes.service_type", "'ClusterIP'"),
    ({"cloud": "local"}, "styx:cluster.name", "required, but missing"),
    ({"name": "a"}, "styx:cluster.cloud", "required, but missing"),
    (None, "styx:cluster", "missing"),
    ("just a string", "styx:cluster", "expected a mapping"),
    (with_(workers="two"), "styx:cluster.workers", "'two'"),
]


@pytest.mark.parametrize(("raw", "path", "words"), INVALID, ids=[f"{i:02d}-{c[1]}" for i, c in enumerate(INVALID)])
def test_invalid_config_names_key_and_problem(raw, path, words):
    with pytest.raises(ConfigError) as e:
        check_cluster(raw)  # the model, then the cloud's rules (Backend.config_problems)
    msg = str(e.value)
    line = next((ln for ln in e.value.problems if ln.startswith(path)), None)
    assert line is not None, f"no problem line starts with {path!r}: {msg}"
    assert words in line, f"{words!r} not in {line!r}"
    assert "Traceback" not in msg


def test_at_least_forty_invalid_cases():
    assert len(INVALID) >= 40


def test_bad_value_is_shown():
    with pytest.raises(ConfigError) as e:
        parse_cluster(with_(workers__0__count=-7))
    assert "-7" in str(e.value)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as e:
        parse_cluster({"name": "X", "cloud": "nope", "workers": [{"count": -1}]})
    assert len(e.value.problems) == 3


def test_valid_local_stack_file_parses():
    import yaml

    raw = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]["styx:cluster"]
    cfg = parse_cluster(raw)
    assert [n for n, *_ in cfg.nodes()] == ["head", "worker-0", "worker-1"]
    assert cfg.setup.ray.usage_stats is False


def test_every_example_stack_parses():
    import yaml

    for f in sorted((ROOT / "stacks").glob("Pulumi.*.yaml")):
        raw = yaml.safe_load(f.read_text())["config"]["styx:cluster"]
        check_cluster(raw)


def test_ssh_hosts_accept_strings_and_set_count():
    cfg = parse_cluster({"name": "a", "cloud": "ssh", "head": {"host": "10.0.0.1"},
                         "workers": [{"hosts": ["10.0.0.2", {"host": "10.0.0.3", "port": 2222}]}]})
    assert cfg.workers[0].count == 2
    assert cfg.workers[0].hosts[1].port == 2222


def test_schema_file_is_current():
    """stacks/schema.json is generated from the model: `python -m styx.model.schema > stacks/schema.json`."""
    on_disk = json.loads((ROOT / "stacks" / "schema.json").read_text())
    assert on_disk == json_schema(), "stacks/schema.json is stale: run `python -m styx.model.schema --write`"


def test_readme_config_reference_is_current():
    """The README's config reference is generated: `python -m styx.model.schema --markdown`."""
    from styx.model.schema import markdown

    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- config-reference:start -->\n") + len("<!-- config-reference:start -->\n")
    end = readme.index("<!-- config-reference:end -->")
    assert readme[start:end] == markdown(), "README config reference is stale: regenerate it"
