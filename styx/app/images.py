"""`styx image create/list/delete`: an image of a launched cluster's node, so that later nodes boot from it
(their `image`) and their phases find the installs done.

Each image is a Pulumi stack of its own (project `styx-images`, stack = the image's name, on the same
backend as the clusters): its program (components/image.py) registers the cloud's image resource, made by
the source cluster's backend (`Backend.image_source` reads the node's machine from the cluster's state,
`Backend.image` registers the image). `delete` destroys that stack and removes it. Being another project,
image stacks never show up among the clusters (`styx status`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from styx.app.project import EXIT_FAILED, EXIT_USAGE, StyxError, make_engine, open_stack

PROJECT = "styx-images"
NAME_RULE = "lowercase letters, digits and '-', starting and ending with a letter or digit, max 63 characters"


def _name_ok(name: str) -> bool:
    from styx.components.backends.local_images import IMAGE_NAME

    return bool(IMAGE_NAME.match(name))


def image_engine(backend: str | None):
    """The engine of the image stacks: the clusters' backend URL, project `styx-images`."""
    from styx.app.session import Engine

    return Engine(make_engine(backend).backend_url, project=PROJECT)


def _record(session: Any) -> dict[str, Any]:
    out = session.outputs()
    return {k: out.get(k) for k in ("name", "image", "cloud", "cluster", "stack", "node", "created")}


def secrets_in_image(cluster: dict[str, Any]) -> list[str]:
    """What of a cluster's secrets a disk image of its node holds (on a cloud whose image is the disk as it is)."""
    setup = cluster.get("setup") or {}
    held = [f"secret env {k}" for k in sorted(setup.get("secret_env") or {})]
    if ((setup.get("ray") or {}).get("auth") or "token") == "token":
        held.append("the Ray auth token")
    return held


def source_spec(name: str, node: str, stack: str | None, backend: str | None,
                now: datetime | None = None, include_secrets: bool = False) -> dict[str, Any]:
    """The image stack's `styx:image` for `node` of a launched cluster; StyxError (naming what is wrong) for
    a bad name, a stack that is not launched, a cloud without images, an unknown node, or a cloud image that
    would hold the cluster's secrets without `include_secrets`."""
    from styx.components.backends import backend_class
    from styx.components.backends.base import Feature

    if not _name_ok(name):
        raise StyxError(f"--name: {name!r} is not an image name (allowed: {NAME_RULE})", EXIT_USAGE)
    session = open_stack(make_engine(backend), stack)
    cluster = session.cluster() or {}
    nodes = [n.get("name") for n in (session.outputs().get("nodes") or [])]
    if not nodes or not cluster:
        raise StyxError(f"stack {session.name!r} is not launched (no nodes): run `styx launch` first", EXIT_FAILED)
    if node not in nodes:
        raise StyxError(f"--node: no node {node!r} in stack {session.name!r} (nodes: {', '.join(nodes)})", EXIT_USAGE)
    try:
        b = backend_class(cluster.get("cloud"))()
    except ValueError as e:
        raise StyxError(str(e), EXIT_FAILED) from None
    if Feature.IMAGES not in b.features:
        raise StyxError(f"cloud {b.name} cannot make images of its nodes", EXIT_USAGE)
    held = [] if b.image_strips_secrets or include_secrets else secrets_in_image(cluster)
    if held:
        raise StyxError(f"--include-secrets: an image on cloud {b.name} is node {node}'s disk as it is, so it "
                        f"would hold {', '.join(held)} (in /etc/styx) and the cluster's SSH key in authorized_keys; "
                        "pass --include-secrets to make it anyway (keep the image private to the account)", EXIT_USAGE)
    try:
        source = b.image_source(cluster, node, session.deployment().get("resources") or [])
    except LookupError as e:
        raise StyxError(f"node {node} of stack {session.name!r}: {e} (launch it again: `styx launch`)",
                        EXIT_FAILED) from None
    return {"name": name, "cloud": b.name, "cluster": cluster.get("name"), "stack": session.name, "node": node,
            "created": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"), "source": source}


def create(name: str, node: str = "head", *, stack: str | None = None, backend: str | None = None,
           include_secrets: bool = False, on_info: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Make image `name` of `node` (`styx image create`); returns its record ({name, image, cloud, ...})."""
    import pulumi
    from pulumi import automation as auto

    from styx.app.session import StackSession
    from styx.components.image import IMAGE_KEY, build

    info = on_info or (lambda _m: None)
    if not _name_ok(name):
        raise StyxError(f"--name: {name!r} is not an image name (allowed: {NAME_RULE})", EXIT_USAGE)
    engine = image_engine(backend)
    taken = engine.find(name)
    if taken is not None and (taken.outputs().get("image") or taken.deployment().get("resources")):
        raise StyxError(f"--name: image {name!r} exists already (made from {taken.outputs().get('stack')}/"
                        f"{taken.outputs().get('node')}): `styx image delete {name}` first, or another name",
                        EXIT_USAGE)
    spec = source_spec(name, node, stack, backend, include_secrets=include_secrets)
    info(f"image {name}: from node {node} of stack {spec['stack']} (cloud {spec['cloud']})")

    def program() -> None:
        build(pulumi.Config("styx"))

    session = StackSession(engine, auto.Stack.create_or_select(name, engine._workspace(name, program)))
    session.stack.set_config(IMAGE_KEY, auto.ConfigValue(json.dumps(spec)))
    res = session.up()
    if not res.ok:
        raise StyxError(f"image {name}: {res.error or 'the update failed'} (`styx image delete {name}` "
                        "removes what was made)", EXIT_FAILED)
    rec = _record(session)
    info(f"image {name} ready: {rec.get('image')}")
    return rec


def list_images(backend: str | None = None) -> list[dict[str, Any]]:
    """Every image stack's record (`styx image list`), by name."""
    engine = image_engine(backend)
    return [_record(engine.open(s.name)) for s in engine.list_stacks()]


def delete(name: str, *, backend: str | None = None, on_info: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Destroy image `name` and remove its stack (`styx image delete`)."""
    info = on_info or (lambda _m: None)
    engine = image_engine(backend)
    session = engine.find(name)
    if session is None:
        known = ", ".join(s.name for s in engine.list_stacks()) or "none"
        raise StyxError(f"no image {name!r} (images: {known})", EXIT_USAGE)
    rec = _record(session)
    res = session.destroy()
    if not res.ok:
        raise StyxError(f"image {name}: {res.error or 'the destroy failed'}", EXIT_FAILED)
    session.remove()
    info(f"image {name} deleted")
    return {**rec, "deleted": True}
