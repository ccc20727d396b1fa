"""styx from a Python script: launch a small local cluster, run a command on every node, launch again
(nothing changed, so nothing runs), read its status, tear it down.

    .venv/bin/python examples/api/cluster_script.py [--name apidemo] [--subnet 10.87.0.0/24] [--keep]

Every function returns a typed result (styx.LaunchResult, ExecResult, ClusterStatus, DownResult) and
raises styx.StyxError (.code, .problems) on failure; progress notes go to stderr.
"""

from __future__ import annotations

import argparse
import sys

import styx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="apidemo")
    ap.add_argument("--subnet", default="10.87.0.0/24")
    ap.add_argument("--keep", action="store_true", help="leave the cluster up")
    args = ap.parse_args()
    cluster = {
        "name": args.name,
        "cloud": "local",
        "workers": [{"name": "worker", "count": 1}],
        "local": {"subnet": args.subnet},
        "setup": {"ray": {"enabled": False}, "env": {"GREETING": "hello"}},
    }
    try:
        up = styx.launch(cluster)
        print(f"launched {up.stack}: {len(up.outputs['nodes'])} nodes in {up.duration_s:.0f}s")
        for node in up.outputs["nodes"]:
            r = styx.exec(up.stack, '. /etc/styx/env.sh && echo "$GREETING from $(hostname)"', node=node["name"])
            print(f"exec {r.node}: exit {r.exit_code}: {r.stdout.strip()}")
        again = styx.launch(cluster)
        print(f"second launch changes: {sorted(again.changes.items())}")
        [st] = styx.status(up.stack, ray=False)
        print(f"status {st.stack}: {st.state}; " + ", ".join(f"{n.name} ready={n.ready}" for n in st.nodes))
    except styx.StyxError as e:
        print(f"error: {e.message}", *e.problems, sep="\n", file=sys.stderr)
        return e.code
    finally:
        if not args.keep:
            try:
                down = styx.down(args.name)
                print(f"down {down.stack}: removed={down.removed}")
            except styx.StyxError as e:
                print(f"down: {e.message}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
