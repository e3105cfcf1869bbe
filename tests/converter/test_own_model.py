"""The operator's path of docs/own-model.md end to end, on a tiny run: a labelled orthomosaic (UTM GeoTIFF,
WGS84 polygons) -> `nv-convert tiles-from-ortho` -> `nv-convert image` (a tiny network from scratch, few
epochs) -> a bundle whose manifest carries the ground resolution -> `nv-edge classify` on new frames of that
ground resolution -> `nv-edge export-uncertain` on its records.

TensorFlow runs only in the `nv-convert image` subprocess."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from orthofiles import GREEN, RED, write_labels, write_ortho
from PIL import Image
from tfprocess import nv_convert

from converter.cli import main as nv_convert_in_process
from converter.dataset import DatasetError, load_dataset
from edge.cli.main import main as nv_edge
from edge.model.bundle import read_bundle

pytest.importorskip("rasterio", reason="the survey extra (rasterio, pyproj, shapely) is not installed")

# Six 48 x 48 px pits (9 tiles of 16 px each) on a 384 x 384 px ortho at 0.5 m/px
PITS = [(16, 16, 64, 64), (160, 32, 208, 80), (288, 16, 336, 64), (32, 224, 80, 272), (176, 288, 224, 336),
        (304, 208, 352, 256)]
TRAIN = ["--weights", "none", "--alpha", "0.35", "--size", "32", "--head-epochs", "10", "--fine-epochs", "0",
         "--head-lr", "0.003", "--patience", "10", "--batch", "8", "--rep-samples", "50", "--max-drop", "50",
         "--target-precision", "0.8", "--seed", "0"]


def frame(size: int, red_box=None, seed: int = 0) -> Image.Image:
    """A new frame at the ortho's 0.5 m/px: noisy ground, a noisy pit where `red_box` says."""
    rng = np.random.default_rng(seed)
    arr = np.empty((size, size, 3))
    arr[:] = GREEN
    if red_box is not None:
        left, top, right, bottom = red_box
        arr[top:bottom, left:right] = RED
    return Image.fromarray(np.clip(arr + rng.normal(0, 18, arr.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("own")
    write_ortho(tmp / "site.tif", 384, 384, PITS, seed=3)
    labels = write_labels(tmp / "pits.geojson", [(box, {"label": "mining"}) for box in PITS])
    assert nv_convert_in_process(["tiles-from-ortho", str(tmp / "site.tif"), str(labels), "--out", str(tmp / "tiles"),
                                  "--tile-px", "16", "--background", "not_mining", "--max-background", "60",
                                  "--block-tiles", "4"]) == 0
    bundle = tmp / "models" / "site-mining" / "site-mining.nvm"
    proc = nv_convert("image", str(tmp / "tiles"), "--out", str(bundle), "--gsd", "0.5", "--tile-px", "16",
                      "--source", "site.tif, polygons by the operator", *TRAIN, timeout=900)
    return {"tmp": tmp, "bundle": bundle, "proc": proc}


def test_the_bundle_says_the_ground_resolution_it_learnt(trained):
    proc = trained["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = read_bundle(trained["bundle"]).manifest
    assert (manifest.trained_on.ground_resolution_m, manifest.trained_on.tile_px) == (0.5, 16)
    assert manifest.labels == ("mining", "not_mining") and manifest.alert_labels == ("mining",)
    metrics = json.loads((trained["bundle"].parent / "metrics.json").read_text())
    assert metrics["split"]["train"] + metrics["split"]["val"] + metrics["split"]["test"] == 54 + 60
    assert (trained["bundle"].parent / "report.md").is_file()


def test_the_unit_finds_the_pit_in_a_new_frame_and_not_in_bare_ground(trained, tmp_path, capsys):
    assert trained["proc"].returncode == 0, trained["proc"].stderr[-3000:]
    frame(64, red_box=(16, 16, 48, 48), seed=11).save(tmp_path / "pit.png")
    frame(64, seed=12).save(tmp_path / "ground.png")
    capsys.readouterr()
    # PNGs do not say their ground resolution: without --gsd the model (0.5 m/px) cannot judge them
    assert nv_edge(["classify", str(tmp_path / "pit.png"), "--model", str(trained["bundle"])]) == 0
    unknown = json.loads(capsys.readouterr().out)
    assert unknown["alert"] is False and "ground resolution unknown" in unknown["out_of_domain"]["why"]
    assert nv_edge(["classify", str(tmp_path / "pit.png"), str(tmp_path / "ground.png"), "--model", str(trained["bundle"]),
                    "--gsd", "0.5"]) == 0
    records = {r["source"].rsplit("/", 1)[1]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    pit, ground = records["pit.png"], records["ground.png"]
    assert "out_of_domain" not in pit and pit["scale"]["resampled"] is False
    assert pit["tiles"]["size"] == 16, "the unit tiles at the size the model learnt"
    assert (pit["label"], pit["alert"]) == ("mining", True)
    left, top, right, bottom = pit["tiles"]["best"]["box"]
    inside = (min(right, 48) - max(left, 16)) * (min(bottom, 48) - max(top, 16))
    assert inside >= 0.5 * 16 * 16, f"the deciding tile {pit['tiles']['best']['box']} is mostly not pit (16..48)"
    mining = np.array(pit["tiles"]["grid"]["mining"])
    xs, ys = pit["tiles"]["xs"], pit["tiles"]["ys"]
    within = [(r, c) for r, y in enumerate(ys) for c, x in enumerate(xs) if 16 <= x and x + 16 <= 48 and 16 <= y and y + 16 <= 48]
    outside = [(r, c) for r, y in enumerate(ys) for c, x in enumerate(xs) if x + 16 <= 16 or x >= 48 or y + 16 <= 16 or y >= 48]
    assert within and all(mining[rc] >= pit["threshold"] for rc in within), "a tile wholly in the pit did not alert"
    assert outside and all(mining[rc] < pit["threshold"] for rc in outside), "a tile of bare ground alerted"
    assert (ground["label"], ground["alert"]) == ("not_mining", False)

    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records.values()))
    capsys.readouterr()
    assert nv_edge(["export-uncertain", str(jsonl), "--model", str(trained["bundle"]), "--out", str(tmp_path / "next"),
                    "-n", "4"]) == 0
    crops = sorted((tmp_path / "next" / "tiles").glob("*.png"))
    assert len(crops) == 4 and all(Image.open(p).size == (16, 16) for p in crops)

    # a person labels them: the table with its label column filled in is the next dataset's index.csv
    with pytest.raises(DatasetError, match="4 row.s. without a label"):
        (tmp_path / "next" / "index.csv").write_text((tmp_path / "next" / "uncertain.csv").read_text())
        load_dataset(tmp_path / "next")
    with open(tmp_path / "next" / "uncertain.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["label"] = "mining" if float(row["score_mining"]) >= 0.5 else "not_mining"
    with open(tmp_path / "next" / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    dataset = load_dataset(tmp_path / "next")
    assert len(dataset.samples) == 4 and {s.origin for s in dataset.samples} <= {r["source"] for r in rows}
