"""The program (`styx.components.program.build`, what `pulumi preview/up` runs) under Pulumi mocks rejects
every invalid config of tests/validation_cases.py with the same line as `styx validate`, before it
registers anything: one pulumi.RunError, no traceback."""

from __future__ import annotations

import pulumi
import pytest
from validation_cases import BASES, CASES, CATALOG, Case, line_for


@pytest.fixture(autouse=True)
def _catalog(monkeypatch):
    monkeypatch.setenv("STYX_CATALOG_DIR", str(CATALOG))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_program_rejects_before_registering(case: Case, program, monkeypatch):
    from styx.components import program as prog

    registered = []
    real = prog.Cluster
    monkeypatch.setattr(prog, "Cluster", lambda *a, **kw: registered.append(a) or real(*a, **kw))
    with pytest.raises(pulumi.RunError) as e:
        program(case.config())
    lines = [ln.strip() for ln in str(e.value).splitlines()]
    assert lines[0] == "invalid styx:cluster:"
    assert line_for(case, lines[1:]), lines
    assert len(lines) == len(set(lines))
    assert registered == []


@pytest.mark.parametrize("cloud", ["kubernetes", "local", "ssh"])  # aws/gcp need cloud-aware mocks: their tests
def test_the_bases_build(cloud, program):
    assert program(BASES[cloud]).resources
