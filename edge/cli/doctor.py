"""`nv-edge doctor [--config PATH] [--format table|json]`: check a unit, one line per check (edge/doctor/).

Exit 0 when nothing FAILs (WARNs included), 1 otherwise: a technician's script can stop on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edge.cli.arguments import EXIT_FAILED
from edge.config import DEFAULT_PATH
from edge.doctor import FAIL, Check, run_checks


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=Path(os.environ.get("NV_CONFIG", DEFAULT_PATH)),
                   help=f"the unit's TOML config (default $NV_CONFIG or {DEFAULT_PATH})")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table: one line per check (default); json: a list of {name, status, found, fix}")


def run(args: argparse.Namespace) -> int:
    checks = run_checks(args.config)
    if args.format == "json":
        print(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        for line in table(checks):
            print(line)
    sys.stdout.flush()
    return EXIT_FAILED if any(c.status == FAIL for c in checks) else 0


def table(checks: list[Check]) -> list[str]:
    """`STATUS  name  found  fix: ...`, the names in one column so the eye runs down the statuses."""
    width = max((len(c.name) for c in checks), default=0)
    return [f"{c.status:<4}  {c.name:<{width}}  {c.found}" + (f"  fix: {c.fix}" if c.fix else "") for c in checks]
