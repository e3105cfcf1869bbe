"""Labelled polygons of an orthomosaic: a GeoJSON FeatureCollection of Polygons or MultiPolygons, each with
a `label` (or `class`) property, read into the ortho's pixel grid.

GeoJSON (RFC 7946) is longitude/latitude on WGS84, and that is what is assumed; a file written by older
tools with a top-level `crs` member (`{"type": "name", "properties": {"name": "EPSG:32721"}}`, as QGIS
writes for a projected layer) is read in that CRS. Coordinates go to the ortho's CRS with pyproj, then
through the inverse of its geotransform to pixel (col, row), where tiles are cut.

A feature's group (what keeps its tiles on one side of the train/validation/test split) is its `group`
property, else its `id` (the feature's, else the property), else its place in the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from converter.dataset import DatasetError
from edge.survey.raster import Ortho

LABEL_KEYS = ("label", "class")
WGS84 = "EPSG:4326"


class LabelsError(DatasetError):
    """A labels file that cannot be used with its ortho; the message names the file and what to do."""


@dataclass(frozen=True)
class LabelledPolygon:
    label: str
    group: str  # the feature's group or id: a place
    pixels: object  # a shapely (Multi)Polygon in ortho pixels (col, row), clipped to the ortho


def read_labels(path: Path, ortho: Ortho) -> list[LabelledPolygon]:
    """Every labelled polygon of `path` in `ortho`'s pixels. Raises LabelsError naming the file."""
    from shapely.geometry import box, shape
    from shapely.validation import make_valid

    collection = _load(path)
    transform = _to_ortho_crs(path, collection, ortho)
    inverse = _inverse(ortho.transform)
    frame = box(0, 0, ortho.width, ortho.height)
    out = []
    for number, feature in enumerate(collection["features"], start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise LabelsError(f"{path}: feature {number} is not a GeoJSON Feature")
        name = _name(feature, number)
        props = feature.get("properties") or {}
        label = next((str(props[k]).strip() for k in LABEL_KEYS if props.get(k) not in (None, "")), "")
        if not label:
            raise LabelsError(f"{path}: {name} has no label: give every polygon a `label` (or `class`) property, "
                              "e.g. \"label\": \"mining\"")
        if "/" in label or label.startswith("."):
            raise LabelsError(f"{path}: {name} has the label {label!r}, which cannot be a folder name")
        geometry = feature.get("geometry") or {}
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise LabelsError(f"{path}: {name} is a {geometry.get('type') or 'feature without geometry'}; "
                              "only Polygon and MultiPolygon areas can label tiles")
        try:
            ground = shape(geometry)
        except (ValueError, TypeError, AttributeError, IndexError) as exc:
            raise LabelsError(f"{path}: {name}: its coordinates are not a polygon ({exc})") from None
        pixels = _to_pixels(ground, transform, inverse, path, name)
        pixels = make_valid(pixels) if not pixels.is_valid else pixels
        inside = pixels.intersection(frame)
        if inside.is_empty or inside.area == 0:
            west, north = _first_point(ground)
            raise LabelsError(f"{path}: {name} ({label}) lies outside the ortho {ortho.path} (its first point is "
                              f"x {west:.6g}, y {north:.6g}; the ortho covers {ortho.width} x {ortho.height} px); "
                              "is it drawn on another ortho, or in another CRS than the file says?")
        group = next((v for v in (props.get("group"), _ident(feature)) if v not in (None, "")), f"feature-{number}")
        out.append(LabelledPolygon(label=label, group=str(group), pixels=inside))
    if not out:
        raise LabelsError(f"{path}: no features: draw the polygons of each class and save them as GeoJSON")
    return out


def _first_point(ground) -> tuple[float, float]:
    """The first point of a feature as the file gives it, for a message."""
    coords = ground.exterior.coords if hasattr(ground, "exterior") else ground.geoms[0].exterior.coords
    return coords[0][0], coords[0][1]


def _load(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelsError(f"{path}: no such file; pass the GeoJSON of labelled polygons") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelsError(f"{path}: cannot read it as GeoJSON: {exc}") from None
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = {"type": "FeatureCollection", "features": [data]}
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise LabelsError(f"{path}: not a GeoJSON FeatureCollection (expected {{\"type\": \"FeatureCollection\", "
                          "\"features\": [...]}})")
    return data


def _to_ortho_crs(path: Path, collection: dict, ortho: Ortho):
    """A pyproj Transformer from the file's CRS (WGS84 unless it names another) to the ortho's."""
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    named = ((collection.get("crs") or {}).get("properties") or {}).get("name") if isinstance(collection.get("crs"), dict) else None
    try:
        source = CRS.from_user_input(named) if named else CRS.from_user_input(WGS84)
    except CRSError as exc:
        raise LabelsError(f"{path}: its crs {named!r} is not a CRS pyproj knows ({exc}); save the polygons as "
                          "GeoJSON in WGS84 (longitude, latitude), as RFC 7946 wants") from None
    try:
        return Transformer.from_crs(source, CRS.from_wkt(ortho.crs_wkt), always_xy=True)
    except CRSError as exc:
        raise LabelsError(f"{path}: cannot convert its coordinates ({source.name}) to the CRS of {ortho.path} "
                          f"({exc}); reproject the ortho or the polygons to a common CRS") from None


def _inverse(transform: tuple[float, ...]):
    """Ortho CRS (x, y) -> pixel (col, row): the inverse of the geotransform."""
    a, b, c, d, e, f = transform
    det = a * e - b * d
    if det == 0:
        raise LabelsError("the ortho's geotransform cannot be inverted")

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        x, y = x - c, y - f
        return ((e * x - b * y) / det, (-d * x + a * y) / det)
    return to_pixel


def _to_pixels(ground, transform, inverse, path: Path, name: str):
    import numpy as np
    import shapely
    from pyproj.exceptions import ProjError

    def convert(points):
        try:
            xs, ys = transform.transform(points[:, 0], points[:, 1], errcheck=True)
        except ProjError as exc:
            raise LabelsError(f"{path}: {name}: its coordinates cannot be converted to the ortho's CRS ({exc}); "
                              "are they longitude, latitude in degrees?") from None
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise LabelsError(f"{path}: {name}: its coordinates do not convert to the ortho's CRS (they fall "
                              "outside where that CRS is defined); are they longitude, latitude in degrees?")
        return np.column_stack(inverse(np.asarray(xs), np.asarray(ys)))
    return shapely.transform(ground, convert)


def _ident(feature: dict):
    return feature.get("id") if feature.get("id") is not None else (feature.get("properties") or {}).get("id")


def _name(feature: dict, number: int) -> str:
    ident = _ident(feature)
    return f"feature {number}" + (f" (id {ident})" if ident is not None else "")
