"""Everything the unit accepts from MQTT, in one place: receipts and commands. A message is data,
never code: a receipt can only delete records the base station says it holds, and a command can
only be one of a fixed set of verbs. Anything else is logged and ignored."""

from __future__ import annotations

import json
import logging

from edge.delivery import topics

log = logging.getLogger("nv.inbound")


def parse_receipt(payload: bytes, topic: str) -> tuple[list[str], list[str]] | None:
    """(detection ids, thumbnail ids) from nv-base, or None for a malformed receipt."""
    try:
        receipt = json.loads(payload)
        detections = receipt.get("detections", [])
        thumbnails = receipt.get("thumbnails", [])
        if not isinstance(detections, list) or not isinstance(thumbnails, list):
            raise ValueError("detections and thumbnails must be lists")
        if not all(isinstance(i, str) for i in detections + thumbnails):
            raise ValueError("ids must be strings")
    except (ValueError, AttributeError, TypeError) as exc:
        log.warning("ignored a malformed receipt on %s: %s", topic, exc)
        return None
    return detections, thumbnails


def parse_command(payload: bytes, topic: str) -> str | None:
    """One of topics.COMMAND_VERBS, or None (logged) for anything else."""
    verb = payload.decode("utf-8", "replace").strip()
    if verb not in topics.COMMAND_VERBS:
        log.warning("ignored command %r on %s: the known verbs are %s", verb[:80], topic, ", ".join(topics.COMMAND_VERBS))
        return None
    log.info("command %r", verb)
    return verb
