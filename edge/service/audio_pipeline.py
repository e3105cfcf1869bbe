"""The audio pipeline of `nv-edge run`: a microphone (live, events) or a watched folder of clips.

Microphone: windows every hop -> classifier -> events -> outbox (group commit, <= 1 s). A microphone
that stops delivering (unplugged, taken by another program) is reopened with back-off; open events
end at the last window heard. Clips: like frames (edge/service/run.py), one item at a time, records
flushed before the file is marked done; a clip's records get ids derived from the id the ledger gave
the clip, so a clip classified again after a crash makes the same records.

With `[audio] score_log`, every classified window's scores also go to that file for the hours asked
(edge/audio/score_log.py); a log that cannot be written is reported and left out, never a reason to
stop listening.
"""

from __future__ import annotations

import logging

from edge.audio.audiofile import AudioFileError
from edge.audio.listen import AudioClassifier, AudioOptions, LiveSession, classify_clip
from edge.audio.microphone import Microphone, MicrophoneError
from edge.audio.score_log import ScoreLog, ScoreLogError
from edge.ids import derived_uuid7
from edge.model.loaded import load_model
from edge.records.record import error_record
from edge.service import journal
from edge.service.context import drain
from edge.sources.factory import build_sources
from edge.sources.item import Item

log = logging.getLogger("nv.audio")
REOPEN_MIN_S, REOPEN_MAX_S = 2.0, 60.0


class AudioPipeline:
    name = "audio"

    def __init__(self, ctx):
        self.ctx = ctx
        cfg = ctx.cfg.audio
        self.model = load_model(cfg.model, backend=cfg.backend, num_threads=cfg.threads)
        self.classifier = AudioClassifier(self.model, AudioOptions(
            thresholds=cfg.resolved_thresholds(), hop_s=cfg.hop_s, rms_gate_dbfs=cfg.rms_gate_dbfs,
            per_window=cfg.per_window, events=cfg.events))
        self.live = cfg.source.type == "microphone"
        self.sources = [] if self.live else build_sources([cfg.source], ctx.cfg.device.state_dir, kind="audio")
        self.score_log = None
        if cfg.score_log is not None:
            try:
                self.score_log = ScoreLog(cfg.score_log, self.model, hours=cfg.score_log_hours,
                                          max_bytes=int(cfg.score_log_mb * 2**20), hop_s=cfg.hop_s)
            except ScoreLogError as exc:
                journal.event(log, logging.ERROR, f"no score log: {exc}")

    def run(self) -> None:
        try:
            self._listen() if self.live else drain(self.ctx, self.name, self.sources, self._clip)
        finally:
            for source in self.sources:
                source.close()
            if self.score_log is not None:
                self.score_log.close()

    # -- microphone ------------------------------------------------------------------------------

    def _listen(self) -> None:
        ctx, cfg = self.ctx, self.ctx.cfg.audio
        wait = REOPEN_MIN_S
        while not ctx.stop.is_set():
            ctx.liveness.beat(self.name, busy="opening the microphone")
            session = LiveSession(self.classifier, source=f"mic:{cfg.source.device or 'default'}", device=ctx.cfg.device.id,
                                  score_log=self.score_log)
            try:
                with Microphone(self.classifier.spec, cfg.source.device, hop_s=cfg.hop_s,
                                rms_gate_dbfs=cfg.rms_gate_dbfs) as mic:
                    journal.event(log, logging.INFO, "listening", device=mic.device, rate=mic.device_rate)
                    wait = REOPEN_MIN_S
                    for window in mic.windows(ctx.stop):
                        ctx.liveness.beat(self.name)
                        records = session.add(window)
                        if records:
                            ctx.keep(records)
                            self._log_events(records)
                        ctx.counters.add(windows=1)
                    stats = mic.stats()
                    journal.event(log, logging.INFO, "microphone closed", windows=stats.windows, dropped=stats.dropped,
                                  overflows=stats.overflows)
            except MicrophoneError as exc:
                journal.event(log, logging.ERROR, f"{exc}; reopening in {wait:.0f} s")
            finally:
                ctx.keep(session.close())
            if ctx.stop.wait(wait):
                break
            wait = min(wait * 2, REOPEN_MAX_S)

    # -- clips -----------------------------------------------------------------------------------

    def _clip(self, source, item: Item) -> None:
        ctx = self.ctx
        device = ctx.cfg.device.id
        try:
            records = list(classify_clip(self.classifier, item.path, device, score_log=self.score_log))
        except AudioFileError as exc:
            if not item.path.exists():
                journal.event(log, logging.WARNING, "clip vanished while being read; will retry", source=item.origin)
                source.release(item)
                return
            records = [error_record(source=item.origin, error=str(exc), device=device, kind="audio",
                                    model=self.model.identity)]
        for n, record in enumerate(records):
            record["id"] = derived_uuid7(item.record_id, n)
        ctx.keep(records)
        ctx.outbox.flush()
        source.done(item, "error" if records and "error" in records[0] else "ok")
        ctx.counters.add(clips=1)
        self._log_events(records)
        journal.event(log, logging.INFO, "clip classified", source=item.origin, records=len(records),
                      events=sum(1 for r in records if r.get("event", {}).get("phase") == "start"))

    def _log_events(self, records: list[dict]) -> None:
        for r in records:
            event = r.get("event")
            if event and event["phase"] in ("start", "end"):
                journal.event(log, logging.INFO, f"event {event['phase']}", label=r["label"], source=r["source"],
                              peak=event["peak_score"], duration_s=event["duration_s"])
