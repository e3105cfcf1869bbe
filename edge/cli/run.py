"""`nv-edge run --config PATH`: the field service (edge/service/run.py) until SIGTERM."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("--config", type=Path, default=Path(os.environ.get("NV_CONFIG", "/etc/naturevision/edge.toml")),
                   help="the unit's TOML config (default $NV_CONFIG or /etc/naturevision/edge.toml)")


def run(args: argparse.Namespace) -> int:
    from edge.service import run as service  # the service's imports only when it runs

    return service.main(args.config)
