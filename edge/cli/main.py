"""`nv-edge`: the field unit's command line; one module per command in edge/cli/.

    nv-edge classify PATH...   classify image and audio files or folders, one JSON record per frame/window on stdout
    nv-edge listen             classify a microphone until stopped (edge/cli/listen.py)
    nv-edge info MODEL         show what a model bundle holds
    nv-edge publish            send an outbox to the broker until stopped (edge/cli/publish.py)
    nv-edge config check PATH  check the unit's config file (edge/cli/config.py)
    nv-edge doctor             check a unit: config, models, sources, disk, clock, broker (edge/cli/doctor.py)
    nv-edge run --config PATH  the field service: pipelines + publisher until SIGTERM (edge/service/run.py)
    nv-edge scan ORTHO.tif     an orthomosaic -> mining areas as GeoJSON, an overview, records (edge/cli/scan.py)
    nv-edge export-uncertain RECORDS... --out DIR   the tiles the unit was least sure of, to label (edge/cli/export_uncertain.py)
"""

from __future__ import annotations

import argparse
import sys

from edge import __version__
from edge.cli import classify, config, doctor, export_uncertain, info, listen, publish, run, scan
from edge.cli.arguments import EXIT_USAGE, UsageError
from edge.delivery.outbox import OutboxError
from edge.model.bundle import BundleError

COMMANDS = {  # name: (module with add_arguments and run, help)
    "classify": (classify, "classify image and audio files or folders (recursive)"),
    "info": (info, "show a model bundle's manifest and tensors"),
    "publish": (publish, "send an outbox to the MQTT broker until stopped"),
    "config": (config, "check the unit's config file"),
    "doctor": (doctor, "check a unit: one OK/WARN/FAIL line per check"),
    "listen": (listen, "classify a microphone until stopped (Ctrl-C)"),
    "run": (run, "run the field service from its config file until SIGTERM"),
    "scan": (scan, "scan an orthomosaic GeoTIFF: mining areas as GeoJSON, an overview PNG, records"),
    "export-uncertain": (export_uncertain, "the tiles the unit was least sure of, as PNGs and a CSV to label"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nv-edge", description="NatureVision field unit: offline mining detector.")
    parser.add_argument("--version", action="version", version=f"nv-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][0].run(args)
    except (BundleError, UsageError, OutboxError) as exc:
        print(f"nv-edge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
