"""styx: GPU/ML clusters as code.

The layers, imports only downward:
    styx.model       config, schema, grammar, clouds, catalog, optimizer (plain data and rules)
    styx.components  the Pulumi program: the Cluster component, nodes, setup phases, backends
    styx.app         engine, session, failover, pricing, secrets, the Python API and the CLI

The Python API (styx.app.api) is importable from here: `styx.launch`, `styx.preview`, `styx.status`,
`styx.exec`, `styx.exec_all`, `styx.cp`, `styx.drift`, `styx.repair`,
`styx.down`, their result types and `styx.StyxError`. It loads on first use, so
`import styx.model...` stays free of the Pulumi Automation API.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["ClusterStatus", "DownResult", "ExecResult", "LaunchResult", "NodeStatus", "PreviewResult",
           "RepairResult", "StyxError", "cp", "down", "drift", "exec", "exec_all", "job_submit", "launch", "preview",
           "repair", "status"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from styx.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'styx' has no attribute {name!r}")
