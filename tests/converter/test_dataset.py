"""Leakage-safe dataset: planted duplicates and augmentations stay in one group, splits keep groups whole."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from synthetic import photo, tile, write_class_folders
from tfprocess import nv_convert

from converter.dataset import DatasetError, augmentation_stem, load_dataset, split

ROOT = Path(__file__).resolve().parents[2]


def _group_of(ds, path: Path) -> str:
    (sample,) = [s for s in ds.samples if s.path == path]
    return sample.group


@pytest.fixture
def planted(tmp_path):
    """Class folders plus planted copies of one mining tile: the same file, the same pixels re-encoded,
    recompressed, brighter, flipped, turned; copies named as augmentations whose changes (zoom, rotation)
    no hash sees; and a different tile named as if it were a copy."""
    files = write_class_folders(tmp_path / "data", per_class=30)
    source = files["mining"][0]
    img = Image.open(source).convert("RGB")
    d = tmp_path / "data" / "mining"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    copies = {
        "jpeg": (d / "recompressed.jpg", Image.open(io.BytesIO(buf.getvalue()))),
        "bright": (d / "brighter.png", ImageEnhance.Brightness(img).enhance(1.25)),
        "contrast": (d / "contrast.png", ImageEnhance.Contrast(img).enhance(0.8)),
        "flip": (d / "mirror_of_it.png", img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "rot": (d / "turned.png", img.transpose(Image.Transpose.ROTATE_90)),
    }
    for path, picture in copies.values():
        picture.save(path)
    shutil.copy(source, d / "exact.png")
    img.save(d / "re-encoded.png", compress_level=1)
    copies |= {"identical bytes": (d / "exact.png", None), "identical pixels": (d / "re-encoded.png", None)}
    stem = source.stem
    zoomed = img.crop((4, 4, 28, 28)).resize((32, 32), Image.Resampling.BILINEAR)
    named = {
        f"{stem}_aug3.png": zoomed,
        f"{stem}-rot15.png": img.rotate(15, resample=Image.Resampling.BILINEAR),
        f"aug_7_{stem}.png": ImageEnhance.Brightness(img.rotate(-10, resample=Image.Resampling.BILINEAR)).enhance(1.2),
        f"{stem}_flip_copy.png": zoomed.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    }
    for name, picture in named.items():
        picture.save(d / name)
    different = d / f"{stem} (2).png"
    tile("mining", np.random.default_rng(99)).save(different)
    return {"files": files, "source": source, "copies": {k: p for k, (p, _) in copies.items()},
            "named": {name: d / name for name in named}, "different": different}


def test_planted_duplicates_join_the_source_group(planted):
    ds = load_dataset(planted["source"].parents[1])
    group = _group_of(ds, planted["source"])
    for kind, path in planted["copies"].items():
        assert _group_of(ds, path) == group, f"{kind} copy was not grouped with its source"
    for name, path in planted["named"].items():
        assert _group_of(ds, path) == group, f"{name} was not grouped with its source"
    assert _group_of(ds, planted["different"]) != group, "a different picture was grouped by its name alone"
    assert ds.merges["identical bytes"] == 1 and ds.merges["identical pixels"] == 1
    assert ds.merges["near-identical picture"] >= 4 and ds.merges["name + picture"] >= 3


def test_unrelated_pictures_stay_apart(planted):
    ds = load_dataset(planted["source"].parents[1])
    others = [p for p in planted["files"]["mining"][1:] + planted["files"]["not_mining"]]
    groups = Counter(_group_of(ds, p) for p in others)
    assert max(groups.values()) == 1, "synthetic tiles are all different: none may be merged"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_keeps_groups_whole_and_is_stratified(planted, seed):
    ds = load_dataset(planted["source"].parents[1])
    parts = split(ds, (0.6, 0.2, 0.2), seed=seed)
    where = {}
    for name, samples in parts.items():
        for s in samples:
            assert where.setdefault(s.group, name) == name, f"group {s.group} is in two splits"
    assert sum(len(v) for v in parts.values()) == len(ds.samples)
    for name, samples in parts.items():
        counts = Counter(s.label for s in samples)
        assert counts["mining"] > 0 and counts["not_mining"] > 0, f"{name} lacks a label"
    assert 0.45 < len(parts["train"]) / len(ds.samples) < 0.75


def test_split_is_deterministic(planted):
    ds = load_dataset(planted["source"].parents[1])
    a = {k: [s.path for s in v] for k, v in split(ds, seed=3).items()}
    b = {k: [s.path for s in v] for k, v in split(ds, seed=3).items()}
    c = {k: [s.path for s in v] for k, v in split(ds, seed=4).items()}
    assert a == b and a != c


def test_index_csv_groups_are_honoured(tmp_path):
    files = write_class_folders(tmp_path, per_class=12)
    with open(tmp_path / "index.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group"])
        for label, paths in files.items():
            for k, p in enumerate(paths):
                w.writerow([p.relative_to(tmp_path), label, f"{label}-place{k // 4}"])
    ds = load_dataset(tmp_path)
    assert len(ds.groups()) == 6
    for parts in [split(ds, seed=s) for s in range(5)]:
        for samples in parts.values():
            places = Counter(s.group for s in samples)
            assert all(n == 4 for n in places.values())


def test_unreadable_files_are_reported_not_fatal(tmp_path):
    write_class_folders(tmp_path, per_class=5)
    (tmp_path / "mining" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    (tmp_path / "mining" / "empty.jpg").write_bytes(b"")
    ds = load_dataset(tmp_path)
    assert len(ds.samples) == 10
    assert {p.name for p, _ in ds.unreadable} == {"broken.png", "empty.jpg"}


def test_missing_columns_and_empty_folders(tmp_path):
    (tmp_path / "index.csv").write_text("file,class\na.png,x\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_dataset(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no index.csv and no class sub-folders"):
        load_dataset(empty)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("site12.png", "site12"),
        ("site12_aug3.png", "site12"),
        ("site12-aug-3.jpg", "site12"),
        ("site12_flip.png", "site12"),
        ("site12_rot270.png", "site12"),
        ("site12 (2).png", "site12"),
        ("site12_copy.png", "site12"),
        ("aug_4_site12.png", "site12"),
        ("site12_flip_bright2.png", "site12"),
        ("IMG_0001.JPG", "img_0001"),
        ("rotterdam.png", "rotterdam"),
    ],
)
def test_augmentation_stem(name, stem):
    assert augmentation_stem(name) == stem


def test_check_command_reports_duplicates_balance_and_unreadable(tmp_path):
    files = write_class_folders(tmp_path, per_class=10)
    Image.open(files["mining"][0]).transpose(Image.Transpose.ROTATE_180).save(tmp_path / "not_mining" / "same_place.png")
    (tmp_path / "mining" / "cut.png").write_bytes(files["mining"][1].read_bytes()[:60])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "converter.cli", "check", str(tmp_path), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["labels"] == {"mining": 10, "not_mining": 11}
    assert report["merged_groups_across_labels"] == 1
    dup = report["duplicates"][0]
    assert dup["labels"] == ["mining", "not_mining"] and len(dup["files"]) == 2
    assert [Path(u["path"]).name for u in report["unreadable"]] == ["cut.png"]
    text = subprocess.run([sys.executable, "-m", "converter.cli", "check", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120).stdout
    assert "ACROSS LABELS" in text and "mining 10" in text and "unreadable" in text


def _numbered(root: Path, name: str, count: int, first_seed: int = 0) -> list[Path]:
    """`name (1).jpg` ... `name (count).jpg`: all different pictures, numbered as a bulk rename does."""
    (root / name).mkdir(parents=True)
    paths = [root / name / f"{name} ({k}).jpg" for k in range(1, count + 1)]
    for k, path in enumerate(paths):
        photo(first_seed + k).save(path, quality=90)
    return paths


def test_numbered_different_pictures_stay_apart_and_their_copies_join(tmp_path):
    paths = _numbered(tmp_path, "Desert", 300)
    d = tmp_path / "Desert"
    one, two, three = (Image.open(p) for p in paths[:3])
    copies = {
        d / "Desert (1) (2).jpg": (one, paths[0]),  # saved again
        d / "Desert (1)_flip.jpg": (one.transpose(Image.Transpose.FLIP_LEFT_RIGHT), paths[0]),
        d / "Desert (2) - Copy.jpg": (two.crop((6, 6, 58, 58)).resize((64, 64), Image.Resampling.BILINEAR), paths[1]),
        d / "Desert (3)_rot12.jpg": (three.rotate(12, resample=Image.Resampling.BILINEAR), paths[2]),
    }
    for path, (picture, _) in copies.items():
        picture.save(path, quality=60)
    shutil.copy(paths[4], d / "twin.jpg")
    ds = load_dataset(tmp_path)
    assert len({_group_of(ds, p) for p in paths}) == 300, "different pictures were merged by their names"
    assert len(ds.groups()) == 300
    for path, (_, original) in copies.items():
        assert _group_of(ds, path) == _group_of(ds, original), f"{path.name} was not grouped with {original.name}"
    assert _group_of(ds, d / "twin.jpg") == _group_of(ds, paths[4])
    assert ds.merges["identical bytes"] == 1 and ds.merges["name + picture"] >= 2
    assert sum(ds.merges.values()) == 5
    assert ds.named_apart == 297  # Desert (4) ... (300) and Desert (1)'s twin's original, Desert (5), has no copy named so


def test_grouped_split_of_numbered_folders_puts_every_class_on_every_side(tmp_path):
    _numbered(tmp_path, "Desert", 100)
    _numbered(tmp_path, "Forest", 100, first_seed=1000)
    parts = split(load_dataset(tmp_path))
    for name, samples in parts.items():
        counts = Counter(s.label for s in samples)
        assert counts["Desert"] > 0 and counts["Forest"] > 0, f"{name} split: {dict(counts)}"
    assert [len(parts[k]) for k in ("train", "val", "test")] == [140, 30, 30]


def test_check_reports_merges_per_rule_and_warns_of_a_big_group(tmp_path):
    _numbered(tmp_path, "Desert", 40)
    forest = _numbered(tmp_path, "Forest", 40, first_seed=1000)
    original = Image.open(forest[0])
    augmented = [original.rotate(a, resample=Image.Resampling.BILINEAR) for a in (-12, -6, 6, 12)] + [
        original.crop((6, 6, 58, 58)).resize((64, 64), Image.Resampling.BILINEAR),
        original.crop((0, 0, 48, 48)).resize((64, 64), Image.Resampling.BILINEAR),
        original.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        ImageEnhance.Brightness(original).enhance(1.3),
    ]
    for k, picture in enumerate(augmented):
        picture.save(tmp_path / "Forest" / f"Forest (1)_aug{k}.jpg", quality=85)
    shutil.copy(forest[1], tmp_path / "Forest" / "Forest (2) - Copy.jpg")

    report = json.loads(nv_convert("check", str(tmp_path), "--json").stdout)
    rules = report["merges_by_rule"]
    assert list(rules) == ["identical bytes", "identical pixels", "near-identical picture", "name + picture"]
    assert rules["identical bytes"] == 1 and rules["identical pixels"] == 0 and rules["name + picture"] >= 4
    assert sum(rules.values()) == 9 and report["groups"] == 40 + 40
    assert report["named_like_copies_kept_apart"] == 40 + 38
    (big,) = report["big_groups"]
    assert big["group"] == "Forest/Forest (1).jpg" and (big["label"], big["pictures"], big["of_label"]) == ("Forest", 9, 49)
    assert big["split"] in ("train", "val", "test") and big["built_by"] == "copy rules"

    text = nv_convert("check", str(tmp_path)).stdout
    assert f"merges by rule: identical bytes 1, identical pixels 0, near-identical picture {rules['near-identical picture']}, " \
           f"name + picture {rules['name + picture']}" in text
    assert "named like copies but kept apart (the pictures differ): 78" in text
    assert "WARNING: one group holds 9 of the 49 Forest pictures (18.4 %" in text
    assert "A split keeps a group whole" in text and "give them their own groups" in text
