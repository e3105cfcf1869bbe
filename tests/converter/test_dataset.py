"""Leakage-safe dataset: planted duplicates and augmentations stay in one group, splits keep groups whole."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from synthetic import write_class_folders

from converter.dataset import DatasetError, augmentation_stem, load_dataset, split

ROOT = Path(__file__).resolve().parents[2]


def _group_of(ds, path: Path) -> str:
    (sample,) = [s for s in ds.samples if s.path == path]
    return sample.group


@pytest.fixture
def planted(tmp_path):
    """Class folders plus planted copies of one mining tile: recompressed, brighter, flipped, turned,
    and copies named as augmentations whose pixels are changed beyond what a hash can see."""
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
        "identical": (d / "exact.png", img.copy()),
    }
    stem = source.stem
    rng = np.random.default_rng(9)
    named = {}
    for name in (f"{stem}_aug3.png", f"{stem}-rot90.png", f"{stem} (2).png", f"aug_7_{stem}.png", f"{stem}_flip_copy.png"):
        arr = np.asarray(img).astype(int) + rng.integers(-60, 60, (32, 32, 3))  # noise no hash survives
        named[name] = d / name
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(d / name)
    for path, picture in copies.values():
        picture.save(path)
    return {"files": files, "source": source, "copies": {k: p for k, (p, _) in copies.items()}, "named": named}


def test_planted_duplicates_join_the_source_group(planted):
    ds = load_dataset(planted["source"].parents[1])
    group = _group_of(ds, planted["source"])
    for kind, path in planted["copies"].items():
        assert _group_of(ds, path) == group, f"{kind} copy was not grouped with its source"
    for name, path in planted["named"].items():
        assert _group_of(ds, path) == group, f"{name} was not grouped by its name"
    assert ds.merges["perceptual hash"] >= 4 and ds.merges["augmentation name"] >= 5 and ds.merges["identical pixels"] >= 1


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
