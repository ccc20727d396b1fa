"""Mocks and helpers for the gcp backend tests (GCP cannot be reached here). No tests in this module.

The shared mocks (tests/mocking.py) echo inputs back as outputs; the gcp backend also needs what GCP computes
(an instance's numeric id and addresses, a service account's email, the generated key's public half).
`gcp_program` swaps in mocks that add those, and stub setup scripts for any the phase table names
but `setup_scripts/` does not have yet.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import mocking
import pulumi

from styx.components import phases

PROJECT = "demo-project"
INSTANCE = "gcp:compute/instance:Instance"
FIREWALL = "gcp:compute/firewall:Firewall"
NETWORK = "gcp:compute/network:Network"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
ACCOUNT = "gcp:serviceaccount/account:Account"
ADDRESS = "gcp:compute/address:Address"
REMOTE = "command:remote:Command"


def gcp_cluster(**overrides: Any) -> dict[str, Any]:
    """1 head n2-standard-8 + 2 A100:8 spot workers on a2-highgpu-8g (the issue's example)."""
    base: dict[str, Any] = {
        "name": "demo",
        "cloud": "gcp",
        "region": "us-central1",
        "zone": "us-central1-a",
        "head": {"instance_type": "n2-standard-8"},
        "workers": [{
            "name": "gpu", "count": 2, "instance_type": "a2-highgpu-8g", "spot": True,
            "resources": {"accelerators": "A100:8"},
        }],
        "gcp": {"ssh_cidrs": ["203.0.113.0/24"]},
        "setup": {"packages": ["jq"]},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return base


class _Ids:
    """Stable per-name addresses; `seed` changes every instance id (a "replaced" VM); `ephemeral` every
    ephemeral external IP (a "started" VM: GCE gives a stopped VM a new one when it runs again)."""

    def __init__(self) -> None:
        self.hosts: dict[str, int] = {}
        self.next = itertools.count(2)
        self.seed = 0
        self.ephemeral = 0

    def host(self, name: str) -> int:
        if name not in self.hosts:
            self.hosts[name] = next(self.next)
        return self.hosts[name]

    def instance_id(self, name: str) -> str:
        h = int(hashlib.sha256(f"{self.seed}/{name}".encode()).hexdigest()[:12], 16)
        return str(h)


IDS = _Ids()


def _enrich(typ: str, name: str, inputs: dict[str, Any], outs: dict[str, Any]) -> None:
    """Fill in what GCP computes (wire names, camelCase)."""
    if typ == "tls:index/privateKey:PrivateKey":
        outs["privateKeyOpenssh"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nMOCK\n-----END OPENSSH PRIVATE KEY-----\n"
        outs["publicKeyOpenssh"] = "ssh-ed25519 AAAAMOCKGCP styx\n"
    elif typ == NETWORK:
        outs["selfLink"] = f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/networks/{inputs['name']}"
    elif typ == SUBNETWORK:
        outs["selfLink"] = (f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/regions/"
                            f"{inputs.get('region')}/subnetworks/{inputs['name']}")
    elif typ == ACCOUNT:
        outs["email"] = f"{inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"
        outs["project"] = PROJECT
    elif typ == INSTANCE:
        n = IDS.host(name) % 250 + 2
        outs["instanceId"] = IDS.instance_id(name)
        outs["selfLink"] = (f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/"
                            f"{inputs.get('zone')}/instances/{inputs['name']}")
        nics = [dict(nic) for nic in inputs.get("networkInterfaces", [])]
        nics[0]["networkIp"] = f"10.43.0.{n}"
        nics[0]["accessConfigs"] = [{**dict(ac), "natIp": dict(ac).get("natIp") or f"34.1.{IDS.ephemeral}.{n}"}
                                    for ac in nics[0].get("accessConfigs", [])]
        outs["networkInterfaces"] = nics
    elif typ == ADDRESS:  # a reserved address: stable per name
        outs["address"] = f"35.2.0.{int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) % 250 + 1}"
        outs["selfLink"] = (f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/regions/"
                            f"{inputs.get('region')}/addresses/{inputs['name']}")


def make_gcp_mocks(rec: mocking.Recorder, base_factory: Callable[[mocking.Recorder], Any]):
    base = base_factory(rec)

    class GcpMocks(type(base)):  # type: ignore[misc]
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            rid, outs = super().new_resource(args)
            _enrich(args.typ, args.name, dict(args.inputs), outs)
            return [rid, outs]

        def call(self, args: pulumi.runtime.MockCallArgs):
            return {}

    return GcpMocks()


def gcp_runner(monkeypatch, tmp_path):
    """Body of the `gcp_program` fixture: yields run(cluster_dict) -> Recorder under GCP-aware mocks."""
    phases.script_text.cache_clear()
    orig = mocking.make_mocks
    monkeypatch.setattr(mocking, "make_mocks", lambda rec: make_gcp_mocks(rec, orig))

    def run(cluster: dict[str, Any], **kw: Any) -> mocking.Recorder:
        return mocking.run_program(json.loads(json.dumps(cluster)), **kw)

    yield run
    phases.script_text.cache_clear()


def by_name(rec: mocking.Recorder, typ: str) -> dict[str, mocking.Registered]:
    return {r.name: r for r in rec.of_type(typ)}
