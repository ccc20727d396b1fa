"""The Python API (styx.app.api, also `import styx`) against the fake engine: typed results, the same
validation and failover as the CLI (which is built on it), errors as StyxError with code and problems."""

from __future__ import annotations

import pytest
from cli_fakes import capacity_in, local_cluster

import styx
from styx.app import api


def test_the_api_is_importable_from_styx():
    assert styx.launch is api.launch and styx.StyxError is api.StyxError
    with pytest.raises(AttributeError):
        _ = styx.nothing_here


def test_launch_a_dict_returns_a_typed_result(fake_engine):
    r = styx.launch(local_cluster("apione"), on_info=lambda m: None)
    assert isinstance(r, styx.LaunchResult) and r.ok and r.stack == "apione" and r.cluster == "apione"
    assert [n["name"] for n in r.outputs["nodes"]] == ["head", "worker-0"]
    assert "ssh_private_key" not in r.outputs
    assert r.changes["create"] > 0 and r.phases["worker-0"]["custom-hello"] == "done"
    assert [a["result"] for a in r.attempts] == ["ok"] and r.placement["cloud"] == "local"
    again = styx.launch(local_cluster("apione"), on_info=lambda m: None)
    assert set(again.changes) == {"same"}


def test_launch_overrides_like_the_cli_flags(fake_engine):
    r = styx.launch(local_cluster("apiflags"), overrides={"workers": 3, "no_ray": True}, on_info=lambda m: None)
    assert [n["name"] for n in r.outputs["nodes"]] == ["head", "worker-0", "worker-1", "worker-2"]


def test_a_bad_config_raises_before_anything_exists(fake_engine):
    bad = local_cluster("apibad", workers=0)
    bad["workers"] = [{"name": "worker", "count": True}]
    with pytest.raises(styx.StyxError) as e:
        styx.launch(bad, on_info=lambda m: None)
    assert e.value.code == 2 and any("styx:cluster.workers[0].count" in p for p in e.value.problems)
    assert fake_engine.stacks == {}


def test_capacity_failover_and_its_attempts(fake_engine):
    fake_engine.up_fns = [capacity_in({"zone-a"})]
    notes: list[str] = []
    r = styx.launch(local_cluster("apicap"), on_info=notes.append)
    assert [a["result"] for a in r.attempts] == ["capacity", "ok"] and r.placement["zone"] == "zone-b"
    assert any("capacity error" in n for n in notes)


def test_a_failed_launch_raises_with_what_is_known(fake_engine):
    fake_engine.up_fns = [capacity_in({"zone-a", "zone-b"})]
    with pytest.raises(styx.StyxError) as e:
        styx.launch(local_cluster("apifail"), failover=False, on_info=lambda m: None)
    assert e.value.code == 1 and e.value.data["attempts"][0]["result"] == "capacity"


def test_preview_status_and_down(fake_engine):
    styx.launch(local_cluster("apiall"), on_info=lambda m: None)
    p = styx.preview(stack="apiall")
    assert isinstance(p, styx.PreviewResult) and p.stack == "apiall"
    [st] = styx.status("apiall", ray=False)
    assert isinstance(st, styx.ClusterStatus) and st.state == "up" and st.cloud == "local"
    assert [(n.name, n.ready, n.phases["custom-hello"]) for n in st.nodes] == [("head", True, "ok"),
                                                                              ("worker-0", True, "ok")]
    d = styx.down("apiall", on_info=lambda m: None)
    assert isinstance(d, styx.DownResult) and d.removed and "apiall" not in fake_engine.stacks


def test_exec_captures_exit_code_and_output(fake_engine, fake_ssh):
    styx.launch(local_cluster("apiexec"), on_info=lambda m: None)
    r = styx.exec("apiexec", "echo out; echo err >&2; exit 3")
    assert isinstance(r, styx.ExecResult) and (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert not r.ok and r.node == "head"
    r = styx.exec("apiexec", ["printf", "%s|", "a b", "c"], node="worker-0")
    assert r.ok and r.stdout == "a b|c|" and r.node == "worker-0"
