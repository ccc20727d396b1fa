"""AWS: security group ingress in its three forms, IMDSv2 and EBS encryption.

Property names are the engine's (camelCase), as a policy pack and the Pulumi mocks see them.
"""

from __future__ import annotations

from collections.abc import Mapping

from styx_policy.net import INGRESS_EXTRACTORS, Ingress, as_list, normalize_protocol, port_range

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VOLUME = "aws:ebs/volume:Volume"


def _cidrs(entry: Mapping, *keys: str) -> tuple[str, ...]:
    out: list[str] = []
    for k in keys:
        out += [str(c) for c in as_list(entry.get(k))]
    return tuple(out)


def _rule(where: str, entry: Mapping, protocol_key: str, cidr_keys: tuple[str, ...]) -> Ingress:
    proto = normalize_protocol(entry.get(protocol_key))
    return Ingress(
        where=where,
        sources=_cidrs(entry, *cidr_keys),
        protocol=proto,
        ports=port_range(entry.get("fromPort"), entry.get("toPort"), proto),
    )


def security_group_ingress(props: Mapping) -> list[Ingress]:
    """Inline `ingress` blocks of aws.ec2.SecurityGroup."""
    return [
        _rule(f"ingress[{i}]", e, "protocol", ("cidrBlocks", "ipv6CidrBlocks"))
        for i, e in enumerate(as_list(props.get("ingress")))
    ]


def security_group_rule_ingress(props: Mapping) -> list[Ingress]:
    """aws.ec2.SecurityGroupRule (only type=ingress opens anything)."""
    if str(props.get("type", "")).lower() != "ingress":
        return []
    return [_rule("rule", props, "protocol", ("cidrBlocks", "ipv6CidrBlocks"))]


def vpc_ingress_rule(props: Mapping) -> list[Ingress]:
    """aws.vpc.SecurityGroupIngressRule (one CIDR or a referenced group / prefix list per rule)."""
    return [_rule("rule", props, "ipProtocol", ("cidrIpv4", "cidrIpv6"))]


INGRESS_EXTRACTORS.update({
    SECURITY_GROUP: security_group_ingress,
    SECURITY_GROUP_RULE: security_group_rule_ingress,
    INGRESS_RULE: vpc_ingress_rule,
})


def imdsv2_problems(resource_type: str, props: Mapping) -> list[str]:
    """Instances and launch templates must require IMDSv2 session tokens."""
    if resource_type not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    md = props.get("metadataOptions")
    if not isinstance(md, Mapping):
        return ["metadataOptions is not set, so IMDSv1 stays enabled; set metadata_options.http_tokens=\"required\""]
    if str(md.get("httpEndpoint", "enabled")).lower() == "disabled":
        return []  # no metadata service at all
    tokens = md.get("httpTokens")
    if str(tokens).lower() != "required":
        return [f"metadataOptions.httpTokens is {tokens!r}; IMDSv2 needs \"required\""]
    return []


def _encrypted(block: object) -> bool:
    return isinstance(block, Mapping) and block.get("encrypted") is True


def ebs_encryption_problems(resource_type: str, props: Mapping) -> list[str]:
    """Root and extra EBS volumes of instances, and standalone volumes, are encrypted."""
    out: list[str] = []
    if resource_type == INSTANCE:
        if not _encrypted(props.get("rootBlockDevice")):
            out.append("rootBlockDevice.encrypted is not true; set root_block_device.encrypted=True")
        for i, dev in enumerate(as_list(props.get("ebsBlockDevices"))):
            if not _encrypted(dev):
                out.append(f"ebsBlockDevices[{i}].encrypted is not true")
    elif resource_type == VOLUME and props.get("encrypted") is not True:
        out.append("encrypted is not true")
    return out
