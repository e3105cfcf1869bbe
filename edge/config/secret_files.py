"""Secrets live in files (`password_file`), never in the config, so the config can be shown and copied."""

from __future__ import annotations

from pathlib import Path

from edge.config.errors import ConfigError


def read_secret(path: Path, *, config: Path | None = None, where: str = "password_file") -> str:
    """A secret from its file, stripped of the trailing newline editors add."""
    head = f"{config}: [{where}]: {path}" if config else f"{path}: [{where}]"
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{head}: cannot be read ({getattr(exc, 'strerror', None) or exc}); expected a file "
                          f"the service's user can read (chown root:naturevision, chmod 640)") from None
    if not text:
        raise ConfigError(f"{head}: the file is empty; expected the secret on its first line")
    return text
