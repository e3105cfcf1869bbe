"""A unit's audio scores for a while, so that thresholds can be chosen on its own site's sounds
(`nv-convert calibrate` reads the file as that site's background). The format is in docs/score-log.md:
a header line, then one compact JSON line per classified window.

It is bounded: it stops `hours` after its header was written (a restarted service goes on in the
same file until then, not for another `hours`) or when the file reaches `max_bytes`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.decisions.groups import alert_groups, group_scores
from edge.model.loaded import Model
from edge.records.record import RMS_FLOOR_DBFS, SCORE_DIGITS, iso_utc

log = logging.getLogger("nv.audio")

FORMAT = 1
DEFAULT_HOURS = 24.0
DEFAULT_MAX_MB = 64.0  # a day of windows every 0.5 s takes about 25 MB


class ScoreLogError(Exception):
    """The score log cannot be written; the message names the file and what to do."""


class ScoreLog:
    def __init__(self, path: str | Path, model: Model, *, hours: float = DEFAULT_HOURS,
                 max_bytes: int = int(DEFAULT_MAX_MB * 2**20), hop_s: float | None = None,
                 clock: Callable[[], float] = time.time):
        if not hours > 0 or not max_bytes > 0:
            raise ScoreLogError(f"{path}: a score log needs hours > 0 and a size limit > 0, got {hours} h, {max_bytes} bytes")
        self.path = Path(path)
        self.hours_s = hours * 3600
        self.labels = model.manifest.labels
        self.groups = alert_groups(model.manifest)
        self.max_bytes = max_bytes
        self.clock = clock
        self.lines = 0  # window lines written by this process
        self.stopped: str | None = None  # why it no longer writes
        header = self._header(model, hop_s)
        self.until = datetime.fromisoformat(header["until"].replace("Z", "+00:00")).timestamp()
        self._time_up = f"its time was up at {header['until']}; move the file away to log again"
        try:
            self._file = open(self.path, "a", encoding="utf-8")
            if self._file.tell() == 0:
                self._file.write(json.dumps(header, separators=(",", ":")) + "\n")
                self._file.flush()
            self.size = self._file.tell()
        except OSError as exc:
            raise ScoreLogError(f"{self.path}: cannot write the score log ({exc.strerror or exc}); "
                                "give a path in a folder this user can write") from None
        if self.clock() >= self.until:
            self._stop(self._time_up, logging.INFO)

    def _header(self, model: Model, hop_s: float | None) -> dict:
        """This file's header: the one it has, or a new one."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                first = fh.readline()
        except FileNotFoundError:
            first = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise ScoreLogError(f"{self.path}: cannot be read as a score log ({exc}); give another path") from None
        if not first:
            now = self.clock()
            return {"score_log": FORMAT, "model": model.identity, "labels": list(self.labels),
                    "groups": {name: list(members) for name, members in self.groups.items()}, "hop_s": hop_s,
                    "started": iso_utc(_utc(now)), "until": iso_utc(_utc(now + self.hours_s))}
        try:
            header = json.loads(first)
            datetime.fromisoformat(header["until"].replace("Z", "+00:00"))
            if header["score_log"] != FORMAT:
                raise ValueError(header["score_log"])
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ScoreLogError(f"{self.path}: is not a score log of format {FORMAT} (its first line is no "
                                "score-log header); give another path") from None
        if header.get("model") != model.identity:
            name = (header.get("model") or {}).get("name", "?")
            raise ScoreLogError(f"{self.path}: holds the scores of another model ({name}); move it away or "
                                "give another path to log this model's")
        return header

    def add(self, moment: datetime, rms_dbfs: float, scores: np.ndarray) -> bool:
        """One classified window starting at `moment`; False once the log has stopped."""
        if self.stopped:
            return False
        if self.clock() >= self.until:
            self._stop(self._time_up, logging.INFO)
            return False
        line = json.dumps({
            "time": iso_utc(moment),
            "rms_dbfs": round(max(float(rms_dbfs), RMS_FLOOR_DBFS), 1),
            "scores": {label: round(float(v), SCORE_DIGITS) for label, v in zip(self.labels, scores)},
            "groups": {name: round(float(v), SCORE_DIGITS)
                       for name, v in zip(self.groups, group_scores(scores, self.labels, self.groups))},
        }, separators=(",", ":")) + "\n"
        if self.size + len(line) > self.max_bytes:
            self._stop(f"it reached its limit of {self.max_bytes / 2**20:g} MB")
            return False
        try:
            self._file.write(line)
            self._file.flush()
        except OSError as exc:  # a full card must not stop the listening
            self._stop(f"writing failed ({exc.strerror or exc})")
            return False
        self.size += len(line)
        self.lines += 1
        return True

    def _stop(self, why: str, level: int = logging.WARNING) -> None:
        self.stopped = why
        log.log(level, "score log %s stopped: %s", self.path, why)
        self.close()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:  # what a failed write left buffered cannot be written now either
            pass


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
