"""The pack's policies: thin wrappers that feed a resource's props to the plain check functions.

Adding a cloud: register its ingress extractors in INGRESS_EXTRACTORS (the network policies then
cover it) and add one entry to RESOURCE_CHECKS per instance-level invariant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from styx_policy import aws, gcp
from styx_policy.net import DEFAULT_RAY_PORTS, INGRESS_EXTRACTORS, ray_port_problems, world_ingress_problems

PACK_NAME = "styx-security"


def ingress_of(resource_type: str, props: Mapping):
    extract = INGRESS_EXTRACTORS.get(resource_type)
    return extract(props) if extract else []


def world_ingress(resource_type: str, props: Mapping, config: Mapping | None = None) -> list[str]:
    return [p for rule in ingress_of(resource_type, props) for p in world_ingress_problems(rule)]


def ray_ports(resource_type: str, props: Mapping, config: Mapping | None = None) -> list[str]:
    ports = (config or {}).get("rayPorts") or DEFAULT_RAY_PORTS
    return [p for rule in ingress_of(resource_type, props) for p in ray_port_problems(rule, ports)]


def imdsv2(resource_type: str, props: Mapping, config: Mapping | None = None) -> list[str]:
    return aws.imdsv2_problems(resource_type, props)


def ebs_encrypted(resource_type: str, props: Mapping, config: Mapping | None = None) -> list[str]:
    return aws.ebs_encryption_problems(resource_type, props)


def gpu_terminate(resource_type: str, props: Mapping, config: Mapping | None = None) -> list[str]:
    return gcp.gpu_maintenance_problems(resource_type, props)


Check = Callable[[str, Mapping, Mapping | None], list[str]]

# policy name -> (description, check, config schema)
RESOURCE_CHECKS: dict[str, tuple[str, Check, PolicyConfigSchema | None]] = {
    "styx-no-world-ingress-except-ssh": (
        "Ingress from 0.0.0.0/0 or ::/0 only ever opens TCP 22 (AWS security groups, GCP firewalls).",
        world_ingress,
        None,
    ),
    "styx-ray-ports-not-public": (
        "Ray's ports (GCS 6379, dashboard 8265, client 10001, agent, worker range) are never reachable from "
        "outside private address space; use the SSH tunnel.",
        ray_ports,
        PolicyConfigSchema(properties={
            "rayPorts": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ports or ranges (\"6379\", \"10002-19999\") Ray listens on.",
                "default": list(DEFAULT_RAY_PORTS),
            },
        }),
    ),
    "styx-aws-imdsv2-required": (
        "EC2 instances and launch templates require IMDSv2 (metadata http_tokens = required).",
        imdsv2,
        None,
    ),
    "styx-aws-ebs-encrypted": (
        "EC2 root and EBS volumes are encrypted.",
        ebs_encrypted,
        None,
    ),
    "styx-gcp-gpu-terminate-on-maintenance": (
        "GCP machines with GPUs set scheduling.onHostMaintenance = TERMINATE.",
        gpu_terminate,
        None,
    ),
}


def check_all(resource_type: str, props: Mapping, config: Mapping | None = None) -> dict[str, list[str]]:
    """Every policy's violations for one resource (for tests and scripts): {policy name: [message]}."""
    out = {}
    for name, (_, check, _) in RESOURCE_CHECKS.items():
        problems = check(resource_type, props, config)
        if problems:
            out[name] = problems
    return out


def _validator(check: Check):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props, args.get_config()):
            report_violation(message, None)

    return validate


def policies(enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=_validator(check),
            enforcement_level=enforcement_level,
            config_schema=schema,
        )
        for name, (description, check, schema) in RESOURCE_CHECKS.items()
    ]
