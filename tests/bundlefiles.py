"""Model bundles as a user might damage them: the zip's entries edited by hand and zipped again, old
(format 1) bundles, and manifests that disagree with their model (written by `write_bundle`, so both
checksums are right and only the tensor check can catch them)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import replace
from pathlib import Path

from edge.model.bundle import read_bundle, write_bundle


def rezip(src: Path, dst: Path, *, manifest=None, model: bytes | None = None, drop: str | None = None) -> Path:
    """`src` with its entries replaced (a dict manifest is written as JSON) and zipped again, as by hand."""
    with zipfile.ZipFile(src) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    if manifest is not None:
        entries["manifest.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest, indent=2).encode()
    if model is not None:
        entries["model.tflite"] = model
    if drop:
        entries.pop(drop)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return dst


def manifest_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def documented_checksum(manifest: dict) -> str:
    """manifest_sha256 as README.md ("Model bundles") defines it, written out again from that text rather
    than imported, so the tests hold the code to the documented form."""
    rest = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def sealed(manifest: dict) -> dict:
    """The manifest with its manifest_sha256 recomputed: what nv-convert would have written."""
    return manifest | {"manifest_sha256": documented_checksum(manifest)}


def format_1(src: Path, dst: Path) -> Path:
    """`src` as a bundle written before manifest_sha256 existed (format 1)."""
    manifest = manifest_of(src)
    manifest.pop("manifest_sha256", None)
    return rezip(src, dst, manifest=manifest | {"format": 1})


def _swap_labels(m: dict) -> dict:
    return m | {"labels": m["labels"][::-1]}


def _rename_label(m: dict) -> dict:
    """The first label (an alert label) renamed everywhere, so the manifest stays consistent."""
    old, new = m["labels"][0], "renamed"
    rename = {old: new}
    return m | {"labels": [rename.get(x, x) for x in m["labels"]],
                "alert_labels": [rename.get(x, x) for x in m["alert_labels"]],
                "thresholds": {rename.get(k, k): v for k, v in m["thresholds"].items()}}


def _change_alert_labels(m: dict) -> dict:
    """A label that raised no alert raises one (with a threshold), and the alert labels do not."""
    quiet = next(x for x in m["labels"] if x not in m["alert_labels"])
    return m | {"alert_labels": [quiet], "thresholds": {quiet: 0.5}}


def _zero_threshold(m: dict) -> dict:
    return m | {"thresholds": {label: 0.0 for label in m["thresholds"]}}


# Edits to manifest.json, zipped again without recomputing anything: each must be refused by its checksum.
TAMPERINGS = {
    "swapped labels": _swap_labels,
    "renamed label": _rename_label,
    "changed alert labels": _change_alert_labels,
    "0.0 threshold": _zero_threshold,
}


def tampered(src: Path, dst: Path, how: str) -> Path:
    return rezip(src, dst, manifest=TAMPERINGS[how](manifest_of(src)))


def _three_labels(manifest):
    return replace(manifest, labels=(*manifest.labels, "extra"))


def _input_128(manifest):
    return replace(manifest, input=replace(manifest.input, size=(128, 128)))


# Manifests sealed by write_bundle that promise other tensors than the model has: (change, what the error says).
MISMATCHES = {
    "3 labels on a 2-output model": (_three_labels, r"output tensor is \[1, 2\], manifest lists 3 labels"),
    "input 128 vs 96": (_input_128, r"input tensor is \[1, 96, 96, 3\], manifest says \[N, 128, 128, 3\]"),
}


def mismatched(src: Path, dst: Path, how: str) -> Path:
    """`src`'s model under a manifest changed by MISMATCHES[how], written by write_bundle (both checksums right)."""
    bundle = read_bundle(src)
    change, _ = MISMATCHES[how]
    write_bundle(dst, bundle.model_bytes, change(bundle.manifest))
    return dst

