"""The base station's database: each detection stored once by its id, in SQLite (a file, the
default) or PostgreSQL (a server that several workers share). One API, one set of statements;
what the two databases spell differently is in basestation/dialects.py, the schema in
basestation/migrations/ (applied when the store opens).

`save()` commits a whole batch in one transaction; the listener acknowledges the batch's
messages to the broker only after it returns. SQLite runs WAL with synchronous=FULL: once a
message is acknowledged the broker forgets it, so the row must already be on disk, power cut or
not; PostgreSQL's commit is durable as its server is configured (synchronous_commit on, by default).

Notifications are queued in the same transaction too: `notify_rules(record)` (set by `nv-base listen
--config`, basestation/notify/) names the rules a new detection matches, and each gets a pending row
in `notifications`, so a notification is stored exactly when its detection is (no network I/O here:
the rule's worker sends it).

Refused messages are kept in the same transaction as dead letters (the newest MAX_DEAD_LETTERS;
the counters keep the totals), so an operator sees what came without the table growing forever.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from basestation.database import StoreError, connect, shown
from basestation.dialects import Match, Window
from basestation.migrate import migrate
from basestation.payloads import Accepted, DeadLetter
from basestation.places import area_bounds, area_centre

__all__ = ["MAX_DEAD_LETTERS", "Saved", "Store", "StoreError"]

log = logging.getLogger("nv.base")

MAX_DEAD_LETTERS = 10_000  # rows kept; each is at most ~3 KB (payloads.DEAD_LETTER_PREFIX, MAX_TEXT)
COLUMNS = "id, device, time, received, kind, source, label, score, alert, lat, lon, alt, queued_s, error, record"
WRITTEN = COLUMNS + ", south, north, west, east"  # an area's bounds (places.py), NULL for a point
ATTEMPTS = 5  # a transaction PostgreSQL aborts to break a deadlock between workers is tried again
# On PostgreSQL rows are written in this order in every transaction, so that workers sharing it take
# row locks in one order and cannot deadlock on one another's redeliveries. SQLite has one writer at a
# time and keeps the order of arrival (its rowids: oldest first).
KIND_ORDER = {"detection": 0, "thumbnail": 1, "status": 2, "health": 2}
WINDOW = timedelta(days=1)  # the map's first capture-time window (Store.in_box)


@dataclass
class Saved:
    """What one `save()` committed: counts, and the ids to confirm to each unit."""

    stored: int = 0
    duplicates: int = 0
    receipts: dict[str, tuple[list[str], list[str]]] = field(default_factory=lambda: defaultdict(lambda: ([], [])))
    unstorable: list[tuple[int, str]] = field(default_factory=list)  # (index in the batch, why): not stored
    new: list[dict] = field(default_factory=list)  # detections stored for the first time (not repeats)


class _Refused(Exception):
    """The server refused item `index` and aborted the transaction: start it again without it."""

    def __init__(self, index: int, why: str):
        self.index, self.why = index, why


class Store:
    def __init__(self, where: str | Path, *, password: str | None = None):
        """`where`: a SQLite file, or a PostgreSQL URI (postgresql://user@host:port/dbname)."""
        self.name = shown(where)
        self.notify_rules: Callable[[dict], Sequence[str]] | None = None  # see the module's docstring
        self.db, self.dialect = connect(where, password)
        try:
            self.migrated = migrate(self.db, self.dialect, self.name)  # the versions applied now
            self.dialect.spatial = ("geom" in self.dialect.columns(self.db, "detections")
                                    or "detection" in self.dialect.columns(self.db, "detections_place"))
        except self.dialect.errors as exc:
            self.db.close()
            raise StoreError(f"{self.name}: cannot open the base-station database: {exc}") from None
        except StoreError:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def save(self, batch: list[Accepted], dead: Sequence[DeadLetter] = ()) -> Saved:
        """Store `batch` and keep `dead` in one transaction. An item whose values the database will
        not take (a lone surrogate in a string; on PostgreSQL a NUL character too) is left out and
        named in `unstorable`; the caller keeps it as a dead letter. Raises StoreError when the
        database itself fails."""
        refused: dict[int, str] = {}  # grows by one item per pass, so the loop ends
        deadlocks = 0
        while True:
            try:
                return self._save(batch, dead, refused)
            except _Refused as exc:
                refused[exc.index] = exc.why
            except self.dialect.errors as exc:
                self._rollback()
                if isinstance(exc, self.dialect.transient) and deadlocks < ATTEMPTS:
                    deadlocks += 1
                    time.sleep(0.05 * deadlocks)
                    continue
                hint = "check free space" if self.dialect.name == "sqlite" else "check that the server is up and has free space"
                raise StoreError(f"{self.name}: cannot store {len(batch) + len(dead)} message(s): "
                                 f"{' '.join(str(exc).split())}; {hint}") from None

    def _save(self, batch: list[Accepted], dead: Sequence[DeadLetter], refused: dict[int, str]) -> Saved:
        saved = Saved(unstorable=sorted(refused.items()))
        now = time.time()
        sql = self.dialect.sql
        self.dialect.begin(self.db)
        order = range(len(batch))
        if self.dialect.name == "postgresql":
            order = sorted(order, key=lambda i: (KIND_ORDER[batch[i].kind], batch[i].id or batch[i].device))
        written = set()
        for index in order:
            if index in refused:
                continue
            try:
                self._item(batch[index], now, saved)
                written.add(index)
            except self.dialect.item_errors as exc:
                why = f"{type(exc).__name__}: {exc}"
                if self.dialect.aborted(self.db):
                    self._rollback()
                    raise _Refused(index, why) from None
                saved.unstorable.append((index, why))
        saved.unstorable.sort()
        self._queue_notifications(saved.new, now)
        for index in sorted(written):  # receipts in the order the messages came
            item = batch[index]
            if item.kind in ("detection", "thumbnail"):
                saved.receipts[item.device][item.kind == "thumbnail"].append(item.id)
        counts = Counter({"stored": saved.stored, "duplicates": saved.duplicates, "rejected": len(dead)})
        counts.update(f"rejected.{letter.cause}" for letter in dead)
        for letter in dead:
            self.db.execute(sql("INSERT INTO dead_letters (received, topic, cause, reason, retained, size, prefix) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)"),
                            (now, letter.topic, letter.cause, letter.reason, int(letter.retained), letter.size, letter.prefix))
        if dead:
            self.db.execute(sql("DELETE FROM dead_letters WHERE seq <= (SELECT max(seq) FROM dead_letters) - ?"),
                            (MAX_DEAD_LETTERS,))
        for name, n in sorted(counts.items()):
            if n:
                self.db.execute(sql("INSERT INTO counters (name, value) VALUES (?, ?) "
                                    "ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value"), (name, n))
        self.db.execute("COMMIT")
        return saved

    def _queue_notifications(self, records: list[dict], now: float) -> None:
        if self.notify_rules is None:
            return
        for record in records:
            try:
                names = list(self.notify_rules(record))
            except Exception:  # a bug in matching must not stop storing: the detection is kept
                log.exception("cannot match %s against the notification rules", record.get("id"))
                continue
            for name in names:
                self.db.execute(self.dialect.sql(
                    "INSERT INTO notifications (rule, record, state, attempts, next_try, created) "
                    "VALUES (?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING"), (name, record["id"], now, now))

    def _rollback(self) -> None:
        try:
            if self.dialect.in_transaction(self.db):
                self.db.execute("ROLLBACK")
        except self.dialect.errors:
            pass  # the connection is gone: the error that brought us here says so

    def _item(self, item: Accepted, now: float, saved: Saved) -> None:
        if item.kind == "detection":
            self._detection(item, now, saved)
        elif item.kind == "thumbnail":
            cur = self.db.execute(self.dialect.sql("INSERT INTO thumbnails (id, device, received, jpeg) VALUES (?, ?, ?, ?) "
                                                   "ON CONFLICT DO NOTHING"), (item.id, item.device, now, item.value))
            saved.stored += cur.rowcount
            saved.duplicates += 1 - cur.rowcount
        else:
            self._device(item, now)

    def _detection(self, item: Accepted, now: float, saved: Saved) -> None:
        r = item.value
        geo = r.get("geo")
        bounds = None if geo else area_bounds(r.get("area"))
        geo = geo or area_centre(r.get("area")) or {}
        cur = self.db.execute(
            self.dialect.sql(f"INSERT INTO detections ({WRITTEN}) VALUES ({', '.join('?' * 19)}) ON CONFLICT DO NOTHING"),
            (r["id"], r["device"], r["time"], now, r["kind"], r["source"], r.get("label"), r.get("score"),
             None if "alert" not in r else int(r["alert"]), geo.get("lat"), geo.get("lon"), geo.get("alt"),
             r.get("queued_s"), r.get("error"), item.raw or json.dumps(r, separators=(",", ":")),
             *(bounds or (None,) * 4)),
        )
        saved.stored += cur.rowcount
        saved.duplicates += 1 - cur.rowcount
        if cur.rowcount:
            saved.new.append(r)

    def _device(self, item: Accepted, now: float) -> None:
        """Keep the latest status and heartbeat per unit. Both are retained: the broker hands us
        the current one on every (re)subscribe, so the last to arrive is the one that holds."""
        v = item.value
        if item.kind == "status":
            self.db.execute(self.dialect.sql(
                "INSERT INTO devices (device, state, state_time, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT (device) "
                "DO UPDATE SET state = excluded.state, state_time = excluded.state_time, last_seen = excluded.last_seen"),
                (item.device, v["state"], v["time"], now))
        else:
            self.db.execute(self.dialect.sql(
                "INSERT INTO devices (device, health, health_time, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT (device) "
                "DO UPDATE SET health = excluded.health, health_time = excluded.health_time, last_seen = excluded.last_seen"),
                (item.device, item.raw or json.dumps(v, separators=(",", ":")), v["time"], now))

    # -- reading: rows are mappings (row["label"]), the same columns on both databases ---------------

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM detections").fetchone()[0]

    def ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM detections")]

    def recent(self, limit: int) -> list:
        """The last `limit` detections to arrive (nv-base list)."""
        return self._rows(f"SELECT {COLUMNS} FROM detections ORDER BY received DESC, id DESC LIMIT ?", (limit,))

    def detections(self, *, alerts_only: bool = False) -> list:
        where = "WHERE alert = 1" if alerts_only else ""
        return self._rows(f"SELECT {COLUMNS} FROM detections {where} ORDER BY time, id", ())

    def events(self, *, device: str | None = None, label: str | None = None, alert: bool | None = None,
               since: str | None = None, until: str | None = None, before: tuple[str, str] | None = None,
               limit: int = 50) -> list:
        """A page of the event list: newest capture time first, filtered by unit, label, alert or not,
        and capture time (`since` ≤ time < `until`, ISO 8601 UTC as in the records). The next page:
        `before=(time, id)` of the last row of this one."""
        where, args = [], []
        for column, value in (("device", device), ("label", label)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if alert is not None:
            where.append(f"alert = {int(alert)}")  # a literal, so that the planner may use the partial alert index
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if until is not None:
            where.append("time < ?")
            args.append(until)
        if before is not None:
            where.append("(time, id) < (?, ?)")
            args.extend(before)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self._rows(f"SELECT {COLUMNS} FROM detections {clause} ORDER BY time DESC, id DESC LIMIT ?", (*args, limit))

    def in_box(self, west: float, south: float, east: float, north: float, *, limit: int = 500,
               device: str | None = None, label: str | None = None, alert: bool | None = None,
               since: str | None = None, until: str | None = None) -> list:
        """Detections inside the box (WGS 84 degrees, edges included), newest capture time first: the map.
        A point is inside when its place is; a drone scan's area when its polygon's bounding box meets
        the box. The box may not cross the antimeridian (west ≤ east). The event list's filters too:
        unit, label, alert or not, capture time (`since` ≤ time < `until`, ISO 8601 UTC).

        Asked one capture-time window at a time, newest first, each four times wider than the one
        before (a day, 4 days, 16 …), until the page is full or the oldest row is reached: a box full
        of recent rows is answered from the first day, a nearly empty one from a few index probes,
        and neither sorts more than one window's matches."""
        if not (west <= east and south <= north):
            raise ValueError(f"a box needs west ≤ east and south ≤ north, got {west}, {south}, {east}, {north}")
        # Two statements: SQLite reads a lone min() or max() off the index, but scans the table for both at once.
        oldest = self.db.execute("SELECT min(time) FROM detections").fetchone()[0]
        newest = self.db.execute("SELECT max(time) FROM detections").fetchone()[0]
        if newest is None:
            return []
        match = Match(device, label, alert)
        start, end = since and _moment(since), until and _moment(until)
        first = max(_moment(oldest), start) if start else _moment(oldest)
        top = min(_moment(newest), end) if end else _moment(newest)
        upper, lower, width = end, top - WINDOW, WINDOW
        found: list = []
        while len(found) < limit:
            last = lower <= first
            bottom = start if last else lower
            window = Window(bottom and _iso(bottom), upper and _iso(upper),
                            bottom.timestamp() if bottom else float("-inf"), upper.timestamp() if upper else float("inf"))
            condition, args = self.dialect.box(west, south, east, north, window, limit - len(found), match)
            found += self._rows(f"SELECT {COLUMNS} FROM detections WHERE {condition} "
                                "ORDER BY time DESC, id DESC LIMIT ?", (*args, limit - len(found)))
            if last:
                break
            upper, width = lower, width * 4
            lower = upper - width
        return found

    def devices(self) -> list:
        return self._rows("SELECT * FROM devices ORDER BY device", ())

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counters").fetchall())

    def dead_letters(self, limit: int) -> list:
        return self._rows("SELECT * FROM dead_letters ORDER BY seq DESC LIMIT ?", (limit,))

    # -- the page's own statements (accounts, reviews, evidence, units): one statement each, committed
    # at once; `?` placeholders, turned into the driver's by the dialect

    def execute(self, sql: str, args: tuple | list = ()):
        """Run one statement; the cursor (fetchone() gives a tuple, rowcount what it changed)."""
        return self.db.execute(self.dialect.sql(sql), args)

    def query(self, sql: str, args: tuple | list = ()) -> list:
        """Rows as mappings (row["name"]), the same on both databases."""
        return self._rows(sql, tuple(args))

    def _rows(self, sql: str, args: tuple) -> list:
        try:
            return self.dialect.rows(self.db, self.dialect.sql(sql), args)
        except self.dialect.errors as exc:
            raise StoreError(f"{self.name}: cannot read: {' '.join(str(exc).split())}") from None


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as records have: compared as text with the time column."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
