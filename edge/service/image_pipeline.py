"""The image pipeline of `nv-edge run`: frames from the sources -> classify -> records (and image
events over a source's frames) -> outbox, flushed before the source is told the frame is done.

With several image models each frame goes to the one whose training scale fits it best
(edge/image/choice.py); events are followed per source and model. A frame out of its model's domain
(edge/image/scale.py) feeds no event unless [image] allow_out_of_domain.

The openers of the formats a unit reads (edge.image.decode.FORMATS) are imported here: Pillow would
otherwise import all of its ~40 plugins (`Image.init()`, 3 MB resident for good) at the first frame
that is neither a JPEG nor a PNG (a TIFF, a WebP, an unreadable file)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone

from PIL import JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin  # noqa: F401

from edge.decisions.events import EventTracker
from edge.decisions.groups import alert_groups
from edge.ids import derived_uuid7
from edge.image.choice import ImageModel, pick
from edge.image.classify import ClassifyOptions, classify_frame
from edge.image.decode import ImageError
from edge.image.footage import video_records
from edge.image.records import image_record
from edge.image.thumbnail import best_tile_jpeg
from edge.image.video import is_video_file
from edge.model.bundle import BundleError
from edge.model.loaded import Model, load_model
from edge.records.record import error_record, event_record, iso_utc
from edge.service import journal, orthos
from edge.service.context import Context, drain
from edge.sources.factory import build_sources
from edge.sources.item import Item

log = logging.getLogger("nv.service")


class ImagePipeline:
    name = "image"

    def __init__(self, ctx: Context):
        self.ctx = ctx
        cfg = ctx.cfg.image
        options = ClassifyOptions(thresholds={}, tile=cfg.tile, overlap=cfg.overlap, batch_size=cfg.batch,
                                  default_gsd=cfg.gsd, allow_out_of_domain=cfg.allow_out_of_domain)
        self.models: list[ImageModel] = []
        for entry in cfg.models:
            model = load_model(entry.path, backend=cfg.backend, num_threads=cfg.threads)
            self.models.append(ImageModel(model, replace(options, thresholds=cfg.resolved_thresholds(model.manifest))))
        self.rules = {m.model.path: entry.events for m, entry in zip(self.models, cfg.models)}
        self.sources = build_sources(cfg.sources, ctx.cfg.device.state_dir, kind="image")
        self.events = {}  # (source name, model path) -> its tracker: frames of two cameras are not one sequence
        for m in self.models:
            rules = self.rules[m.model.path]
            if rules is not None:
                manifest = m.model.manifest
                self.events |= {(s.name, m.model.path): EventTracker(manifest.labels, m.options.thresholds, rules,
                                                                     groups=alert_groups(manifest))
                                for s in self.sources}

    @property
    def model(self) -> Model:
        """The first image model (the only one in the single-model form)."""
        return self.models[0].model

    def run(self) -> None:
        try:
            drain(self.ctx, self.name, self.sources, self.process)
        finally:
            self._close()

    def process(self, source, item: Item) -> None:
        if item.path is not None and is_video_file(item.path):
            self._video(source, item)
            return
        if item.path is not None and orthos.is_ortho(item.path):
            self._ortho(source, item)
            return
        chosen, record = self.classify(item)
        if record is None:  # the file went away while being read (card pulled): not done, not lost
            source.release(item)
            return
        self._keep(item, record, item.path if item.path is not None else item.data, chosen)
        self.ctx.outbox.flush()  # durable before the source forgets the item
        source.done(item, "error" if "error" in record else ("alert" if record.get("alert") else "ok"))
        self.ctx.counters.add(frames=1)
        journal.event(log, logging.INFO, "classified", source=item.origin, label=record.get("label"),
                      score=record.get("score"), alert=record.get("alert"), error=record.get("error"),
                      out_of_domain="out_of_domain" in record or None)

    def _keep(self, item: Item, record: dict, picture, chosen: ImageModel) -> None:
        """The record, with the events it ends or starts and its thumbnail, into the outbox (not yet flushed)."""
        ctx = self.ctx
        records = [record]
        tracker = self.events.get((item.source, chosen.model.path))
        judged = "out_of_domain" not in record or record["out_of_domain"]["allowed"]
        if tracker is not None and "error" not in record and judged:
            m = chosen.model.manifest
            scores = [record["scores"][label] for label in m.labels]
            t = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
            for event in tracker.observe(t, t, scores):
                records.append(event_record(event, kind="image", source=item.source, device=ctx.cfg.device.id,
                                            model=chosen.model.identity, rules=self.rules[chosen.model.path],
                                            origin=None, labels=m.labels, time_source=record["time_source"]))
        thumbs = {}
        if ctx.cfg.image.thumbnails and record.get("alert") and "tiles" in record:
            thumb = best_tile_jpeg(picture, record)
            if thumb:
                thumbs[record["id"]] = thumb
        ctx.keep(records, thumbs)

    def _ortho(self, source, item: Item) -> None:
        """A georeferenced GeoTIFF: scanned as `nv-edge scan` does; one record per mining area."""
        ctx, cfg = self.ctx, self.ctx.cfg
        chosen = orthos.scan_model(self.models)
        try:
            if chosen is None:
                raise orthos.OrthoError(f"{item.path}: is an orthomosaic, and no image model of this unit learnt a ground "
                                         "resolution to scan it at; add one under [image] models")
            summary = orthos.scan_ortho(item.path, chosen, state_dir=cfg.device.state_dir, record_id=item.record_id,
                                        device=cfg.device.id, backend=cfg.image.backend, threads=cfg.image.threads,
                                        on_tiles=lambda n: ctx.liveness.beat(self.name))
            records = summary.records
        except Exception as exc:  # noqa: BLE001 - one bad ortho must never stop the service, as for frames
            if not item.path.exists():  # the card was pulled mid-scan: offer it again (same id, the scan resumes)
                journal.event(log, logging.WARNING, "orthomosaic vanished while being scanned; will retry", source=item.origin)
                source.release(item)
                return
            known = isinstance(exc, (orthos.OrthoError, BundleError, ValueError))
            error = str(exc) if known else f"{item.origin}: unexpected {type(exc).__name__}: {exc}"
            model = (chosen or self.models[0]).model
            records = [error_record(source=item.origin, error=error, device=cfg.device.id, model=model.identity)]
            records[0]["id"] = item.record_id
        ctx.keep(records)
        ctx.outbox.flush()  # durable before the source forgets the item
        failed = any("error" in r for r in records)
        source.done(item, "error" if failed else ("alert" if records else "ok"))
        ctx.counters.add(frames=1)
        journal.event(log, logging.INFO, "orthomosaic scanned", source=item.origin, areas=0 if failed else len(records),
                      error=records[0].get("error") if failed else None)

    def _video(self, source, item: Item) -> None:
        """One record per sampled frame, each kept as it is made (a long video is never held in memory), with
        ids derived from the file's: classified again after a crash, the same records are stored once."""
        cfg = self.ctx.cfg
        alerts = frames = 0
        error = None
        chosen = self.models[0]  # a video's frames go to the first image model
        for n, (record, picture) in enumerate(video_records(
                chosen.model, item.path, chosen.options, device=cfg.device.id, every_s=1.0 / cfg.image.video_fps,
                config_gsd=cfg.image.gsd, warn=lambda message: journal.event(log, logging.WARNING, message,
                                                                              source=item.origin))):
            record["id"] = derived_uuid7(item.record_id, n)
            if "error" in record:
                error = record["error"]
                if not item.path.exists():  # the card was pulled mid-read: offer it again (same ids), not done
                    journal.event(log, logging.WARNING, "video vanished while being read; will retry", source=item.origin)
                    self.ctx.outbox.flush()
                    source.release(item)
                    return
            frames += "error" not in record
            alerts += bool(record.get("alert"))
            self._keep(item, record, picture, chosen)
        self.ctx.outbox.flush()  # durable before the source forgets the item
        source.done(item, "error" if error else ("alert" if alerts else "ok"))
        self.ctx.counters.add(frames=frames)
        journal.event(log, logging.INFO, "video classified", source=item.origin, frames=frames, alerts=alerts,
                      error=error)

    def classify(self, item: Item) -> tuple[ImageModel, dict | None]:
        device = self.ctx.cfg.device.id
        what = item.path if item.path is not None else item.data
        chosen, ground = pick(self.models, what)
        model = chosen.model
        m = model.manifest
        try:
            result = classify_frame(model, what, chosen.options, ground)
        except ImageError as exc:
            if item.path is not None and not item.path.exists():
                journal.event(log, logging.WARNING, "file vanished while being read; will retry", source=item.origin)
                return chosen, None
            record = error_record(source=item.origin, error=f"{item.origin}: {exc}", device=device, model=model.identity)
        except Exception as exc:  # noqa: BLE001 - one bad frame must never stop the service
            record = error_record(source=item.origin, error=f"{item.origin}: unexpected {type(exc).__name__}: {exc}",
                                  device=device, model=model.identity)
        else:
            record = image_record(result, model=model.identity, labels=m.labels, alert_labels=m.alert_labels,
                                  source=item.origin, path=item.path, device=device)
            if item.data is not None and result.captured is None:  # a snapshot: captured when received
                record["time"] = iso_utc(datetime.fromtimestamp(item.arrived, timezone.utc))
                record["time_source"] = "received"
        record["id"] = item.record_id  # the ledger's id: a re-run after a crash is the same record
        return chosen, record

    def _close(self) -> None:
        ctx = self.ctx
        identity = {m.model.path: m.model for m in self.models}
        for (name, path), tracker in self.events.items():
            model = identity[path]
            ctx.keep([event_record(e, kind="image", source=name, device=ctx.cfg.device.id, model=model.identity,
                                   rules=self.rules[path], origin=None, labels=model.manifest.labels)
                      for e in tracker.close()])
        for source in self.sources:
            source.close()
