"""What every benchmark script shares: writing its results JSON."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(path: str | Path, result: dict) -> Path:
    """Write `result` as indented JSON to `path` (folders made as needed) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path
