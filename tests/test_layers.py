"""The layers read from the tree, imports only downward:

    styx/model/   config, schema, grammar, clouds, catalog, optimizer, secret shapes (no Pulumi engine)
    components/   the Pulumi program, installed as styx.components: imports the model
    styx/app/     engine, session, failover, pricing, secrets, the public API and the CLI: imports both

Every import is checked, including those inside functions. Nothing imports a top-level `components`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {  # package -> what it may import from styx
    "styx.model": ("styx.model",),
    "styx.components": ("styx.model", "styx.components"),
    "styx.app": ("styx.model", "styx.components", "styx.app"),
}
TREES = {"styx.model": ROOT / "styx" / "model", "styx.components": ROOT / "components",
         "styx.app": ROOT / "styx" / "app"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            if node.module == "styx":
                for a in node.names:
                    yield node.lineno, f"styx.{a.name}"


def _modules():
    for layer, tree in TREES.items():
        for f in sorted(tree.rglob("*.py")):
            yield layer, f


def _wrong(mod: str, allowed: tuple[str, ...]) -> bool:
    if mod == "components" or mod.startswith("components."):
        return True
    return mod.startswith("styx.") and not mod.startswith(allowed)


def _id(v):
    return str(v.relative_to(ROOT)) if isinstance(v, Path) else v


@pytest.mark.parametrize(("layer", "path"), list(_modules()), ids=_id)
def test_imports_only_go_down(layer, path):
    allowed = LAYERS[layer]
    bad = [f"{path.relative_to(ROOT)}:{ln}: {mod}" for ln, mod in _imports(path) if _wrong(mod, allowed)]
    assert not bad, f"{layer} may import only {allowed}:\n" + "\n".join(bad)


def test_model_needs_no_pulumi():
    """The model is plain data and rules: usable without the Pulumi SDK (the optimizer, `styx validate`)."""
    bad = [f"{p.relative_to(ROOT)}:{ln}: {m}" for _, p in _modules() if p.is_relative_to(TREES["styx.model"])
           for ln, m in _imports(p) if m == "pulumi" or m.startswith(("pulumi.", "pulumi_"))]
    assert not bad, "\n".join(bad)


def test_one_top_level_package_is_installed():
    """pyproject installs `styx` only; the repo's components/ becomes styx.components."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {p.split(".")[0] for p in tool["packages"]} == {"styx"}
    assert tool["package-dir"] == {"styx.components": "components", "styx.setup_scripts": "setup_scripts",
                                   "styx.sandbox": "sandbox"}
