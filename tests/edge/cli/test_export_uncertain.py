"""`nv-edge export-uncertain` on real records: frames written as PNG files, classified by `nv-edge classify`
with the tiny model (p(mining) = sigmoid(4 (R - G) / 127.5) on a solid tile, threshold 0.6), the records read
back as JSON lines and from the outbox, the tiles cut again from the frames on disk."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3

import numpy as np
import pytest
from PIL import Image

from edge.cli.main import main

# R - G of each 16-px tile, left to right: 13 scores about 0.60 (at the threshold), 25 about 0.69, 0 is 0.50.
FRAMES = {"a.png": (60, 13, -60), "b.png": (25, -30, 0), "c.png": (-90, -80, 90)}


def strip(differences) -> Image.Image:
    """A 48 x 16 frame of three solid 16-px tiles whose red exceeds green by `differences`."""
    arr = np.zeros((16, 16 * len(differences), 3), np.uint8)
    for k, d in enumerate(differences):
        arr[:, 16 * k : 16 * (k + 1)] = (100 + d // 2, 100 - (d - d // 2), 100)
    return Image.fromarray(arr)


def classify(capsys, *args) -> list[dict]:
    capsys.readouterr()
    assert main(["classify", *map(str, args)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def export(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["export-uncertain", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def table(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def unit(tmp_path, tiny_int8, capsys):
    frames = tmp_path / "card"
    frames.mkdir()
    for name, differences in FRAMES.items():
        strip(differences).save(frames / name)
    records = classify(capsys, frames, "--model", tiny_int8, "--overlap", "0", "--outbox", tmp_path / "outbox.db")
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"frames": frames, "records": records, "jsonl": jsonl, "outbox": tmp_path / "outbox.db",
            "model": tiny_int8, "out": tmp_path / "label-me"}


def test_the_tiles_nearest_the_threshold_come_out_as_their_pixels_with_their_scores(unit, capsys):
    code, out, err = export(capsys, unit["jsonl"], "--model", unit["model"], "--out", unit["out"], "--count", "3")
    assert code == 0, err
    rows = table(unit["out"] / "uncertain.csv")
    # the three tiles whose mining score is nearest 0.6: R - G 13, then 25, then 0 (all others are far)
    assert [(r["source"].rsplit("/", 1)[1], int(r["left"])) for r in rows] == [("a.png", 16), ("b.png", 0), ("b.png", 32)]
    by_source = {r["source"]: r for r in unit["records"]}
    for r in rows:
        record = by_source[r["source"]]
        left, top, right, bottom = (int(r[k]) for k in ("left", "top", "right", "bottom"))
        assert (top, right - left, bottom - top) == (0, 16, 16)
        col = record["tiles"]["xs"].index(left)
        assert float(r["score_mining"]) == record["tiles"]["grid"]["mining"][0][col]
        assert float(r["group_score"]) == pytest.approx(float(r["score_mining"]))
        assert float(r["margin"]) == pytest.approx(abs(float(r["score_mining"]) - 0.6), abs=1e-4)
        assert (r["alert_group"], float(r["threshold"]), r["label"], r["group"]) == ("mining", 0.6, "", r["source"])
        assert (r["record"], r["time"], r["model"]) == (record["id"], record["time"], "tiny-int8 0.0.1")
        crop = np.asarray(Image.open(unit["out"] / r["path"]))
        frame = np.asarray(Image.open(r["source"]))
        assert np.array_equal(crop, frame[top:bottom, left:right]), "the PNG is not the tile the unit scored"
    margins = [float(r["margin"]) for r in rows]
    assert margins == sorted(margins) and margins[0] < 0.02
    assert "3 tiles of 2 frames" in out and not (unit["out"] / "missing.csv").exists()


def test_the_outbox_gives_the_same_tiles(unit, capsys):
    assert sqlite3.connect(unit["outbox"]).execute("SELECT count(*) FROM outbox").fetchone()[0] == 3
    assert export(capsys, unit["outbox"], "--model", unit["model"], "--out", unit["out"], "-n", "3")[0] == 0
    again = unit["out"].parent / "from-jsonl"
    assert export(capsys, unit["jsonl"], "--model", unit["model"], "--out", again, "-n", "3")[0] == 0
    key = [(r["source"], r["left"], r["score_mining"]) for r in table(unit["out"] / "uncertain.csv")]
    assert key == [(r["source"], r["left"], r["score_mining"]) for r in table(again / "uncertain.csv")]


def test_frames_gone_or_changed_are_listed_and_the_next_tiles_taken(unit, capsys):
    (unit["frames"] / "a.png").unlink()
    strip((0, 0)).save(unit["frames"] / "b.png")  # another picture under the same name: 32 px wide, not 48
    code, out, err = export(capsys, unit["jsonl"], "--model", unit["model"], "--out", unit["out"], "-n", "2")
    assert code == 0, err
    missing = {r["source"].rsplit("/", 1)[1]: r for r in table(unit["out"] / "missing.csv")}
    assert set(missing) == {"a.png", "b.png"}
    assert missing["a.png"]["reason"].startswith("not on disk") and "32 x 16 px" in missing["b.png"]["reason"]
    assert missing["a.png"]["records"] == next(r["id"] for r in unit["records"] if r["source"].endswith("a.png"))
    assert "missing frame" in err and "2 frames missing" in out
    rows = table(unit["out"] / "uncertain.csv")
    assert [r["source"].rsplit("/", 1)[1] for r in rows] == ["c.png", "c.png"]  # the only frame left


def test_frames_moved_off_the_card_are_found_with_frames(unit, tmp_path, capsys):
    moved = tmp_path / "copied"
    shutil.move(unit["frames"], moved)
    assert export(capsys, unit["jsonl"], "--model", unit["model"], "--out", unit["out"], "-n", "3")[0] == 0
    assert len(table(unit["out"] / "missing.csv")) == 3 and table(unit["out"] / "uncertain.csv") == []
    again = tmp_path / "again"
    assert export(capsys, unit["jsonl"], "--model", unit["model"], "--out", again, "-n", "3", "--frames", moved)[0] == 0
    assert len(table(again / "uncertain.csv")) == 3 and not (again / "missing.csv").exists()


def test_per_frame_spreads_the_tiles_over_more_frames(unit, capsys):
    assert export(capsys, unit["jsonl"], "--model", unit["model"], "--out", unit["out"], "-n", "3", "--per-frame", "1")[0] == 0
    rows = table(unit["out"] / "uncertain.csv")
    assert [r["source"].rsplit("/", 1)[1] for r in rows] == ["a.png", "b.png", "c.png"]
    assert int(rows[2]["left"]) == 32  # c's nearest: R - G 90 scores 0.94, 0.34 above 0.6; -80 scores 0.08


def test_records_of_1_5_without_tile_starts_give_the_same_boxes(unit, capsys, tmp_path):
    """Overlapping tiles (the default 0.25): 16-px tiles of a 48-px frame start at 0, 11, 21 and 32."""
    records = classify(capsys, unit["frames"], "--model", unit["model"])
    assert all(r["tiles"]["xs"] == [0, 11, 21, 32] for r in records)
    old = []
    for r in records:
        r = json.loads(json.dumps(r))
        r["schema"] = "1.5"
        del r["tiles"]["xs"], r["tiles"]["ys"]
        old.append(r)
    for name, rows in (("old", old), ("new", records)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        assert export(capsys, tmp_path / f"{name}.jsonl", "--model", unit["model"], "--out", tmp_path / name, "-n", "12")[0] == 0
    boxes = {name: [[r[k] for k in ("source", "left", "top", "right", "bottom", "score_mining")]
                    for r in table(tmp_path / name / "uncertain.csv")] for name in ("old", "new")}
    assert len(boxes["old"]) == 12 and boxes["old"] == boxes["new"]
    assert {int(b[1]) for b in boxes["old"]} == {0, 11, 21, 32}


def test_what_cannot_be_used_is_skipped_and_counted(unit, capsys, tmp_path):
    broken = json.loads(json.dumps(unit["records"][0]))
    broken["tiles"]["rows"] = 7  # does not fit its frame
    lines = [json.dumps(r) for r in unit["records"]] + [
        "{torn line", json.dumps(broken),
        json.dumps({"id": "x", "schema": "1.6", "kind": "image", "source": "gone.png", "error": "gone.png: empty file"}),
        json.dumps(dict(unit["records"][1], model={"name": "other", "version": "2", "sha256": "0" * 64}))]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = export(capsys, path, "--model", unit["model"], "--out", unit["out"], "-n", "50")
    assert code == 0, err
    assert "skipped 1 record(s): " in err and "not JSON (line 4" in err and "an error record" in err
    assert "classified by another model (other 2)" in err and "do not match a grid of 16-px tiles" in err
    assert len(table(unit["out"] / "uncertain.csv")) == 9  # every tile once: the broken copy of a.png adds none


def test_tiles_classified_at_another_size_come_out_at_the_models(unit, capsys, tmp_path):
    """Tiles of 32 frame px (classify --tile 32) are brought to the model's 16-px training tiles."""
    frame = tmp_path / "big" / "wide.png"
    frame.parent.mkdir()
    strip((13, 13, 90, 90)).resize((128, 32), Image.Resampling.NEAREST).save(frame)
    records = classify(capsys, frame, "--model", unit["model"], "--tile", "32", "--overlap", "0")
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps(records[0]) + "\n")
    assert export(capsys, path, "--model", unit["model"], "--out", unit["out"], "-n", "2")[0] == 0
    rows = table(unit["out"] / "uncertain.csv")
    assert [(int(r["left"]), int(r["right"]), int(r["tile_px"])) for r in rows] == [(0, 32, 32), (32, 64, 32)]
    assert all(Image.open(unit["out"] / r["path"]).size == (16, 16) for r in rows)


def test_an_existing_table_is_not_overwritten_and_a_bad_threshold_is_refused(unit, capsys):
    assert export(capsys, unit["jsonl"], "--model", unit["model"], "--out", unit["out"])[0] == 0
    code, _, err = export(capsys, unit["jsonl"], "--model", unit["model"], "--out", unit["out"])
    assert code == 2 and "already there" in err
    code, _, err = export(capsys, unit["jsonl"], "--model", unit["model"], "--out", unit["out"].parent / "x",
                          "--threshold", "drilling=0.5")
    assert code == 2 and "--threshold" in err
