"""Orthomosaics dropped into the unit's watched folder: a georeferenced GeoTIFF goes through `nv-edge scan`'s
path (edge/survey/scan.py: windowed reads, tiles at the model's ground resolution, areas merged), not the
frame path, which would refuse a big one as a decompression bomb and could not give areas on a map.

Its GeoJSON and state file go to `<state_dir>/scans/`, named by the item's record id: a scan stopped by a
crash or a restart resumes where it was, and gives the same area records (the same ids) again, which the
outbox and the base station store once. One area record per mining area goes to the outbox, each with its
polygon; an ortho without mining gives none, and the journal says so. A GeoTIFF without georeferencing,
or a unit without rasterio (the `survey` extra), goes the frame path as before."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edge.image.scale import has_scale

SUFFIXES = (".tif", ".tiff")


class OrthoError(Exception):
    """An orthomosaic this unit cannot scan; the message names the file and says why."""


def is_ortho(path: Path) -> bool:
    """A GeoTIFF with a CRS and a geotransform (read from its header only), when rasterio is installed."""
    if path.suffix.lower() not in SUFFIXES or importlib.util.find_spec("rasterio") is None:
        return False
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.crs is not None and not src.transform.is_identity
    except Exception:  # noqa: BLE001 - not a TIFF rasterio reads: the frame path names the problem
        return False


def scan_model(models):
    """The first image model that learnt a ground resolution (a scan needs one), or None."""
    return next((m for m in models if has_scale(m.model.manifest.trained_on)), None)


def scan_ortho(path: Path, chosen, *, state_dir: Path, record_id: str, device: str, backend: str | None,
               threads: int | None, on_tiles):
    """The ScanSummary. Raises OrthoError for an ortho that cannot be scanned. The survey code is imported
    here, not with the service: a unit that never gets an ortho does not keep it in memory."""
    from edge.survey.raster import SurveyError
    from edge.survey.scan import ScanOptions, scan

    out = state_dir / "scans" / f"{path.stem}-{record_id}.geojson"
    out.parent.mkdir(parents=True, exist_ok=True)
    options = ScanOptions(model=Path(chosen.model.path), out=out, device=device,
                          thresholds=dict(chosen.options.thresholds), workers=1, threads=threads, backend=backend)
    try:
        return scan(path, options, on_tiles=on_tiles)
    except SurveyError as exc:
        raise OrthoError(str(exc)) from None
