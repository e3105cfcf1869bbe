"""Typed TOML values for the config reader: each getter checks one key and fails with a ConfigError
that names the file and the key path ("<file>: [image.sources[2].url]: problem; expected ...")."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edge.config.errors import ConfigError


class TomlValues:
    """`path` is the config file (named in errors); `here` its folder (relative paths start there)."""

    def __init__(self, path: Path):
        self.path = path
        self.here = path.resolve().parent

    def fail(self, where: str, problem: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{where}]: {problem}; expected {expected}")

    def table(self, raw: Any, where: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] | None = ()) -> dict:
        """A table whose keys are checked; optional=None allows any key (thresholds by label)."""
        name = f"[{where}]" if where else "the top level"
        if not isinstance(raw, dict):
            raise self.fail(where or "top level", f"got {shown(raw)}", f"a table {name}")
        if optional is not None:
            allowed = (*required, *optional)
            for key in raw:
                if key not in allowed and where:
                    raise self.fail(where, f"unknown key {key!r}", f"one of: {', '.join(allowed)}")
                if key not in allowed:
                    raise self.fail(key, f"unknown section {key!r}", f"one of: {', '.join(allowed)}")
        for key in required:
            if key not in raw:
                raise self.fail(join(where, key), "missing", f"{key} in {name}")
        return raw

    def string(self, t: dict, where: str) -> str:
        value = t[leaf(where)]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"got {shown(value)}", "a non-empty string")
        return value

    def boolean(self, t: dict, where: str, *, default: bool) -> bool:
        value = t.get(leaf(where), default)
        if not isinstance(value, bool):
            raise self.fail(where, f"got {shown(value)}", "true or false")
        return value

    def number(self, t: dict, where: str, *, low: float | None = None, high: float | None = None,
               default: float | None = None) -> float:
        value = t.get(leaf(where), default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"got {shown(value)}", f"a number{_range(low, high)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(where, f"{value} is out of range", f"a number{_range(low, high)}")
        return float(value)

    def integer(self, t: dict, where: str, *, low: int | None = None, high: int | None = None,
                default: int | None = None) -> int:
        value = t.get(leaf(where), default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"got {shown(value)}", f"a whole number{_range(low, high)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(where, f"{value} is out of range", f"a whole number{_range(low, high)}")
        return value

    def choice(self, t: dict, where: str, options: tuple[str, ...], *, default: str | None = None,
               required: bool = False) -> str | None:
        key = leaf(where)
        if required and key not in t:
            raise self.fail(where, "missing", f"one of: {', '.join(options)}")
        value = t.get(key, default)
        if value is None and not required:
            return None
        if value not in options:
            raise self.fail(where, f"got {shown(value)}", f"one of: {', '.join(options)}")
        return value

    def path_of(self, t: dict, where: str, base: Path) -> Path:
        path = Path(self.string(t, where)).expanduser()
        return path if path.is_absolute() else base / path

    def existing_file(self, t: dict, where: str) -> Path:
        path = self.path_of(t, where, self.here)
        if not path.is_file():
            raise self.fail(where, f"{path}: no such file", "the path of an existing file")
        return path

    def existing_dir(self, t: dict, where: str) -> Path:
        path = self.path_of(t, where, self.here)
        if not path.is_dir():
            raise self.fail(where, f"{path}: no such folder",
                            "an existing folder (systemd/naturevision.tmpfiles creates the default ones)")
        return path


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def leaf(where: str) -> str:
    return where.rsplit(".", 1)[-1]


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def shown(value: Any) -> str:
    """What the file holds, in TOML words: 'a string 'x'', 'an array', 'nothing'."""
    if value is None:
        return "nothing"
    kind = {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)
    return kind if isinstance(value, (dict, list)) else f"{kind} {value!r}"
