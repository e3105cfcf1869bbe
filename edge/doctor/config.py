"""The config check: the unit's TOML loads, or the line says which key to fix."""

from __future__ import annotations

import tomllib
from pathlib import Path

from edge.config import DEFAULT_STATE_DIR, ConfigError, EdgeConfig, load_config
from edge.doctor.check import Check, fail, ok

# -- 1. config -------------------------------------------------------------------------------------------

def check_config(path: Path) -> tuple[EdgeConfig | None, Check]:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        fix = ("Pass --config PATH, or copy systemd/edge.example.toml there and edit it."
               if "no such config file" in str(exc) else
               "Edit the key named there (systemd/edge.example.toml explains every key), then run nv-edge doctor again.")
        return None, fail("config", str(exc), fix)
    parts = [f"device {cfg.device.id}"]
    parts += [f"image model {m.manifest.name} {m.manifest.version}" for m in (cfg.image.models if cfg.image else ())]
    parts += [f"audio model {cfg.audio.manifest.name} {cfg.audio.manifest.version}"] if cfg.audio else []
    parts.append(f"mqtt {cfg.mqtt.host}:{cfg.mqtt.port}" if cfg.mqtt else "no mqtt (records stay in the outbox)")
    return cfg, ok("config", f"{path}: {', '.join(parts)}")


def fallback_state_dir(path: Path) -> Path:
    """device.state_dir from a config that does not load, when the TOML at least parses: the disk
    check then measures the right disk."""
    try:
        with open(path, "rb") as fh:
            value = tomllib.load(fh).get("device", {}).get("state_dir")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return DEFAULT_STATE_DIR
    if not isinstance(value, str) or not value.strip():
        return DEFAULT_STATE_DIR
    state = Path(value).expanduser()
    return state if state.is_absolute() else path.resolve().parent / state
