"""`nv-base list`: recent detections and the state of each unit, as tables for people;
`nv-base dead-letters`: the messages that were refused, and why; `nv-base unit list`: the provisioned units."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import TextIO

from basestation.store import MAX_DEAD_LETTERS, Store
from edge.delivery import topics


def write_listing(store: Store, out: TextIO, *, limit: int) -> None:
    out.write(f"recent detections (newest first, {limit} at most)\n")
    fmt = "{:<36} {:<12} {:<24} {:<12} {:>6} {:<5} {:>9}  {}\n"
    out.write(fmt.format("id", "device", "captured", "label", "score", "alert", "late (s)", "where / event / error"))
    for r in store.recent(limit):
        where = r["error"] or (f"{r['lat']:.5f},{r['lon']:.5f}" if r["lat"] is not None else "")
        event = json.loads(r["record"]).get("event") if r["label"] is not None else None
        if isinstance(event, dict):
            where = f"{where}  {_event(event)}".strip()
        score = "" if r["score"] is None else f"{r['score']:.3f}"
        alert = "" if r["alert"] is None else ("YES" if r["alert"] else "no")
        late = "" if r["queued_s"] is None else f"{r['queued_s']:.0f}"
        out.write(fmt.format(r["id"], _cut(r["device"], 12), r["time"], _cut(r["label"] or "ERROR", 12), score, alert, late, where))
    out.write("\nunits\n")
    fmt = "{:<12} {:<8} {:<24} {:>8} {:>10} {:>10} {:>7} {:<8} {}\n"
    out.write(fmt.format("device", "state", "since", "outbox", "oldest (s)", "disk free", "cpu °C", "clock", "last heard"))
    now = time.time()
    for d in store.devices():
        h = json.loads(d["health"]) if d["health"] else {}
        box = h.get("outbox", {})
        oldest = box.get("oldest_age_s")
        disk = h.get("disk_free_bytes")
        clock = h.get("clock", {}).get("synchronized", "")
        out.write(fmt.format(
            _cut(d["device"], 12), d["state"] or "?", d["state_time"] or "", box.get("depth", ""),
            "" if oldest is None else f"{oldest:.0f}", "" if disk is None else f"{disk / 1e9:.1f} GB",
            "" if h.get("cpu_temp_c") is None else h["cpu_temp_c"],
            {True: "synced", False: "NOT SYNC"}.get(clock, str(clock)), ago(now - d["last_seen"]),
        ))
    counters = store.counters()
    out.write(f"\nstored {counters.get('stored', 0)}, duplicates ignored {counters.get('duplicates', 0)}, "
              f"rejected {counters.get('rejected', 0)} (nv-base dead-letters says why)\n")


def write_dead_letters(store: Store, out: TextIO, *, limit: int) -> None:
    counters = store.counters()
    causes = sorted(((n, name.split(".", 1)[1]) for name, n in counters.items() if name.startswith("rejected.")),
                    key=lambda c: (-c[0], c[1]))
    out.write(f"dead letters: {counters.get('rejected', 0)} message(s) refused in all"
              + (f"; by cause: {', '.join(f'{cause} {n}' for n, cause in causes)}" if causes else "") + "\n")
    out.write(f"\nnewest first ({limit} at most; the database keeps the newest {MAX_DEAD_LETTERS:,})\n")
    retained_topics = set()
    for d in store.dead_letters(limit):
        when = datetime.fromtimestamp(d["received"], timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        where = topics.split(d["topic"])
        if d["retained"] or (where and where[1] in (topics.STATUS, topics.HEALTH)):
            retained_topics.add(d["topic"])
        out.write(f"{when}  {d['topic']}{' (retained)' if d['retained'] else ''}  {d['size']:,} bytes  {d['cause']}\n"
                  f"    why:   {d['reason']}\n    start: {_cut(repr(bytes(d['prefix'])), 100)}\n")
    for topic in sorted(retained_topics):
        out.write(f"\n{topic} is a retained topic: the broker may still hold this payload and give it to every new "
                  f"subscriber, until the unit publishes there again or someone allowed to write it clears it "
                  f"(mosquitto_pub -r -n -t {topic})\n")


def write_units(rows: list, crl_next: str | None, out: TextIO) -> None:
    """`nv-base unit list`: rows of basestation.units.UnitRow."""
    fmt = "{:<16} {:<44} {:<17} {:<12} {:<8} {}\n"
    out.write(fmt.format("unit", "access", "since", "cert until", "state", "last heard"))
    now = time.time()
    for r in rows:
        since = "" if r.since is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.since))
        heard = "never" if r.last_seen is None else ago(now - r.last_seen)
        out.write(fmt.format(r.name, r.access, since, r.cert_expires or "", r.state or "?", heard))
    if crl_next is not None:
        out.write(f"\nCRL next update {crl_next}: run `nv-base unit crl` before then, or the broker refuses every unit\n")


def _event(event: dict) -> str:
    """One phase of an event in a line: "event end 16:00:00Z–16:42:10Z (42 min), peak 0.931 at 16:10:00Z, 5060 windows"."""
    start, end = event["start"], event["end"]
    until = "…" if end is None else _clock(end) if end[:10] == start[:10] else f"{end[:10]} {_clock(end)}"
    text = (f"event {event['phase']} {_clock(start)}–{until} ({_duration(event['duration_s'])}), peak {event['peak_score']:.3f} "
            f"at {_clock(event['peak_time'])}, {event['windows']} windows")
    if event.get("suppressed"):
        text += f", {event['suppressed']} suppressed in cooldown"
    return text


def _clock(iso: str) -> str:
    """The time of day of an ISO 8601 UTC time, to the second ("16:42:10Z"); the date is in `captured`."""
    return iso[11:19] + "Z"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return datetime.fromtimestamp(time.time() - seconds, timezone.utc).strftime("%Y-%m-%d")
