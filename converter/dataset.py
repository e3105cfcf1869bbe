"""A labelled picture dataset whose groups make leakage impossible.

Input: a folder of class sub-folders, or a folder with `index.csv` (`path,label[,group]`).
Every picture starts in its given group (or a group of its own). Groups are then merged by these
rules (`RULES`, counted per rule in `Dataset.merges`) when pictures are
  - identical bytes, or identical pixels (the same decode of different files),
  - near-identical pictures: perceptual hash in any flip/turn, confirmed by correlation (`converter.phash`),
  - named as copies of one another (`x_aug3.png`, `x (2).jpg`, `aug_7_x.png`, `converter.copies`) *and*
    shown to be one picture flipped, turned, rotated, cropped, shifted or re-lit. A name alone never
    merges: a bulk rename calls hundreds of different pictures `Desert (1).jpg` ... `Desert (372).jpg`.
Merged groups always land in one split, so copies of one picture never sit on both sides.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from converter import copies, phash
from converter.copies import augmentation_stem
from edge.image.decode import IMAGE_SUFFIXES, ImageError, open_frame

SPLITS = ("train", "val", "test")
IDENTICAL_BYTES, IDENTICAL_PIXELS = "identical bytes", "identical pixels"
NEAR_IDENTICAL, NAME_AND_PICTURE = "near-identical picture", "name + picture"
RULES = (IDENTICAL_BYTES, IDENTICAL_PIXELS, NEAR_IDENTICAL, NAME_AND_PICTURE)
# A group holding more of a class than this makes that class's split shares lumpy: it goes whole to one side.
BIG_GROUP_SHARE = 0.05
BIG_GROUP_MIN = 3  # pictures; in a tiny class every pair is a few per cent


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    group: str  # after merging: split by this
    origin: str = ""  # the group it was given (or its own file name when none was)


@dataclass
class Dataset:
    root: Path
    samples: list[Sample]
    labels: tuple[str, ...]
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    merges: Counter = field(default_factory=Counter)  # rule (RULES) -> number of unions that joined two groups
    named_apart: int = 0  # pictures named like a copy of another in their folder, kept apart: the pictures differ
    groups_merged: int = 0  # given groups that were folded into another
    flat: int = 0  # pictures too flat to hash (compared only with identical copies and pictures named alike)
    sizes: Counter = field(default_factory=Counter)  # (width, height) -> count

    def groups(self) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = defaultdict(list)
        for s in self.samples:
            out[s.group].append(s)
        return out

    def merged_groups(self) -> dict[str, list[Sample]]:
        """Groups that the leakage checks built from more than one given group."""
        return {g: m for g, m in self.groups().items() if len({s.origin for s in m}) > 1}

    @property
    def tile_px(self) -> int | None:
        """The common square size of every picture, when there is one (satellite tiles)."""
        if len(self.sizes) == 1:
            (w, h), = self.sizes
            return w if w == h else None
        return None


class DatasetError(Exception):
    pass


def scan(root: Path) -> list[tuple[Path, str, str | None]]:
    """(path, label, given group or None) for every picture under root."""
    index = root / "index.csv"
    if index.is_file():
        with open(index, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"path", "label"} - set(reader.fieldnames or [])
            if missing:
                raise DatasetError(f"{index}: missing column(s) {sorted(missing)}; expected path,label[,group]")
            rows = list(reader)
        unlabelled = [n for n, row in enumerate(rows, start=2) if not (row["label"] or "").strip()]
        if unlabelled:  # e.g. nv-edge export-uncertain's table with rows still to label
            raise DatasetError(f"{index}: {len(unlabelled)} row(s) without a label (line {unlabelled[0]} first); "
                               "fill in each label, or delete the rows you cannot tell")
        return [(root / row["path"], row["label"], row.get("group") or None) for row in rows]
    rows = [(path, label, None) for path, label in class_folder_files(root, IMAGE_SUFFIXES)]
    if not rows:
        raise DatasetError(f"{root}: no index.csv and no class sub-folders with {'/'.join(IMAGE_SUFFIXES)} files")
    return rows


def class_folder_files(root: Path, suffixes: tuple[str, ...]) -> list[tuple[Path, str]]:
    """(path, class) for every file with one of `suffixes` under a class sub-folder of root (the folder's
    name is the class); hidden files and folders are skipped. Sorted, so a run sees the same order."""
    return [(path, folder.name)
            for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith(".")]


class _Groups:
    """Union-find over pictures; remembers why groups were joined."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.merges: Counter = Counter()

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int, reason: str) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)
            self.merges[reason] += 1


def load_dataset(
    root: Path, *, max_distance: int = 6, min_correlation: float = 0.9, flat_std: float = 4.0, use_hash: bool = True
) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    rows = scan(root)
    readable, unreadable, sizes = [], [], Counter()
    first_of: dict[tuple[str, str], int] = {}  # (what, key) -> the first picture that had it
    greys: dict[int, np.ndarray] = {}  # picture -> grey sample
    hashes: dict[int, list[int]] = {}  # picture -> perceptual hashes, for pictures with texture enough to hash
    groups = _Groups(len(rows))
    flat = 0

    def join(key: tuple[str, str], i: int, rule: str) -> None:
        if key in first_of:
            groups.union(first_of[key], i, rule)
        else:
            first_of[key] = i

    for path, label, given in rows:
        try:
            frame = open_frame(path)
            with open(path, "rb") as fh:
                file_digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except ImageError as exc:
            unreadable.append((path, str(exc)))
            continue
        except OSError as exc:
            unreadable.append((path, f"cannot read file: {exc.strerror or exc}"))
            continue
        i = len(readable)
        readable.append((path, label, given))
        sizes[frame.image.size] += 1
        join(("bytes", file_digest), i, IDENTICAL_BYTES)
        join(("pixels", hashlib.sha256(f"{frame.image.size}".encode() + frame.image.tobytes()).hexdigest()), i, IDENTICAL_PIXELS)
        if given is not None:
            join(("given", given), i, "given group")
        if use_hash:
            grey = phash.grey_sample(frame.image)
            greys[i] = grey.astype(np.float32)
            if grey.std() < flat_std:
                flat += 1  # featureless (cloud, water, dense forest): every such hash looks alike
            else:
                hashes[i] = [phash.phash_bits(g) for g in phash.orientations(grey)]
    groups.parent = groups.parent[: len(readable)]
    if not readable:
        raise DatasetError(f"{root}: none of the {len(rows)} pictures could be read")

    hashed = list(hashes)
    for (a, b), k in phash.near_pairs(list(hashes.values()), max_distance).items():
        if phash.correlation(phash.orientations(greys[hashed[a]])[k], greys[hashed[b]]) >= min_correlation:
            groups.union(hashed[a], hashed[b], NEAR_IDENTICAL)
    named_apart = _join_named_copies(readable, greys, groups)

    def origin(path: Path, given: str | None) -> str:
        return given or str(path.relative_to(root) if path.is_relative_to(root) else path)

    given_groups = {origin(path, given) for path, _, given in readable}
    samples = []
    for i, (path, label, given) in enumerate(readable):
        head = readable[groups.find(i)]
        samples.append(Sample(path=path, label=label, group=origin(head[0], head[2]), origin=origin(path, given)))
    final_groups = {s.group for s in samples}
    merges = Counter({k: v for k, v in groups.merges.items() if k != "given group"})
    return Dataset(
        root=root,
        samples=samples,
        labels=tuple(sorted({s.label for s in samples})),
        unreadable=unreadable,
        merges=merges,
        named_apart=named_apart,
        groups_merged=len(given_groups) - len(final_groups),
        flat=flat,
        sizes=sizes,
    )


def _join_named_copies(readable: list[tuple[Path, str, str | None]], greys: dict[int, np.ndarray], groups: _Groups) -> int:
    """Join pictures of one folder named as copies of one another (one `augmentation_stem`) whose pictures
    agree (`converter.copies`). Returns how many of them stayed apart from every picture named alike."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, (path, _label, _given) in enumerate(readable):
        by_name[f"{path.parent}/{augmentation_stem(path.name)}"].append(i)
    named = [members for members in by_name.values() if len(members) > 1]
    for members in named:
        comparable = [i for i in members if i in greys]
        for a, b in copies.agreeing_pairs([greys[i] for i in comparable]):
            groups.union(comparable[a], comparable[b], NAME_AND_PICTURE)
    apart = 0
    for members in named:
        roots = Counter(groups.find(i) for i in members)
        apart += sum(1 for i in members if roots[groups.find(i)] == 1)
    return apart


def split(dataset: Dataset, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0) -> dict[str, list[Sample]]:
    """Grouped, stratified, deterministic split. A group goes whole to one split; groups of each
    label are dealt in a seeded order to whichever split is furthest below its share of that label."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    by_label: dict[str, list[list[Sample]]] = defaultdict(list)
    for members in dataset.groups().values():
        majority = Counter(s.label for s in members).most_common(1)[0][0]
        by_label[majority].append(members)
    out: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    rng = random.Random(seed)
    for label in sorted(by_label):
        groups = sorted(by_label[label], key=lambda m: m[0].group)
        rng.shuffle(groups)
        groups.sort(key=len, reverse=True)  # big groups first, so small ones can even out the shares (stable sort keeps the shuffle within a size)
        total = sum(len(m) for m in groups)
        counts = dict.fromkeys(SPLITS, 0)
        for members in groups:
            deficit = {name: fractions[k] * total - counts[name] for k, name in enumerate(SPLITS)}
            target = max(SPLITS, key=lambda name: deficit[name])
            out[target].extend(members)
            counts[target] += len(members)
    return out


def big_groups(dataset: Dataset, share: float = BIG_GROUP_SHARE) -> list[tuple[str, str, int, int]]:
    """(group, label, its pictures of that label, all pictures of that label) for every group holding more
    than `share` of a label (and at least BIG_GROUP_MIN pictures), largest share first."""
    totals = Counter(s.label for s in dataset.samples)
    out = [(group, label, n, totals[label])
           for group, members in dataset.groups().items()
           for label, n in Counter(s.label for s in members).items()
           if n >= BIG_GROUP_MIN and n > share * totals[label]]
    return sorted(out, key=lambda g: (-g[2] / g[3], g[0], g[1]))


def label_counts(samples: list[Sample], labels: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(s.label for s in samples)
    return {label: counts.get(label, 0) for label in labels}


def class_weights(samples: list[Sample], labels: tuple[str, ...]) -> dict[int, float]:
    """Inverse-frequency weights, mean 1 over the samples."""
    counts = np.array([max(1, c) for c in label_counts(samples, labels).values()], dtype=np.float64)
    return {k: float(len(samples) / (len(labels) * c)) for k, c in enumerate(counts)}
