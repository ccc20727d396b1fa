"""`styx image create|list|delete`: images of a launched cluster's node (styx.app.images)."""

from __future__ import annotations

import click

from styx.app.cli.common import backend_option, emit_json, handle_errors, info, json_option, stack_option


@click.group("image")
def image_group() -> None:
    """Images of a set-up node: later nodes boot from one (their `image`) and their phases find the installs
    done (they still run and verify)."""


@image_group.command("create")
@click.option("--node", default="head", show_default=True, help="The node to make the image of.")
@click.option("--name", "name", required=True, help="The image's name (lowercase letters, digits, '-').")
@click.option("--include-secrets", is_flag=True,
              help="On AWS/GCP (the image is the disk as it is): make it even though it holds the cluster's "
                   "secret env, Ray token and SSH key (refused without this flag).")
@stack_option
@backend_option
@json_option
@handle_errors
def create(node, name, include_secrets, stack_name, backend, as_json):
    """Make an image of NODE of a launched cluster (a stack of its own; `styx image delete` removes it)."""
    from styx.app import images

    rec = images.create(name, node, stack=stack_name, backend=backend, include_secrets=include_secrets,
                        on_info=info)
    if as_json:
        emit_json({"ok": True, **rec})
    else:
        click.echo(f"image {name}: {rec.get('image')} (cloud {rec.get('cloud')}, from {rec.get('stack')}/"
                   f"{rec.get('node')}); use it as a node's image: `image: {rec.get('image')}`")


@image_group.command("list")
@backend_option
@json_option
@handle_errors
def list_(backend, as_json):
    """The images made with `styx image create`."""
    from styx.app import images

    recs = images.list_images(backend)
    if as_json:
        emit_json({"ok": True, "images": recs})
        return
    if not recs:
        click.echo("no images")
    for r in recs:
        click.echo(f"{r.get('name')}  {r.get('cloud')}  {r.get('image')}  from {r.get('stack')}/{r.get('node')}"
                   f"  {r.get('created')}")


@image_group.command("delete")
@click.argument("name")
@backend_option
@json_option
@handle_errors
def delete(name, backend, as_json):
    """Delete image NAME (destroy its stack); refused while a node boots from it where the cloud tells."""
    from styx.app import images

    rec = images.delete(name, backend=backend, on_info=info)
    if as_json:
        emit_json({"ok": True, **rec})
    else:
        click.echo(f"image {name}: deleted")
