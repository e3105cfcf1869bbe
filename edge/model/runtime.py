"""Which runtime a bundle needs: versions compared as numbers, and the oldest runtime that decides as a
manifest means (an older one would ignore what it does not know and score differently without a word)."""

from __future__ import annotations


def version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise ValueError(f"{text!r} is not a version like 1.2.3") from None


def runtime_needed(manifest) -> str:
    """The oldest runtime that decides as this manifest means: 0.1.0 ignores alert groups, event rules and
    TTA, so it would score and threshold such a bundle differently without a word."""
    if manifest.groups is not None or manifest.events is not None or manifest.input.tta != 1:
        return "0.2.0"
    return "0.1.0"
