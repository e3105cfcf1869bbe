"""Test-time augmentation: a tile's scores are exactly the mean of the model's scores for its orientations;
the manifest's `input.tta` turns it on, records say it, and bundles without it decide as before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from build_models import TILE, rebundle, tiny_manifest
from bundlefiles import manifest_of, rezip, sealed
from imagefiles import GREEN, RED, encode, scene_with_block

from edge.decisions.alerts import resolve_thresholds
from edge.features.pixels import TTA_ORIENTATIONS, InputSpec, orientations, prepare_tile
from edge.image.classify import ClassifyOptions, classify_frame, predict_tiles
from edge.image.records import image_record
from edge.model.bundle import BundleError, read_bundle
from edge.model.loaded import load_model


def by_hand(tile: np.ndarray) -> list[np.ndarray]:
    """The eight orientations of one tile (H, W, 3), written out: turns of the tile, then of its mirror image."""
    mirror = tile[:, ::-1]
    return [tile, np.rot90(tile, 1), np.rot90(tile, 2), np.rot90(tile, 3),
            mirror, np.rot90(mirror, 1), np.rot90(mirror, 2), np.rot90(mirror, 3)]


def test_orientations_are_the_dihedral_turns_and_mirrors():
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    assert orientations(tiles, 1) is tiles
    every = orientations(tiles, 8).reshape(8, 3, 5, 5, 3)
    for i, tile in enumerate(tiles):
        assert all(np.array_equal(every[k, i], t) for k, t in enumerate(by_hand(tile)))
    assert len({every[k, 0].tobytes() for k in range(8)}) == 8  # a random tile has eight different orientations
    assert np.array_equal(orientations(tiles, 4).reshape(4, 3, 5, 5, 3), every[:4])  # the four quarter turns
    two = orientations(tiles, 2).reshape(2, 3, 5, 5, 3)
    assert np.array_equal(two[0], tiles) and np.array_equal(two[1], tiles[:, :, ::-1])
    with pytest.raises(ValueError, match="tta: expected one of 1, 2, 4, 8, got 3"):
        orientations(tiles, 3)


class CornerModel:
    """A model that looks at one corner only, so that every orientation of a tile scores differently:
    p(mining) = the mean red of the top-left 8 x 8 model pixels / 255."""

    def __init__(self):
        self.manifest = tiny_manifest("corner", "int8")
        self.seen = 0

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        self.seen += len(pixels)
        p = pixels[:, :8, :8, 0].mean(axis=(1, 2)) / 255.0
        return np.stack([p, 1.0 - p], axis=1).astype(np.float32)


HAND = {2: (0, 4), 4: (0, 1, 2, 3), 8: tuple(range(8))}  # which of by_hand's orientations each TTA takes


@pytest.mark.parametrize("tta", [2, 4, 8])
def test_a_tile_scores_the_mean_of_its_orientations(tta):
    rng = np.random.default_rng(tta)
    tiles = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    model = CornerModel()
    got = predict_tiles(model, tiles, tta)
    for i, tile in enumerate(tiles):
        each = [model.predict(by_hand(tile)[k][None])[0] for k in HAND[tta]]
        assert len({round(float(e[0]), 6) for e in each}) > 1  # the orientations do score differently
        assert np.allclose(got[i], np.mean(each, axis=0), atol=1e-6)


def test_a_frame_is_tiled_then_each_tile_averaged():
    img = scene_with_block(size=(64, 48), block=(0, 0, 24, 24))
    model = CornerModel()
    options = ClassifyOptions(thresholds={"mining": 0.6}, overlap=0.0, batch_size=16)
    plain = classify_frame(model, encode(img), options)
    model.seen = 0
    averaged = classify_frame(model, encode(img), replace(options, tta=4))
    assert averaged.tta == 4 and plain.tta == 1 and model.seen == 4 * 12  # 4 x 3 tiles, each in 4 orientations
    for r, c in np.ndindex(averaged.tiles.grid.rows, averaged.tiles.grid.cols):
        tile = prepare_tile(img, model.manifest.input, averaged.tiles.grid.box(r, c))
        mean = np.mean([model.predict(by_hand(tile)[k][None])[0] for k in HAND[4]], axis=0)
        assert np.allclose(averaged.tiles.scores[r, c], mean, atol=1e-6)
        assert np.allclose(plain.tiles.scores[r, c], model.predict(tile[None])[0], atol=1e-6)


@pytest.fixture(scope="module")
def tta_bundle(tiny_int8, tmp_path_factory):
    """The tiny int8 model whose manifest asks for the four quarter turns."""
    m = read_bundle(tiny_int8).manifest
    return rebundle(tiny_int8, tmp_path_factory.mktemp("tta") / "tiny-tta4.nvm", input=replace(m.input, tta=4))


def test_the_manifest_turns_tta_on_and_the_record_says_so(tta_bundle, tiny_int8):
    model = load_model(tta_bundle)
    assert model.manifest.input.tta == 4
    options = ClassifyOptions(thresholds=resolve_thresholds(model.manifest))
    img = scene_with_block(size=(48, 48), block=(0, 0, 20, 20))
    data = encode(img)
    result = classify_frame(model, data, options)
    assert result.tta == 4
    record = image_record(result, model=model.identity, labels=model.manifest.labels, alert_labels=("mining",),
                          source="x.png", path=None, device="t")
    assert record["tta"] == 4
    tile = prepare_tile(img, model.manifest.input, result.tiles.grid.box(0, 0))
    mean = np.mean([model.predict(np.ascontiguousarray(by_hand(tile)[k])[None])[0] for k in HAND[4]], axis=0)
    assert np.allclose(result.tiles.scores[0, 0], mean, atol=1e-6)
    plain = classify_frame(load_model(tiny_int8), data, options)
    assert plain.tta == 1 and "tta" not in image_record(plain, model={}, labels=model.manifest.labels,
                                                         alert_labels=("mining",), source="x.png", path=None, device="t")


def test_a_bundle_written_before_tta_decides_as_before(tiny_int8, tmp_path):
    """No `input.tta` and no `groups` in its manifest (as bundles before issue 12): tta 1, per-label
    thresholds, the same decisions as the model's plain scores give."""
    older = manifest_of(tiny_int8)
    older["input"].pop("tta")
    older.pop("groups", None)
    old = rezip(tiny_int8, tmp_path / "old.nvm", manifest=sealed(older))
    model = load_model(old)
    assert model.manifest.input.tta == 1 and model.manifest.groups is None
    thresholds = resolve_thresholds(model.manifest)
    assert thresholds == {"mining": 0.6}
    for colour, alert in ((RED, True), (GREEN, False)):
        img = scene_with_block(size=(TILE * 3, TILE * 2), block=(0, 0, TILE, TILE), base=GREEN, colour=colour)
        result = classify_frame(model, encode(img), ClassifyOptions(thresholds=thresholds, overlap=0.0))
        tiles = np.stack([prepare_tile(img, model.manifest.input, box) for box in result.tiles.grid.boxes()])
        assert np.array_equal(result.tiles.scores.reshape(len(tiles), -1), model.predict(tiles))
        assert result.decision.alert is alert and result.decision.label == ("mining" if alert else "not_mining")


@pytest.mark.parametrize(("tta", "size", "colour", "message"), [
    (3, [32, 32], "rgb", r"input.tta: expected one of 1, 2, 4, 8, got 3"),
    (True, [32, 32], "rgb", r"input.tta: expected one of 1, 2, 4, 8, got True"),
    (4, [32, 24], "rgb", r"input.tta: 4 turns a tile a quarter, which needs a square input, not \[32, 24\]"),
])
def test_a_bad_tta_names_the_file_and_the_key(tiny_int8, tmp_path, tta, size, colour, message):
    manifest = manifest_of(tiny_int8)
    manifest["input"] |= {"tta": tta, "size": size, "colour": colour}
    bad = rezip(tiny_int8, tmp_path / "bad.nvm", manifest=sealed(manifest))
    with pytest.raises(BundleError, match=r"bad\.nvm: manifest\.json: " + message):
        read_bundle(bad)


def test_only_pictures_are_turned():
    with pytest.raises(ValueError, match="only pictures are turned and mirrored"):
        InputSpec(size=(64, 96), colour="log-mel", tta=2)
    assert set(TTA_ORIENTATIONS) == {1, 2, 4, 8}


def test_each_orientation_is_its_own_invoke_and_scores_as_in_one(tta_bundle):
    """The interpreter holds tensors for the batch's tiles, not four times as many, and an input's scores
    do not depend on the batch it is in: the same as all orientations in one invoke, to the bit."""
    model = load_model(tta_bundle)
    rng = np.random.default_rng(4)
    tiles = rng.integers(0, 256, (5, *model.runner.input.shape[1:]), dtype=np.uint8)
    got = predict_tiles(model, tiles, 4)
    assert model.runner._interpreter.get_input_details()[0]["shape"][0] == 5
    together = model.predict(orientations(tiles, 4)).reshape(4, 5, -1).mean(axis=0, dtype=np.float64)
    assert np.array_equal(got, together.astype(np.float32))
    assert len({round(float(s[0]), 4) for s in got}) > 1  # random tiles: not one score for all
