"""Spot recovery (issue 16 part 5) under fakes: `styx status` and `styx launch` find a preempted spot
node (its machine refreshed away: an AWS instance terminated, a GCP VM deleted), and the next `up`
makes it again with all its phases (their undos dropped: nothing is left to dial)."""

from __future__ import annotations

import copy

from test_power import AWS, EngineSession, _deployment, _urn

from styx.app import api
from styx.app.session import OpResult

SPOT = {**AWS, "workers": [{"name": "worker", "count": 1, "instance_type": "m6i.large", "spot": True}]}
WORKER = _urn("aws:ec2/instance:Instance", "ssx-worker-0")
HEAD = _urn("aws:ec2/instance:Instance", "ssx-head")


class CloudSession(EngineSession):
    """A state whose refresh drops the machines in `terminated` (the provider reads them as gone)."""

    def __init__(self, terminated=()):
        super().__init__()
        self.dep = _deployment()
        for r in self.dep["resources"]:
            if r["type"] == "command:remote:Command":
                r["inputs"]["delete"] = "exec undo"
        self.terminated = set(terminated)
        self.imported = None

    def deployment(self):
        return copy.deepcopy(self.dep)

    def refresh(self, target=None):
        self.calls.append(("refresh", sorted(target or [])))
        self.dep["resources"] = [r for r in self.dep["resources"]
                                 if not (r["urn"] in set(target or []) and r["urn"] in self.terminated)]
        return OpResult(True)

    def edit_state(self, edit):
        dep = copy.deepcopy(self.dep)
        done = edit(dep)
        if done:
            self.imported = dep
            self.dep = copy.deepcopy(dep)
        return done


def test_status_refreshes_only_the_spot_machines_and_names_the_preempted():
    s = CloudSession(terminated={WORKER})
    assert api.preempted(s, SPOT) == ["worker-0"]
    assert s.calls == [("refresh", [WORKER])]  # the head (on demand) is not read
    # the gone node's phase keeps no undo: the next launch makes the machine again and runs its phases
    ray = next(r for r in s.dep["resources"] if r["urn"].endswith("ssx-worker-0-ray"))
    assert "delete" not in ray["inputs"]
    head_ray = next(r for r in s.dep["resources"] if r["urn"].endswith("ssx-head-ray"))
    assert head_ray["inputs"]["delete"] == "exec undo"


def test_status_of_a_cluster_without_spot_reads_nothing():
    s = CloudSession(terminated={WORKER})
    assert api.preempted(s, AWS) == [] and s.calls == []
    assert api.preempted(CloudSession(), SPOT) == []  # every spot machine still there


def test_launch_refreshes_every_machine_and_remakes_the_terminated_one():
    s = CloudSession(terminated={WORKER})
    seen = []
    assert api._machines_gone(s, SPOT, seen.append) == []  # nothing to --replace: the machine left the state
    assert s.calls == [("refresh", sorted([HEAD, WORKER]))]
    assert any("worker-0 gone outside Pulumi" in m for m in seen)
    assert s.imported is not None
