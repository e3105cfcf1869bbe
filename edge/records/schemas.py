"""Where the record contract's JSON Schemas live, and how to read one."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
NAMES = ("detection", "status", "health", "receipt")


def load_schema(name: str) -> dict:
    """The schema of `name` (one of NAMES) as a dict."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
