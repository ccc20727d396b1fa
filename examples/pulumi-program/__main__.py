"""Your own Pulumi program with a styx Cluster next to your other resources.

`define` validates the cluster object (the same checks as `styx validate`) and registers the Cluster
component: its machines, setup phases and Ray. Its outputs are ordinary Pulumi outputs that other
resources can use; here a `command.local.Command` (official pulumi-command) writes the head's address.
"""

from pathlib import Path

import pulumi
import pulumi_command as command

from styx.components.program import define

config = pulumi.Config()
cluster = define(
    {
        "name": config.get("name") or "mixed",
        "cloud": "local",
        "local": {"subnet": config.get("subnet") or "10.88.0.0/24"},
        "setup": {"ray": {"enabled": False}, "env": {"OWNER": "pulumi-program example"}},
    },
    Path(__file__).resolve().parent,
)

announce = command.local.Command(
    "announce",
    create=pulumi.Output.concat("echo the head is at ", cluster.head_ip),
)

pulumi.export("head_ip", cluster.head_ip)
pulumi.export("nodes", cluster.node_list)
pulumi.export("announce", announce.stdout)
