"""`nv-edge classify` end to end, as a user runs it: a real process, real files, real models."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from imagefiles import GREEN, RED, cut_short, encode, jpeg_claiming, photo, png_claiming, scene_with_block, solid
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from specialfiles import NOT_FILES, make_special_entries

from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = load_schema("detection")
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def run_cli(*args, check_rc: int | None = 0, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NV_DEVICE="unit-7")
    env.pop("NV_MODEL", None)
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | kwargs
    proc = subprocess.run([sys.executable, "-m", "edge.cli", *map(str, args)], text=True, env=env, timeout=timeout,
                          **streams)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


def records(proc) -> list[dict]:
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    for record in out:
        VALIDATOR.validate(record)
    return out


@pytest.fixture
def batch(tmp_path) -> dict[str, Path]:
    """A folder of good and bad frames, as an SD card dump might look."""
    d = tmp_path / "card"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    noisy = encode(Image.fromarray(rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)), "JPEG")
    files = {
        "red": (d / "red.png", encode(solid(RED), "PNG")),
        "green": (d / "sub" / "green.webp", encode(solid(GREEN), "WEBP", lossless=True)),
        "scene": (d / "scene.tif", encode(scene_with_block(), "TIFF")),
        "empty": (d / "empty.png", b""),
        "text": (d / "notes.jpg", b"field notes: nothing to see\n"),
        "truncated": (d / "cut.jpg", noisy[: len(noisy) // 3]),
        "bomb": (d / "bomb.png", encode(Image.new("L", (9000, 9000)), "PNG")),
    }
    for path, data in files.values():
        path.write_bytes(data)
    (d / "readme.txt").write_text("not a frame, not picked up from a folder")
    (d / ".hidden.png").write_bytes(b"")
    return {name: path for name, (path, _) in files.items()}


def test_batch_of_good_and_bad_frames(tiny_int8, batch):
    folder = batch["red"].parent
    missing = folder / "gone.jpg"
    proc = run_cli("classify", folder, missing, "--model", tiny_int8, "--max-pixels", "50000000")
    out = {Path(r["source"]).name: r for r in records(proc)}
    assert set(out) == {p.name for p in batch.values()} | {"gone.jpg"}, "one record per frame, nothing else"

    assert out["red.png"]["label"] == "mining" and out["red.png"]["alert"] is True
    assert out["red.png"]["scores"]["mining"] > 0.95 and out["red.png"]["threshold"] == 0.6
    assert out["green.webp"]["label"] == "not_mining" and out["green.webp"]["alert"] is False
    assert "tiles" not in out["red.png"], "a frame of exactly one tile is not tiled"
    assert out["scene.tif"]["alert"] is True and "tiles" in out["scene.tif"]

    expected_errors = {
        "empty.png": "empty file",
        "notes.jpg": "not an image",
        "cut.jpg": "corrupt or truncated",
        "bomb.png": "above the limit of 50,000,000",
        "gone.jpg": "cannot read file",
    }
    for name, cause in expected_errors.items():
        record = out[name]
        assert "label" not in record
        assert name in record["error"] and cause in record["error"], record["error"]
        assert record["model"]["name"] == "tiny-int8"
    for record in out.values():
        assert record["device"] == "unit-7" and record["kind"] == "image"
    assert len({r["id"] for r in out.values()}) == len(out)


def test_fifos_sockets_and_links_to_devices_give_error_records_without_being_opened(tiny_int8, tmp_path):
    """Real FIFOs (a frame and a clip: the audio reader is guarded too), a socket, symlinks to /dev/zero,
    to nothing and to a folder: opening any of them would hang the batch, so a timeout fails the test."""
    card = tmp_path / "card"
    card.mkdir()
    (card / "red.png").write_bytes(encode(solid(RED), "PNG"))
    (tmp_path / "green.png").write_bytes(encode(solid(GREEN), "PNG"))
    make_special_entries(card, tmp_path / "green.png")
    (card / "dir.png" / "inner.png").write_bytes(encode(solid(GREEN), "PNG"))
    proc = run_cli("classify", card, card / "fifo.png", card / "zero.png", "--model", tiny_int8, timeout=120)
    out = records(proc)
    by_name: dict[str, list[dict]] = {}
    for record in out:
        by_name.setdefault(Path(record["source"]).name, []).append(record)
    assert sorted(by_name) == sorted({"red.png", "inner.png", "out.png"} | set(NOT_FILES))
    for name, why in NOT_FILES.items():
        for record in by_name[name]:
            assert "label" not in record and record["error"].startswith(f"{card / name}: {why}"), record["error"]
            assert record["kind"] == ("audio" if name == "clip.wav" else "image")
    assert len(by_name["fifo.png"]) == len(by_name["zero.png"]) == 2  # from the folder and from the command line
    # regular files read as always: a folder named like a frame is walked, a link out of the folder is followed
    assert [r["label"] for r in by_name["red.png"]] == ["mining"]
    assert [r["label"] for r in by_name["inner.png"] + by_name["out.png"]] == ["not_mining", "not_mining"]


def test_damaged_frames_are_error_records_and_the_batch_goes_on(tiny_int8, tmp_path):
    # Issue 16: these got confident answers ("not_mining 0.945", "not_mining 0.984" after 43 s and 335 MB).
    card = tmp_path / "card"
    card.mkdir()
    whole_jpeg = encode(photo((640, 480)), "JPEG", quality=90)
    whole_png = encode(photo((640, 480)), "PNG")
    files = {
        "whole.jpg": whole_jpeg,
        "cut.jpg": cut_short(whole_jpeg, 0.05, b"\xff\xd9"),  # cut at 5 %, closed with an end marker
        "bomb.jpg": jpeg_claiming(encode(photo((40, 30)), "JPEG", quality=90), 7999, 7999),  # 1.2 kB
        "cut.png": cut_short(whole_png, 0.05),
        "tall.png": png_claiming(whole_png, 640, 960),  # a header promising rows the data does not hold
        "red.png": encode(solid(RED), "PNG"),
    }
    for name, data in files.items():
        (card / name).write_bytes(data)
    out = {Path(r["source"]).name: r for r in records(run_cli("classify", card, "--model", tiny_int8))}
    assert set(out) == set(files)
    assert out["red.png"]["label"] == "mining" and "label" in out["whole.jpg"], "the batch goes on around them"
    causes = {
        "cut.jpg": "corrupt or truncated image data: the file ends before its picture does: it was cut short",
        "bomb.jpg": "its header says 7999x7999 pixels, but the file holds only",
        "cut.png": "corrupt or truncated image data: the file ends before its picture does: it was cut short",
        "tall.png": "its header says 640x960 pixels, but its picture data holds less than that",
    }
    for name, cause in causes.items():
        record = out[name]
        assert "label" not in record and "scores" not in record, f"{name} got an answer: {record}"
        assert record["error"].startswith(f"{card / name}: ") and cause in record["error"], record["error"]


def test_max_pixels_governs_frames_beyond_pillows_own_limit(tiny_int8, tmp_path):
    path = tmp_path / "huge.png"  # a real 64x48 frame whose header claims 180 MP, past Pillow's 179 MP
    path.write_bytes(png_claiming(encode(photo((64, 48)), "PNG"), 15000, 12000))
    too_large = "15000x12000 = 180,000,000 pixels, above the limit of {:,} (a decompression bomb, or raise the limit with --max-pixels)"
    for options, cause in (
        ((), too_large.format(64_000_000)),
        (("--max-pixels", "1000000"), too_large.format(1_000_000)),
        (("--max-pixels", "200000000"), "its header says 15000x12000 pixels, but its picture data holds less than that"),
    ):
        (record,) = records(run_cli("classify", path, "--model", tiny_int8, *options))
        assert record["error"].startswith(f"{path}: ") and cause in record["error"], (options, record["error"])
        assert "DOS attack" not in record["error"], "Pillow's own limit must not decide"


def test_tiled_scene_points_at_the_block(tiny_int8, tmp_path):
    block = (64, 32, 96, 64)
    path = tmp_path / "scene.png"
    path.write_bytes(encode(scene_with_block(size=(160, 96), block=block), "PNG"))
    (record,) = records(run_cli("classify", path, "--model", tiny_int8))
    tiles = record["tiles"]
    assert tiles["size"] == 16 and tiles["overlap"] == 0.25
    assert (tiles["rows"], tiles["cols"]) == (8, 13)
    grid = np.array(tiles["grid"]["mining"])
    assert grid.shape == (8, 13)
    left, top, right, bottom = tiles["best"]["box"]
    assert block[0] <= left and right <= block[2] and block[1] <= top and bottom <= block[3], "best tile inside the block"
    assert record["score"] == pytest.approx(grid.max(), abs=1e-4)
    assert (grid < 0.1).sum() > grid.size * 0.6, "tiles off the block say not_mining"
    assert record["frame"] == {"width": 160, "height": 96}


def test_exact_grid_matches_truth(tiny_int8, tmp_path):
    # A 4x3 mosaic of 16 px tiles, red where the truth map says mining: overlap 0 reproduces the map.
    truth = np.array([[0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]])
    arr = np.zeros((48, 64, 3), np.uint8)
    for (r, c), mining in np.ndenumerate(truth):
        arr[r * 16 : (r + 1) * 16, c * 16 : (c + 1) * 16] = RED if mining else GREEN
    path = tmp_path / "mosaic.png"
    Image.fromarray(arr).save(path)
    (record,) = records(run_cli("classify", path, "--model", tiny_int8, "--overlap", "0"))
    grid = np.array(record["tiles"]["grid"]["mining"])
    assert ((grid > 0.5) == truth.astype(bool)).all()


def test_whole_frame_mode(tiny_int8, tmp_path):
    path = tmp_path / "scene.png"
    path.write_bytes(encode(scene_with_block(), "PNG"))
    (record,) = records(run_cli("classify", path, "--model", tiny_int8, "--tile", "0"))
    assert "tiles" not in record
    assert record["label"] == "not_mining", "the red block is a small part of the whole frame"


def test_threshold_overrides(tiny_int8, tmp_path):
    path = tmp_path / "grey.png"
    path.write_bytes(encode(solid((128, 128, 128)), "PNG"))
    (default,) = records(run_cli("classify", path, "--model", tiny_int8))
    assert default["alert"] is False and default["scores"]["mining"] == pytest.approx(0.5, abs=0.02)
    (low,) = records(run_cli("classify", path, "--model", tiny_int8, "--threshold", "mining=0.4"))
    assert low["alert"] is True and low["label"] == "mining" and low["threshold"] == 0.4
    (everything,) = records(run_cli("classify", path, "--model", tiny_int8, "--threshold", "0.45"))
    assert everything["alert"] is True


def test_geo_and_time_reach_the_record(tiny_int8, tmp_path):
    exif = Image.Exif()
    exif[0x8825] = {1: "S", 2: (IFDRational(3), IFDRational(7), IFDRational(30)), 3: "W", 4: (IFDRational(60), IFDRational(1), IFDRational(12))}
    exif[0x8769] = {0x9003: "2026:05:01 12:00:00", 0x9011: "-04:00"}
    path = tmp_path / "drone.jpg"
    path.write_bytes(encode(solid(RED, (16, 16)), "JPEG", quality=95, exif=exif.tobytes()))
    (record,) = records(run_cli("classify", path, "--model", tiny_int8))
    assert record["time"] == "2026-05-01T16:00:00.000Z" and record["time_source"] == "exif"
    assert record["geo"] == {"lat": pytest.approx(-3.125), "lon": pytest.approx(-60.02), "source": "exif"}


def test_time_without_exif_is_file_mtime(tiny_int8, tmp_path):
    path = tmp_path / "plain.png"
    path.write_bytes(encode(solid(GREEN), "PNG"))
    os.utime(path, (1_700_000_000, 1_700_000_000))
    (record,) = records(run_cli("classify", path, "--model", tiny_int8))
    assert record["time"] == "2023-11-14T22:13:20.000Z" and record["time_source"] == "file-mtime"


@pytest.mark.parametrize("backend", ["litert", "tflite-runtime", "tensorflow"])
@pytest.mark.parametrize("dtype", ["float32", "int8", "uint8"])
def test_every_backend_and_model_type_through_the_cli(tiny_models, tmp_path, backend, dtype):
    path = tmp_path / "scene.png"
    path.write_bytes(encode(scene_with_block(), "PNG"))
    (record,) = records(run_cli("classify", path, "--model", tiny_models[dtype], "--backend", backend))
    assert record["alert"] is True and record["model"]["name"] == f"tiny-{dtype}"


def test_table_format(tiny_int8, batch):
    proc = run_cli("classify", batch["red"], batch["empty"], "--model", tiny_int8, "--format", "table")
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["source", "label", "score", "alert"]
    assert "mining" in lines[1] and "YES" in lines[1]
    assert "ERROR" in lines[2] and "empty file" in lines[2]


def test_progress_bar_only_on_a_terminal(tiny_int8, batch):
    folder = batch["red"].parent
    plain = run_cli("classify", folder, "--model", tiny_int8)
    assert "frames" not in plain.stderr
    master, slave = pty.openpty()
    proc = run_cli("classify", folder, "--model", tiny_int8, stderr=slave)
    os.close(slave)
    shown = os.read(master, 65536).decode()
    os.close(master)
    assert "7/7 frames" in shown and "errors" in shown
    assert len(proc.stdout.splitlines()) == 7, "the bar never mixes into stdout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nonexistent.nvm"], "no such model bundle"),
        (["--overlap", "0.95"], "overlap must be from 0 to 0.9"),
        (["--threshold", "gold=0.5"], "'gold' is not an alert label"),
        (["--threshold", "1.5"], r"threshold must be in \[0, 1\]"),
        (["--backend", "coral"], "invalid choice"),
        (["--tile", "-1"], "tile must be at least 0"),
    ],
)
def test_usage_errors_exit_2(tiny_int8, tmp_path, args, message):
    frame = tmp_path / "a.png"
    frame.write_bytes(encode(solid(RED), "PNG"))
    model = [] if "--model" in args else ["--model", tiny_int8]
    proc = run_cli("classify", frame, *model, *args, check_rc=2)
    assert proc.stdout == ""
    assert re.search(message, proc.stderr), proc.stderr


def test_wrong_model_is_a_clear_error(tiny_int8, tmp_path):
    junk = tmp_path / "model.nvm"
    junk.write_bytes(b"PK\x03\x04 not really")
    proc = run_cli("classify", tmp_path, "--model", junk, check_rc=2)
    assert f"{junk}: not a model bundle" in proc.stderr


def test_info_shows_manifest_and_tensors(tiny_int8):
    info = json.loads(run_cli("info", tiny_int8).stdout)
    assert info["input_tensor"]["shape"] == [1, 32, 32, 3] and info["input_tensor"]["dtype"] == "int8"
    assert info["manifest"]["labels"] == ["mining", "not_mining"]


def test_a_drone_photo_out_of_the_models_domain_raises_no_alert_unless_allowed(tiny_scaled, tiny_int8, tmp_path):
    """A 0.1 m/px DJI photo (EXIF + XMP written here) and the tiny model learnt at 10 m/px: out of domain."""
    from imagefiles import drone_jpeg

    photo = drone_jpeg(tmp_path / "DJI_0001.JPG", solid(RED, (640, 480)), 0.1)
    (quiet,) = records(run_cli("classify", photo, "--model", tiny_scaled))
    assert quiet["alert"] is False and quiet["ground_resolution"]["source"] == "exif-xmp"
    assert "0.1 m/px (exif-xmp), " not in quiet["out_of_domain"]["why"]  # the footprint, not the scale, is the reason
    assert quiet["out_of_domain"]["why"].startswith("0.1 m/px (exif-xmp): the frame covers 64 x 48 m")
    (loud,) = records(run_cli("classify", photo, "--model", tiny_scaled, "--allow-out-of-domain"))
    assert loud["alert"] is True and loud["out_of_domain"]["allowed"] is True
    table = run_cli("classify", photo, "--model", tiny_scaled, "--format", "table").stdout
    assert "no" in table and "out of domain: 0.1 m/px (exif-xmp)" in table  # the table says why, too
    # two models: --gsd states every frame's resolution; a --threshold of a group both have applies to both
    scene = tmp_path / "scene.png"
    scene.write_bytes(encode(scene_with_block()))
    (picked,) = records(run_cli("classify", scene, "--model", tiny_int8, "--model", tiny_scaled, "--gsd", "5",
                                "--threshold", "mining=0.7"))
    assert picked["model"]["name"] == "tiny-10m" and picked["threshold"] == 0.7
    assert (picked["tiles"]["size"], picked["scale"]["tile_m"]) == (32, 160.0)
    bad = run_cli("classify", scene, "--model", tiny_int8, "--model", tiny_scaled, "--threshold", "dredge=0.5",
                  check_rc=2)
    assert "dredge" in bad.stderr
