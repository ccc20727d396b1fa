"""The registry is the one list of clouds, and only backends know a cloud by name.

- no module outside components/backends/ compares a cloud name (`cloud == "aws"`, `cloud in ("aws",
  "gcp")`, `.get("cloud") != "local"`): callers ask the backend (`Backend` methods, `Feature` flags);
- the model imports the registry without Pulumi or any backend;
- the config's allowed clouds, the CLI's `--cloud` choices and the README's list are the registry's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from styx.components.backends import REGISTRY, backend_class, backend_names
from styx.components.backends.base import Backend, Feature

ROOT = Path(__file__).resolve().parents[3]

# Owned by the catalog/optimizer work: catalogs are files per cloud, keyed by the cloud's name.
# (That is data about a cloud's offers, not a decision about how to run one.)
# The catalog package (loader, model, fetch, the GPU table) and the optimizer read those files.
ALLOWED_UNDER = ("styx/model/catalog/", "styx/model/optimizer/")

_NAME = "|".join(re.escape(n) for n in REGISTRY)
_COMPARE = re.compile(
    rf"""(cloud\W{{0,3}}\)?\s*(==|!=|\bin\b|\bnot in\b)\s*[\(\[\{{]?\s*["']({_NAME})["'])"""  # cloud == "aws"
    rf"""|(["']({_NAME})["']\s*(==|!=)\s*[\w.\[\]"'()]*cloud)"""  # "aws" == cfg.cloud
    rf"""|(cloud["']?\)?\s*(==|!=|\bin\b|\bnot in\b)\s*\(\s*["']({_NAME})["'])"""
)


def _sources():
    for d in ("styx", "components", "policy"):
        for p in sorted((ROOT / d).rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel.startswith(("components/backends/", *ALLOWED_UNDER)):
                continue
            yield rel, p.read_text()
    yield "__main__.py", (ROOT / "__main__.py").read_text()


def test_no_cloud_name_comparisons_outside_the_backends():
    hits = [f"{rel}:{i}: {ln.strip()}" for rel, text in _sources()
            for i, ln in enumerate(text.splitlines(), 1) if _COMPARE.search(ln)]
    assert not hits, "ask the backend (a Backend method or Feature) instead of testing its name:\n" + "\n".join(hits)


def test_the_grep_catches_the_forms_it_forbids():
    for bad in ('if cfg.cloud == "aws":', 'cluster.get("cloud") in ("aws", "gcp")', 'if cloud not in ("aws", "gcp"):',
                "if c.get('cloud') != 'local':", 'if "gcp" == cfg.cloud:'):
        assert _COMPARE.search(bad), bad
    for ok in ('backend_class(cfg.cloud).features', 'c.setdefault("local", {})', 'o.cloud == s.cloud'):
        assert not _COMPARE.search(ok), ok


def test_the_model_imports_no_pulumi_and_no_backend():
    code = ("import sys, styx.model.config as c; c.parse_cluster({'name': 'a', 'cloud': 'aws'}); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi') "
            "or m.startswith('styx.components.backends.')); print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_registered_backend_names_itself_and_declares_features():
    for name in backend_names():
        cls = backend_class(name)
        assert issubclass(cls, Backend) and cls.name == name
        assert isinstance(cls.features, Feature)
        section = cls.config_section
        if section is not None:
            from styx.model.config import ClusterConfig

            assert section in ClusterConfig.model_fields, f"{name}: no config section {section!r}"


def test_cli_choices_and_readme_list_come_from_the_registry():
    from styx.app.cli.launch import launch

    opt = next(p for p in launch.params if p.name == "cloud")
    assert tuple(opt.type.choices) == backend_names()
    readme = (ROOT / "README.md").read_text()
    assert ", ".join(backend_names()) in readme  # the config reference row, generated from the registry
