"""The styx policy pack: `pulumi preview --policy-pack policy/` (run with the project's virtualenv active)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulumi_policy import EnforcementLevel, PolicyPack
from styx_policy.policies import PACK_NAME, policies

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
    description="styx cluster invariants: no world ingress but SSH, Ray never public, IMDSv2, encrypted EBS, "
    "GCP GPU machines terminate on host maintenance.",
)
