"""What every `nv-edge` command shares: exit codes, the usage error, and argument types that check
their value (an alert threshold, a tile overlap, a whole number with a minimum)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edge.image.tiling import MAX_OVERLAP

EXIT_FAILED = 1  # the command ran and something it checked or needed failed
EXIT_USAGE = 2  # the command itself is wrong: a bad option, a missing or broken model


SOURCE_TREE_MODELS = Path(__file__).resolve().parents[2] / "models"  # a checkout: models/ beside edge/
SYSTEM_MODELS = Path("/usr/share/naturevision/models")  # an installed unit


def shipped_model(env: str, name: str) -> Path | None:
    """The model a command uses when none is given: $`env`, else models/`name` beside the source tree,
    else the system install; None when none of them is a file."""
    candidates = [os.environ[env]] if os.environ.get(env) else []
    candidates += [SOURCE_TREE_MODELS / name, SYSTEM_MODELS / name]
    return next((Path(c) for c in candidates if Path(c).is_file()), None)


class UsageError(Exception):
    """A command given what it cannot use; main prints it and exits with EXIT_USAGE."""


def threshold(text: str) -> tuple[str, float]:
    label, _, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or LABEL=NUMBER, got {text!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be in [0, 1], got {number}")
    return (label or "*", number)


def ground_resolution(text: str) -> float:
    """--gsd M: metres of ground per pixel."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected metres per pixel like 0.05, got {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"a ground resolution is a positive number of metres per pixel, got {value}")
    return value


def event_rule(text: str) -> tuple[str, object]:
    """KEY=VALUE: one key of the event rules (edge/decisions/events.py checks it), e.g. rule=mean,
    window=6, max_gap_s=null. Numbers are read as numbers, null or none as no value."""
    key, sep, value = text.partition("=")
    if not (sep and key and value):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE like rule=mean or window=6, got {text!r}")
    if value.lower() in ("null", "none"):
        return key, None
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def overlap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.25, got {text!r}") from None
    if not 0.0 <= value <= MAX_OVERLAP:
        raise argparse.ArgumentTypeError(f"overlap must be from 0 to {MAX_OVERLAP}, got {value}")
    return value


def positive(kind: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{kind} must be at least {minimum}, got {value}")
        return value

    return parse
