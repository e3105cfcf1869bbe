"""Logs of the service for journald: one line per event on stdout, `key=value` pairs (logfmt) after a
syslog priority prefix (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug) that journald turns into the
entry's priority, so `journalctl -u naturevision-edge -p warning` shows only what needs a look.

    <6>component=image event=classified source=/srv/incoming/DJI_0042.JPG label=mining score=0.93 alert=true

Outside systemd (a technician running `nv-edge run` in a terminal) the same lines are readable as they are.
"""

from __future__ import annotations

import logging
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def quote(value) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if text == "" or any(c in text for c in ' "=\\\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {"component": record.name.removeprefix("nv.")}
        fields.update((k, v) for k, v in getattr(record, "fields", {}).items() if v is not None)
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}: {self.formatException(record.exc_info)}"
        parts = [f"{k}={quote(v)}" for k, v in fields.items()]
        parts.append(f"msg={quote(message)}")
        return f"<{_PRIORITY.get(record.levelno, 6)}>" + " ".join(parts)


def setup(level: int = logging.INFO, stream=None) -> None:
    """Route every `nv.*` logger (and paho's warnings) to stdout in logfmt."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def event(logger: logging.Logger, level: int, message: str, **fields) -> None:
    """Log `message` with structured fields: `event(log, INFO, "classified", source=..., label=...)`."""
    logger.log(level, message, extra={"fields": fields})
