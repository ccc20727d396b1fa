"""Print or write stacks/schema.json, the JSON Schema of `styx:cluster` (generated from the model)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from styx.config import json_schema

TARGET = Path(__file__).resolve().parent.parent / "stacks" / "schema.json"


def main(argv: list[str]) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if "--write" in argv:
        TARGET.write_text(text)
        print(f"wrote {TARGET}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
