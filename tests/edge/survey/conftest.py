"""Fixtures for the survey tests: the tiny model (red means mining) at its own scale and at a coarser
one, and orthomosaics written with rasterio."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest.importorskip("rasterio", reason="the survey extra (rasterio, pyproj, shapely) is not installed")


@pytest.fixture(scope="session")
def tiny_scan_model(tiny_scaled) -> Path:
    """The tiny int8 model: 16-px training tiles of 10 m/px, so a scan tile is 160 m of ground."""
    return tiny_scaled


@pytest.fixture(scope="session")
def coarse_scan_model(tiny_scaled, tmp_path_factory) -> Path:
    """The same model under a manifest that says it learnt 20 m/px: 320 m tiles (fewer of them on a big ortho)."""
    from build_models import rebundle

    from edge.model.bundle import read_bundle

    trained = read_bundle(tiny_scaled).manifest.trained_on
    return rebundle(tiny_scaled, tmp_path_factory.mktemp("coarse") / "tiny-20m.nvm", name="tiny-20m",
                    trained_on=replace(trained, ground_resolution_m=20.0))
