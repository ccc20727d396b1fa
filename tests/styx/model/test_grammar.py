"""styx.model.grammar: one parser of `A100:8` and of sizes, used by the config, the optimizer, phases and backends."""

from __future__ import annotations

import pytest

from styx.model.config import ConfigError, parse_cluster
from styx.model.grammar import Accelerator, Quantity, RequestError, parse_accelerator, parse_size
from styx.model.optimizer import AcceleratorSpec, parse_request

# --------------------------------------------------------------------------- accelerators


@pytest.mark.parametrize(
    ("raw", "name", "count"),
    [
        ("A100:8", "A100", 8),
        ("A100", "A100", 1),  # a bare name is one GPU, everywhere
        ("a100", "A100", 1),  # known names take the catalog's spelling
        ("h100:8", "H100", 8),
        ("a100-80gb:4", "A100-80GB", 4),
        ("h100-mega:8", "H100-MEGA", 8),
        ("rtxpro6000:1", "RTXPRO6000", 1),
        (" A100 : 2 ", "A100", 2),
        ("A100:8.0", "A100", 8),
        ("T4:0.5", "T4", 0.5),  # fractional counts parse (some catalogs sell them); backends refuse them
        ("SomeNewGPU:2", "SomeNewGPU", 2),  # unknown names are kept as written (the catalog decides)
        ("nvidia-tesla-t4:1", "nvidia-tesla-t4", 1),
    ],
)
def test_accelerator_parses(raw, name, count):
    a = parse_accelerator(raw)
    assert (a.name, a.count) == (name, count)
    assert type(a.count) is type(count)
    assert str(a) == f"{name}:{count}"
    assert AcceleratorSpec.parse(raw) == a  # the optimizer's name for the same thing


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("A100:0", "greater than 0"),
        ("A100:-1", "greater than 0"),
        ("A100:abc", "is not a number"),
        ("A100:", "is not a number"),
        (":8", "is not an accelerator"),
        ("", "is not an accelerator"),
        ("A100:8:1", "is not a number"),
        ("A 100", "is not an accelerator"),
        (8, "is not an accelerator"),
        (None, "is not an accelerator"),
        ("A100:inf", "greater than 0"),
    ],
)
def test_accelerator_errors_name_what_is_allowed(raw, words):
    with pytest.raises(RequestError) as ei:
        parse_accelerator(raw, "workers[0].accelerators")
    e = ei.value
    assert e.field == "workers[0].accelerators"
    assert words in str(e)
    assert "NAME or NAME:COUNT" in str(e) and "A100 = A100:1" in str(e)


@pytest.mark.parametrize(("raw", "words"), [("A100:0.5", "whole number"), ("A100:0", "must be >= 1")])
def test_whole_counts_for_what_a_backend_creates(raw, words):
    with pytest.raises(RequestError, match=words):
        parse_accelerator(raw, whole=True)
    assert parse_accelerator("A100:2.0", whole=True) == Accelerator("A100", 2)


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("field", "raw", "value", "at_least", "per_cpu", "canonical"),
    [
        ("cpus", "8", 8.0, False, False, "8"),
        ("cpus", "8+", 8.0, True, False, "8+"),
        ("cpus", 8, 8.0, False, False, "8"),
        ("cpus", "0.5", 0.5, False, False, "0.5"),
        ("cpus", " 96 + ", 96.0, True, False, "96+"),
        ("memory", "16", 16.0, False, False, "16"),
        ("memory", "16GB", 16.0, False, False, "16"),
        ("memory", "16G", 16.0, False, False, "16"),
        ("memory", "16gib", 16.0, False, False, "16"),
        ("memory", "16Gi+", 16.0, True, False, "16+"),
        ("memory", "1000GB+", 1000.0, True, False, "1000+"),
        ("memory", "4x", 4.0, True, True, "4x"),
        ("head.memory", "64GB", 64.0, False, False, "64"),  # the field's last part decides the rules
    ],
)
def test_sizes_parse(field, raw, value, at_least, per_cpu, canonical):
    q = parse_size(raw, field)
    assert (q.value, q.at_least, q.per_cpu) == (value, at_least, per_cpu)
    assert str(q) == canonical
    assert q == Quantity(value, at_least, per_cpu)


@pytest.mark.parametrize(
    ("field", "raw", "words"),
    [
        ("cpus", "abc", "is not a size"),
        ("cpus", "0", "greater than 0"),
        ("cpus", "-8", "is not a size"),
        ("cpus", "8x", "only for memory"),
        ("cpus", "8GB", "a unit is only for memory"),
        ("cpus", True, "is not a number"),
        ("memory", "64TB", "is not a size"),
        ("memory", "4GBx", "without a unit"),
        ("memory", "+", "is not a size"),
    ],
)
def test_size_errors_name_what_is_allowed(field, raw, words):
    with pytest.raises(RequestError) as ei:
        parse_size(raw, field)
    assert ei.value.field == field and words in str(ei.value)
    assert "N+ (at least N)" in str(ei.value)
    assert ("GiB per vCPU" in str(ei.value)) == (field == "memory")


# --------------------------------------------------------------------------- one meaning everywhere


def test_config_and_optimizer_read_the_same_request():
    cfg = parse_cluster({"name": "demo", "cloud": "local", "workers": [
        {"count": 1, "resources": {"accelerators": "a100", "cpus": "8+", "memory": "64GB+"}}]})
    res = cfg.workers[0].resources
    assert (res.accelerators, res.cpus, res.memory) == ("A100:1", "8+", "64+")  # stored canonical
    assert res.accelerator() == Accelerator("A100", 1)
    g = parse_request({"accelerators": "a100", "cpus": "8+", "memory": "64GB+"}).groups[0]
    assert g.accelerators == (res.accelerator(),)
    assert (g.cpus, g.memory) == (res.cpu_size(), res.memory_size())


@pytest.mark.parametrize(
    ("resources", "key", "words"),
    [
        ({"accelerators": "A100:0"}, "resources.accelerators", "count must be >= 1"),
        ({"accelerators": "A100:0.5"}, "resources.accelerators", "whole number"),
        ({"any_of": ["H100:8", "A100:x"]}, "resources.any_of", "is not a number"),
        ({"cpus": "0"}, "resources.cpus", "greater than 0"),
        ({"memory": "64TB"}, "resources.memory", "G/GB/Gi/GiB"),
    ],
)
def test_config_errors_come_from_the_grammar(resources, key, words):
    with pytest.raises(ConfigError) as ei:
        parse_cluster({"name": "demo", "cloud": "local", "workers": [{"count": 1, "resources": resources}]})
    text = str(ei.value)
    assert f"styx:cluster.workers[0].{key}" in text and words in text
