"""Which stored records a rule notifies about, and what the notification says."""

from __future__ import annotations

from basestation.baseconfig import Rule


def matches(rule: Rule, record: dict) -> bool:
    """A record with a label and a score (not an error record) that passes every condition of the rule.
    An event record notifies only in the rule's phases (by default, once: at its start)."""
    if "error" in record or record.get("label") is None or not isinstance(record.get("score"), (int, float)):
        return False
    if rule.alerts_only and record.get("alert") is not True:
        return False
    if rule.labels and record["label"] not in rule.labels:
        return False
    if rule.units and record.get("device") not in rule.units:
        return False
    if record["score"] < rule.min_score:
        return False
    event = record.get("event")
    return not isinstance(event, dict) or event.get("phase") in rule.phases


def message(rule: Rule, record: dict, *, public_url: str | None, suppressed: int = 0) -> dict:
    """The JSON body of a webhook or MQTT notification (docs/web.md#notifications); e-mail says the same
    in words (`text`)."""
    event = record.get("event") if isinstance(record.get("event"), dict) else None
    return {
        "rule": rule.name, "id": record["id"], "device": record["device"], "time": record["time"],
        "kind": record.get("kind"), "source": record.get("source"), "label": record["label"],
        "score": record["score"], "alert": record.get("alert"), "threshold": record.get("threshold"),
        "geo": record.get("geo"),
        "event": None if event is None else {k: event.get(k) for k in ("id", "phase", "start", "end", "peak_score")},
        "url": f"{public_url.rstrip('/')}/#detection={record['id']}" if public_url else None,
        "suppressed": suppressed,
    }


def subject(body: dict) -> str:
    return f"[NatureVision] {body['label']} {body['score']:.2f} at {body['device']} ({body['rule']})"


def text(body: dict) -> str:
    lines = [f"{body['label']} (score {body['score']:.3f}) at unit {body['device']}, captured {body['time']}.",
             f"Source: {body['source']}"]
    if body.get("geo"):
        lines.append(f"Location: {body['geo'].get('lat')}, {body['geo'].get('lon')}")
    if body.get("event"):
        lines.append(f"Event {body['event']['id']}, phase {body['event']['phase']}, peak {body['event']['peak_score']}")
    if body.get("url"):
        lines.append(f"Evidence: {body['url']}")
    if body.get("suppressed"):
        lines.append(f"{body['suppressed']} earlier notification(s) of this rule were held back by its rate limit.")
    lines.append(f"Rule: {body['rule']}; record {body['id']}")
    return "\n".join(lines) + "\n"
