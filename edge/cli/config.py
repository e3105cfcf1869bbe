"""`nv-edge config check PATH`: load the unit's config as the service would, and say what would run.

Exit 0 with "OK: PATH" and a summary, or 1 with the one error that stops it (file, key, what to do).
Run it as the service's user (`sudo -u naturevision ...`): then unreadable secrets show up here too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.arguments import EXIT_FAILED
from edge.config import (
    DEFAULT_PATH,
    AudioConfig,
    ConfigError,
    EdgeConfig,
    FolderSource,
    HttpSource,
    ImageConfig,
    MicrophoneSource,
    PicameraSource,
    load_config,
)
from edge.decisions.events import EventRules
from edge.decisions.groups import alert_groups, describe, plain


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser("check", help="check a config file and summarise what would run")
    check.add_argument("path", type=Path, nargs="?", default=DEFAULT_PATH, metavar="PATH",
                       help=f"the config file (default {DEFAULT_PATH})")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.path)
    except ConfigError as exc:
        print(f"nv-edge config check: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"OK: {args.path}")
    for line in summary(cfg):
        print(f"  {line}")
    return 0


def summary(cfg: EdgeConfig) -> list[str]:
    d = cfg.device
    where = f", at {d.location.lat}, {d.location.lon}" if d.location else ""
    lines = [f"device  {d.id} (state in {d.state_dir}{where})"]
    lines += _image(cfg.image) if cfg.image else ["image   off"]
    lines += _audio(cfg.audio) if cfg.audio else ["audio   off"]
    lines.append(f"outbox  {cfg.outbox.path} (at most {cfg.outbox.max_mb:g} MB)")
    m = cfg.mqtt
    if m is None:
        lines.append("mqtt    off: records stay in the outbox")
    else:
        tls = "TLS" + (" + client certificate" if m.tls.cert else "") if m.tls else "no TLS"
        if m.password_file and not m.tls:
            tls += ": the password crosses the link in clear text"
        lines.append(f"mqtt    {m.host}:{m.port} ({tls}) as {d.id}, MQTT {m.protocol}, confirm by {m.confirm}")
    return lines


def _model(section: ImageConfig | AudioConfig, manifest=None, path=None) -> str:
    m = manifest or section.manifest
    resolved = section.resolved_thresholds(m) if isinstance(section, ImageConfig) else section.resolved_thresholds()
    thresholds = ", ".join(f"{label} {value:g}" for label, value in resolved.items())
    groups = alert_groups(m)
    decided = "" if plain(groups) else f" (groups: {describe(groups)})"
    return f"{m.name} {m.version} ({path or section.model}); alert at {thresholds or 'nothing'}{decided}"


def _events(rules: EventRules) -> str:
    """The rules that won: the model's, with the config's keys over them."""
    how = f"the mean of the last {rules.window}" if rules.rule == "mean" else f"{rules.k} of the last {rules.n}"
    return (f"  events {how} observations at the threshold ({rules.rule}; hysteresis {rules.hysteresis:g}, "
            f"cooldown {rules.cooldown_s:g} s)")


def _image(image: ImageConfig) -> list[str]:
    lines = []
    for entry in image.models:
        t = entry.manifest.trained_on
        tile = ("whole frames" if image.tile == 0 else f"{image.tile} px tiles" if image.tile
                else f"{t.tile_px} px tiles (the model's)" if t.tile_px else "whole frames (the model's)")
        if t.ground_resolution_m is not None and t.tile_px is not None and image.tile is None:
            tile = (f"{t.tile_px} px tiles at {t.ground_resolution_m:g} m/px ({t.tile_px * t.ground_resolution_m:g} m "
                    "of ground each; frames resampled to it)")
        lines.append(f"image   {_model(image, entry.manifest, entry.path)}; {tile}")
        lines += [_events(entry.events)] if entry.events is not None else []
    if len(image.models) > 1:
        lines.append("  each frame goes to the model whose ground resolution fits it best")
    if any(e.manifest.trained_on.ground_resolution_m is not None for e in image.models):
        said = f"{image.gsd:g} m/px" if image.gsd is not None else "unknown (out of domain: no alert)"
        lines.append(f"  ground resolution of frames whose files do not say it: {said}"
                     + ("; out-of-domain frames may alert" if image.allow_out_of_domain else ""))
    return lines + [f"  from  {_source(s)}" for s in image.sources]


def _audio(audio: AudioConfig) -> list[str]:
    lines = [f"audio   {_model(audio)}; hop {audio.hop_s:g} s", _events(audio.events), f"  from  {_source(audio.source)}"]
    if audio.score_log is not None:
        lines.append(f"  scores to {audio.score_log} for {audio.score_log_hours:g} h (at most {audio.score_log_mb:g} MB)")
    return lines


def _source(source) -> str:
    if isinstance(source, FolderSource):
        then = f"move to {source.done_dir}" if source.after == "move" else source.after
        return f"folder {source.path} (then {then})"
    if isinstance(source, HttpSource):
        return f"http {source.url} every {source.interval_s:g} s"
    if isinstance(source, PicameraSource):
        return f"picamera2 camera {source.camera} every {source.interval_s:g} s"
    if isinstance(source, MicrophoneSource):
        return f"microphone {source.device if source.device is not None else '(system default)'}"
    return repr(source)
