"""`styx:index:Node`: one machine, its wait-for-SSH gate, then its phases in order.

Each phase's triggers hold [hash of its script + parameters, chain hash of everything before it],
so editing one script or parameter replaces that phase and the ones after it on that node, and
nothing else. The gate's hash includes the machine identity and the styx library it installs on the
node: a replaced machine (or a new library) re-runs everything. A phase that needs a file on the node
(file_sync's archive) gets a copy resource after the gate, which runs while earlier phases do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from styx.components import runner
from styx.components.backends.base import NodeHandle
from styx.components.phases import GATE, Phase, PhaseContext, body_of, phases_for, undo_body_of
from styx.components.transport import PhaseRun


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _is_plain(values: Mapping[str, Any]) -> bool:
    return all(isinstance(v, str) for v in values.values())


def status_line(stdout: str | None) -> str:
    """The phase's one-line result. Only styx's own `styx <phase>: ...` lines are shown."""
    lines = [ln for ln in (stdout or "").splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    return last if last.startswith("styx ") else "(no status line)"


def result_of(res: pulumi.CustomResource, secret_output: bool = False) -> pulumi.Output[str]:
    line = res.stdout.apply(status_line)
    # stdout of some phases is secret (custom scripts, env file); the status line is styx's own text.
    return pulumi.Output.unsecret(line) if secret_output else line


class Node(pulumi.ComponentResource):
    gate: pulumi.CustomResource
    phases: dict[str, pulumi.CustomResource]
    chains: dict[str, pulumi.Input[str]]
    waits: dict[str, list[pulumi.Resource]]  # what each phase waited for (its dependencies)
    results: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        handle_factory,
        ctx_factory,
        base_dir: Path,
        *,
        after: Mapping[str, tuple[list[pulumi.Resource], pulumi.Input[str] | None]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """handle_factory(parent) creates the machine; ctx_factory(handle) gives the PhaseContext.

        `after` maps a phase name to (resources, chain hash) it must follow on another node
        (workers' Ray start follows the head's, or starts with it: after what the head's waited for); a
        chain hash of None: order only, no re-run when that resource's chain changes (a worker's python_env
        after the head's wheel_cache: the URL is its parameter).
        """
        super().__init__("styx:index:Node", name, None, opts)
        self.handle: NodeHandle = handle_factory(self)
        ctx: PhaseContext = ctx_factory(self.handle)
        base_env = {"STYX_NODE_NAME": self.handle.name, "STYX_NODE_ROLE": self.handle.role}
        # Phases are deleted with their machine: destroying or replacing a machine never dials it to
        # undo its phases (an adopted ssh host has no machine resource: its undo steps do run).
        machine = self.handle.resources[0] if self.handle.resources else None
        child = pulumi.ResourceOptions(parent=self, deleted_with=machine)

        identity = self.handle.identity
        lib = runner.lib_hash()
        gate_hash: pulumi.Input[str] = (
            digest(GATE.name, body_of(GATE), identity, lib) if isinstance(identity, str)
            else pulumi.Output.from_input(identity).apply(lambda i: digest(GATE.name, body_of(GATE), i, lib)))
        self.gate_hash = gate_hash
        self.gate = self.handle.transport.run(
            f"{name}-{GATE.name}",
            PhaseRun(GATE.name, self.handle.name, GATE.timeout(ctx), runner.gate_program(body_of(GATE), base_env),
                     gate=True),
            triggers=[gate_hash],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=self.handle.resources)),
        )
        prev_res: pulumi.Resource = self.gate
        prev_chain: pulumi.Input[str] = gate_hash
        # what the next phase waits for, and what the phase before it waited for (Phase.alongside)
        frontier: list[pulumi.Resource] = [self.gate]
        prev_deps: list[pulumi.Resource] = [self.gate]
        prev_name = GATE.name
        self.phases, self.chains, self.waits = {}, {GATE.name: gate_hash}, {}
        results: dict[str, pulumi.Output[str]] = {GATE.name: result_of(self.gate)}
        overrides = self.handle.phase_overrides
        for phase in phases_for(ctx, base_dir):
            ov = overrides.get(phase.name, overrides.get("*"))
            if ov is not None and ov.skip:  # the backend says this phase does not belong on this node
                pulumi.log.info(f"{phase.name} skipped on {self.handle.name}: {ov.skip}", resource=self)
                results[phase.name] = pulumi.Output.from_input(f"styx {phase.name}: skipped: {ov.skip}")
                continue
            together = phase.alongside is not None and phase.alongside[0] == prev_name and phase.alongside[1](ctx)
            deps = list(prev_deps if together else frontier)
            extra_chain: list[pulumi.Input[str]] = []
            if after and phase.name in after:
                res, chain = after[phase.name]
                deps += [r for r in res if r not in deps]
                if chain is not None:
                    extra_chain.append(chain)
            deps += [self.phases[w] for w in phase.waits_for if w in self.phases and self.phases[w] not in deps]
            prev_deps = deps
            prev_res, prev_chain = self._phase(name, phase, ctx, base_env, prev_chain, extra_chain, deps, child,
                                               dict(ov.env) if ov else {})
            frontier = [*frontier, prev_res] if together else [prev_res]
            prev_name = phase.name
            self.phases[phase.name] = prev_res
            self.chains[phase.name] = prev_chain
            self.waits[phase.name] = deps
            results[phase.name] = result_of(prev_res, phase.secret_output)
        self.results = pulumi.Output.all(**results)
        self.register_outputs({"results": self.results})

    def _phase(self, name: str, phase: Phase, ctx: PhaseContext, base_env: dict[str, str],
               prev_chain: pulumi.Input[str], extra_chain: list[pulumi.Input[str]],
               deps: list[pulumi.Resource], child: pulumi.ResourceOptions, override_env: dict[str, str]):
        body = body_of(phase)
        env = {**base_env, **phase.env(ctx), **override_env}
        undo = None
        if phase.undo:
            undo = runner.Undo(undo_body_of(phase),
                               {**base_env, **(phase.undo_env(ctx) if phase.undo_env else {})})

        def own_of(e: dict[str, str]) -> str:
            return digest(phase.name, body, {k: v for k, v in e.items() if k not in phase.chain_params})

        own: pulumi.Input[str] = own_of(env) if _is_plain(env) else pulumi.Output.all(**env).apply(own_of)
        upload = phase.upload(ctx) if phase.upload else None
        if upload is not None:  # the file the phase needs, copied after the gate (in parallel with others)
            local_path, remote_path, sha = upload
            deps = [*deps, self.handle.transport.copy(
                f"{name}-{phase.name}-copy", local_path=local_path, remote_path=remote_path,
                triggers=[sha, self.gate_hash],
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.gate])))]
        triggers = [own, prev_chain, *extra_chain]
        if all(isinstance(t, str) for t in triggers):
            chain: pulumi.Input[str] = digest(*triggers)
        else:
            chain = pulumi.Output.all(*triggers).apply(lambda t: digest(*t))

        # An undo is guarded by the resource's generation: its chain hash (its own hash alone would be
        # the same for a replacement that only follows an earlier phase's change).
        def program_of(e: dict[str, str], generation: str | None) -> str:
            return runner.program(phase.name, body, e, undo=undo, generation=generation)

        if undo is None and _is_plain(env):  # the common case: no Outputs, no extra async work
            program: pulumi.Input[str] = program_of(env, None)
        elif undo is None:
            program = pulumi.Output.all(**env).apply(lambda e: program_of(e, None))
        else:
            program = pulumi.Output.all(pulumi.Output.all(**env), chain).apply(lambda v: program_of(v[0], v[1]))
        opts = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=deps, delete_before_replace=phase.replace_delete_first)
        )
        res = self.handle.transport.run(
            f"{name}-{phase.name}",
            PhaseRun(phase.name, self.handle.name, phase.timeout(ctx), program, has_undo=undo is not None,
                     secret_output=phase.secret_output),
            triggers=triggers, opts=opts,
        )
        return res, chain
