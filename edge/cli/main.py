"""`nv-edge`: the field unit's command line; one module per command in edge/cli/.

    nv-edge classify PATH...   classify image and audio files or folders, one JSON record per frame/window on stdout
    nv-edge listen             classify a microphone until stopped (edge/cli/listen.py)
    nv-edge info MODEL         show what a model bundle holds
    nv-edge publish            send an outbox to the broker until stopped (edge/cli/publish.py)
    nv-edge config check PATH  check the unit's config file (edge/cli/config.py)
    nv-edge doctor             check a unit: config, models, sources, disk, clock, broker (edge/cli/doctor.py)
    nv-edge run --config PATH  the field service: pipelines + publisher until SIGTERM (edge/service/run.py)
    nv-edge scan ORTHO.tif     an orthomosaic -> mining areas as GeoJSON, an overview PNG, records (edge/cli/scan.py)
    nv-edge export-uncertain RECORDS... --out DIR   the tiles the unit was least sure of, to label (edge/cli/export_uncertain.py)

Only the module of the command that runs is imported (with what it imports): the others would stay
resident for the life of `nv-edge run` (3.6 MB, the survey code among them).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from edge import __version__
from edge.cli.arguments import EXIT_USAGE, UsageError
from edge.delivery.outbox import OutboxError
from edge.model.bundle import BundleError

COMMANDS = {  # name: (module of edge.cli with add_arguments and run, help)
    "classify": ("classify", "classify image, video and audio files or folders (recursive)"),
    "info": ("info", "show a model bundle's manifest and tensors"),
    "publish": ("publish", "send an outbox to the MQTT broker until stopped"),
    "config": ("config", "check the unit's config file"),
    "doctor": ("doctor", "check a unit: one OK/WARN/FAIL line per check"),
    "listen": ("listen", "classify a microphone until stopped (Ctrl-C)"),
    "run": ("run", "run the field service from its config file until SIGTERM"),
    "scan": ("scan", "scan an orthomosaic GeoTIFF: mining areas as GeoJSON, an overview PNG, records"),
    "export-uncertain": ("export_uncertain", "the tiles the unit was least sure of, as PNGs and a CSV to label"),
}
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away (`yes | head -1`)


def command_module(name: str):
    return importlib.import_module(f"edge.cli.{COMMANDS[name][0]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command with its arguments; with `only`, the arguments of that command alone (the others
    are listed by `nv-edge --help` all the same, but their modules are not imported)."""
    parser = argparse.ArgumentParser(prog="nv-edge", description="NatureVision field unit: offline mining detector.")
    parser.add_argument("--version", action="version", version=f"nv-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if only is None or name == only:
            command_module(name).add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The top-level options (--help, --version) take no value, so the first other word is the command.
    named = next((word for word in argv if not word.startswith("-")), None)
    try:
        args = build_parser(named if named in COMMANDS else None).parse_args(argv)
        try:
            code = command_module(args.command).run(args)
        except (BundleError, UsageError, OutboxError) as exc:
            print(f"nv-edge: error: {exc}", file=sys.stderr)
            code = EXIT_USAGE
        sys.stdout.flush()  # here, not at exit: a reader gone by now is a BrokenPipeError caught below
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`nv-edge info MODEL | head -1`): stop quietly, as Unix tools do.
        # What is still buffered cannot be written; stdout goes to /dev/null so that Python's own flush at
        # exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
