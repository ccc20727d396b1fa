"""Print or write stacks/schema.json, the JSON Schema of `styx:cluster` (generated from the model)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from styx.model.config import json_schema

TARGET = Path(__file__).resolve().parents[2] / "stacks" / "schema.json"
START, END = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"


def main(argv: list[str]) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if "--markdown" in argv:
        sys.stdout.write(markdown())
        return 0
    if "--readme" in argv:  # regenerate the README's config reference in place
        readme = TARGET.parent.parent / "README.md"
        text_in = readme.read_text()
        start = text_in.index(START) + len(START)
        end = text_in.index(END)
        readme.write_text(text_in[:start] + markdown() + text_in[end:])
        print(f"updated {readme}", file=sys.stderr)
        return 0
    if "--write" in argv:
        TARGET.write_text(text)
        print(f"wrote {TARGET}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(key path, type, default, description) for every field of `styx:cluster`, for the README."""
    import typing

    from pydantic import BaseModel

    from styx.model.config import ClusterConfig

    rows: list[tuple[str, str, str, str]] = []

    def plain(ann):
        """The type without its validators: Annotated[str, ...] is str (inside lists too)."""
        if typing.get_origin(ann) is typing.Annotated:
            return plain(typing.get_args(ann)[0])
        if typing.get_origin(ann) is list:
            return list[plain(typing.get_args(ann)[0])]
        return ann

    def tname(ann) -> str:
        s = str(plain(ann)).replace("typing.", "").replace("styx.model.config.", "")
        return s.replace("<class '", "").replace("'>", "").replace("|", "or")

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            path = f"{prefix}.{name}"
            sub = next((a for a in (f.annotation, *typing.get_args(f.annotation))
                        if isinstance(a, type) and issubclass(a, BaseModel)), None)
            if sub is not None and typing.get_origin(f.annotation) is list:
                path += "[]"
            if sub is None:
                for a in typing.get_args(f.annotation):
                    inner = next((x for x in typing.get_args(a) if isinstance(x, type) and issubclass(x, BaseModel)),
                                 None)
                    if inner is not None:
                        sub = inner
                        path += "[]"
            default = "" if f.is_required() else repr(f.get_default(call_default_factory=True))
            if sub is not None:
                rows.append((path, sub.__name__, "", (f.description or "").replace("|", "\\|")))
                walk(sub, path)
            else:
                rows.append((path, tname(f.annotation), default if len(default) < 40 else "…",
                             (f.description or "").replace("|", "\\|")))

    walk(ClusterConfig, "styx:cluster")
    return rows


def markdown() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{p}` | `{t}` | `{d}` | {m} |" if d else f"| `{p}` | `{t}` |  | {m} |"
              for p, t, d, m in reference_rows()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
