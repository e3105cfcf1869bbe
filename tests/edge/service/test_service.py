"""The image pipeline of `nv-edge run` in process: records for each frame, events over a frame
sequence, the ledger's record ids, the static location and the clock mark."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from specialfiles import make_special_entries

from edge.config import load_config
from edge.delivery.health import health_payload
from edge.delivery.outbox import Outbox
from edge.ids import derived_uuid7
from edge.records.schemas import load_schema
from edge.service.context import ClockWatch, Context, Counters
from edge.service.image_pipeline import ImagePipeline
from edge.service.liveness import Liveness
from edge.service.run import status_line
from edge.sources.folder import skipped_files

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
TILES = ROOT / "samples" / "tiles"
VALIDATOR = jsonschema.Draft202012Validator(load_schema("detection"))


def pipeline(tmp_path: Path, clock: bool, image: str = "", gsd: float = 10.0) -> ImagePipeline:
    (tmp_path / "in").mkdir()
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
id = "unit-9"
state_dir = "{tmp_path / 'state'}"
location = {{ lat = 5.5, lon = -55.1, alt_m = 12.0 }}

[image]
model = "{MODEL}"
gsd = {gsd}  # the sample tiles are Sentinel-2 at 10 m/px, which their PNGs do not say
events = {{ k = 2, n = 2, hysteresis = 0.0, cooldown_s = 0 }}
{image}

[[image.sources]]
type = "folder"
path = "{tmp_path / 'in'}"
settle_s = 0
poll_s = 0.05
""")
    cfg = load_config(config)
    ctx = Context(cfg=cfg, outbox=Outbox(cfg.outbox.path), liveness=Liveness(60), counters=Counters(),
                  clock=ClockWatch(probe=lambda: {"synchronized": clock}), stop=threading.Event())
    return ImagePipeline(ctx)


def drop(tmp_path: Path, names: list[str]) -> None:
    """Frames of a camera sequence, one a minute (mtime is their capture time)."""
    for i, name in enumerate(names):
        target = tmp_path / "in" / f"{i:02d}_{name}"
        shutil.copy(TILES / name, target)
        os.utime(target, (1_780_000_000 + 60 * i, 1_780_000_000 + 60 * i))


def outbox_records(tmp_path: Path) -> list[dict]:
    with sqlite3.connect(tmp_path / "state" / "outbox.db") as con:
        return [json.loads(p) for (p,) in con.execute("SELECT payload FROM outbox WHERE leaf = 'detection' ORDER BY seq")]


def test_frames_of_a_sequence_make_records_and_one_event(tmp_path):
    p = pipeline(tmp_path, clock=False)
    mining = ["mining__g7d73574b__0.png", "mining__gfb894fb7__1.png"]  # both alert with the shipped model
    quiet = ["not_mining__gc727b5c4__0.png", "not_mining__gcf6ef3cb__0.png"]
    drop(tmp_path, quiet[:1] + mining + quiet)
    source = p.sources[0]
    for _ in range(50):
        for item in source.poll():
            p.process(source, item)
        if p.ctx.counters.frames == 5:
            break
        time.sleep(0.05)
    p.ctx.stop.set()
    p._close()
    p.ctx.outbox.close()
    records = outbox_records(tmp_path)
    frames = [r for r in records if "event" not in r]
    events = [r for r in records if "event" in r]
    assert [r["alert"] for r in frames] == [False, True, True, False, False]
    assert [(r["label"], r["event"]["phase"]) for r in events] == [("mining", "start"), ("mining", "end")]
    start, end = events
    assert start["event"]["id"] == end["event"]["id"] and end["event"]["windows"] == 2
    assert start["time"] == frames[1]["time"] and end["event"]["end"] == frames[2]["time"]
    for r in records:
        assert r["geo"] == {"lat": 5.5, "lon": -55.1, "alt": 12.0, "source": "config"}
        assert r["clock_synchronized"] is False and r["device"] == "unit-9"
    # every frame record carries the id the ledger claimed for its file
    ledger_ids = {row[0] for row in sqlite3.connect(tmp_path / "state" / "sources.db").execute("SELECT record_id FROM files")}
    assert {r["id"] for r in frames} == ledger_ids


def test_an_unreadable_frame_becomes_an_error_record_and_is_done(tmp_path):
    p = pipeline(tmp_path, clock=True)
    (tmp_path / "in" / "torn.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    source = p.sources[0]
    time.sleep(0.1)
    (item,) = source.poll()
    p.process(source, item)
    p.ctx.outbox.close()
    (record,) = outbox_records(tmp_path)
    assert "torn.jpg" in record["error"] and record["id"] == item.record_id
    assert "geo" not in record and record["clock_synchronized"] is True
    assert source.poll() == []  # done: not offered again


def test_a_video_in_the_watched_folder_makes_one_record_per_sampled_frame_with_derived_ids(tmp_path):
    pytest.importorskip("av", reason="PyAV (the `video` extra) is not installed: pip install 'naturevision[video]'")
    from videofiles import position, write_srt_new, write_video

    p = pipeline(tmp_path, clock=True, image="video_fps = 2", gsd=0.5)
    write_video(tmp_path / "in" / "DJI_0001.MP4", seconds=3.0)
    write_srt_new(tmp_path / "in" / "DJI_0001.SRT", seconds=3.0)  # beside it; not a frame, not offered
    write_video(tmp_path / "in" / "DJI_0002.MP4", seconds=1.0, created=None)  # no telemetry
    source = p.sources[0]
    time.sleep(0.1)
    items = source.poll()
    assert sorted(item.path.name for item in items) == ["DJI_0001.MP4", "DJI_0002.MP4"]
    for item in items:
        p.process(source, item)
    p.ctx.outbox.close()
    records = [r for r in outbox_records(tmp_path) if "event" not in r]
    first = {item.path.name: item for item in items}["DJI_0001.MP4"]
    flight = [r for r in records if "DJI_0001.MP4#t=" in r["source"]]
    assert [r["video"]["offset_s"] for r in flight] == [0, 0.5, 1, 1.5, 2, 2.5]
    assert [r["id"] for r in flight] == [derived_uuid7(first.record_id, n) for n in range(6)]
    for r in flight:
        VALIDATOR.validate(r)
        lat, lon = position(r["video"]["offset_s"])
        assert (r["geo"]["lat"], r["geo"]["lon"], r["geo"]["source"]) == (lat, lon, "srt")
        assert r["ground_resolution"]["source"] == "srt" and r["clock_synchronized"] is True
    plain = [r for r in records if "DJI_0002.MP4#t=" in r["source"]]
    assert len(plain) == 2 and all(r["geo"]["source"] == "config" for r in plain)  # the unit's place, as photos
    assert all(r["ground_resolution"] == {"metres": 0.5, "x_m": 0.5, "y_m": 0.5, "source": "config",
                                          "detail": "0.5 m/px from the config"} for r in plain)
    assert p.ctx.counters.frames == 8 and source.poll() == []  # both done


def test_what_the_folder_skips_reaches_the_heartbeat_and_the_status_line(tmp_path):
    """FIFOs, a socket, a folder and symlinks to /dev/zero, to nothing, out of the folder, beside one
    frame: the pipeline's own loop classifies the frame, hangs on none of them, and counts them."""
    p = pipeline(tmp_path, clock=True)
    tile = TILES / "not_mining__gc727b5c4__0.png"
    shutil.copy(tile, tmp_path / "in" / "frame.png")
    make_special_entries(tmp_path / "in", tile)
    loop = threading.Thread(target=p.run, daemon=True)
    loop.start()
    deadline = time.monotonic() + 60
    while p.ctx.counters.frames < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few more scans
    p.ctx.stop.set()
    loop.join(timeout=30)
    assert not loop.is_alive() and p.ctx.counters.frames == 1
    # fifo.png sock.png zero.png dangling.png linkdir.png dir.png out.png; clip.wav is no frame's name
    assert skipped_files(p.sources) == 7
    health = json.loads(health_payload("unit-9", started=time.monotonic(), stats=p.ctx.outbox.stats(),
                                       outbox_dir=tmp_path, models=(), protocol="5",
                                       skipped_files=skipped_files(p.sources)))
    p.ctx.outbox.close()
    assert [Path(r["source"]).name for r in outbox_records(tmp_path)] == ["frame.png"]
    jsonschema.Draft202012Validator(load_schema("health")).validate(health)
    assert health["skipped_files"] == 7
    status = status_line(p.ctx.counters, 0, 7)
    assert status.endswith("; outbox 0; 7 file(s) skipped, not regular files (see the journal)")
    assert "skipped" not in status_line(p.ctx.counters, 0, 0)


def test_a_tiff_or_an_unreadable_frame_does_not_load_every_pillow_plugin(tmp_path):
    """In a fresh process (another test may have loaded them all already): the service's image
    pipeline registers the openers it needs, so Pillow never runs Image.init() (~40 plugins, 3 MB)."""
    import subprocess
    import sys

    from PIL import Image

    Image.new("RGB", (64, 48), "green").save(tmp_path / "frame.tif")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    code = f"""
import sys
import edge.service.image_pipeline
from PIL import Image
from edge.image.decode import ImageError, open_frame
open_frame({str(tmp_path / 'frame.tif')!r})
try:
    open_frame({str(tmp_path / 'bad.jpg')!r})
except ImageError:
    pass
print(Image._initialized, 'PIL.PsdImagePlugin' in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "False"]  # preinit() only


def test_two_image_models_on_one_unit_each_frame_to_the_one_that_fits(tmp_path, tiny_scaled):
    """[image] models = [10 m/px, 0.5 m/px]: drone photos (EXIF + DJI XMP written here) go to the model whose
    resolution fits; a frame neither can judge is scored, marked out_of_domain and feeds no event."""
    from dataclasses import replace

    from build_models import rebundle
    from imagefiles import RED, drone_jpeg, solid

    from edge.model.bundle import read_bundle

    trained = read_bundle(tiny_scaled).manifest.trained_on
    drone = rebundle(tiny_scaled, tmp_path / "tiny-05m.nvm", name="tiny-05m",
                     trained_on=replace(trained, ground_resolution_m=0.5))
    (tmp_path / "in").mkdir()
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
id = "unit-9"
state_dir = "{tmp_path / 'state'}"

[image]
models = ["{tiny_scaled}", "{drone}"]
events = {{ k = 1, n = 1, hysteresis = 0.0, cooldown_s = 0 }}

[[image.sources]]
type = "folder"
path = "{tmp_path / 'in'}"
settle_s = 0
""")
    cfg = load_config(config)
    assert [m.manifest.name for m in cfg.image.models] == ["tiny-10m", "tiny-05m"]
    ctx = Context(cfg=cfg, outbox=Outbox(cfg.outbox.path), liveness=Liveness(60), counters=Counters(),
                  clock=ClockWatch(probe=lambda: {"synchronized": True}), stop=threading.Event())
    p = ImagePipeline(ctx)
    frames = {"a_fine.jpg": (640, 480, 0.4), "b_coarse.jpg": (160, 120, 8.0), "c_too_coarse.jpg": (160, 120, 50.0)}
    for i, (name, (w, h, gsd)) in enumerate(frames.items()):
        drone_jpeg(tmp_path / "in" / name, solid(RED, (w, h)), gsd)
        os.utime(tmp_path / "in" / name, (1_780_000_000 + 60 * i,) * 2)
    source = p.sources[0]
    for _ in range(100):
        for item in source.poll():
            p.process(source, item)
        if p.ctx.counters.frames == 3:
            break
        time.sleep(0.05)
    p._close()
    ctx.outbox.close()
    records = outbox_records(tmp_path)
    by_name = {Path(r["source"]).name: r for r in records if "event" not in r}
    assert {n: r["model"]["name"] for n, r in by_name.items()} == {
        "a_fine.jpg": "tiny-05m", "b_coarse.jpg": "tiny-10m", "c_too_coarse.jpg": "tiny-10m"}
    assert [r["alert"] for r in by_name.values()] == [True, True, False]
    assert "50 m/px (exif-xmp), the model learnt 10 m/px" in by_name["c_too_coarse.jpg"]["out_of_domain"]["why"]
    events = [r for r in records if "event" in r]
    assert sorted((r["model"]["name"], r["event"]["phase"]) for r in events) == [
        ("tiny-05m", "end"), ("tiny-05m", "start"), ("tiny-10m", "end"), ("tiny-10m", "start")]
    schema = jsonschema.Draft202012Validator(load_schema("detection"))
    for r in records:
        schema.validate(r)
