"""Ground resolution (ground sample distance, GSD): metres of ground per pixel of a frame, and where
that figure came from. The model learnt at one resolution (the manifest's
`trained_on.ground_resolution_m`), so a frame's resolution says how it must be tiled.

Where it comes from, first found wins:

- `option`: the operator said so (`--gsd M`); it overrides what the file says.
- `geotiff`: a GeoTIFF's geotransform. A projected CRS gives the pixel size in its linear unit (metres,
  or feet converted to metres); a geographic CRS gives degrees, turned into metres at the frame's centre
  on the WGS84 ellipsoid (pyproj's Geod), never by a flat-earth factor.
- `exif-xmp` / `camera-table`: a drone photo taken straight down,
  GSD = sensor width x altitude above ground / (focal length x image width in pixels), with
  * the altitude above ground: DJI's `drone-dji:RelativeAltitude` (XMP), or the Pix4D camera namespace's
    `Camera:AboveGroundAltitude` (Parrot writes it); else EXIF GPSAltitude minus the ground's altitude when
    the caller knows it. Relative altitudes are above the take-off point: over sloping ground the GSD
    changes with the slope.
  * the focal length (EXIF FocalLength) and the sensor width from EXIF FocalPlaneXResolution and
    FocalPlaneResolutionUnit (`exif-xmp`), else from edge/image/cameras.py by Make and Model
    (`camera-table`); else FocalLengthIn35mmFilm, whose equivalence is by the diagonal (43.27 mm) with the
    frame's own aspect ratio (`exif-xmp`).
- `srt`: a drone video's frame, from its DJI telemetry file (edge/image/srt.py): the relative altitude and
  the 35 mm-equivalent focal length of the cue covering the frame, by the same equivalence as
  FocalLengthIn35mmFilm at the video frame's aspect ratio (`video_gsd`).
- `config`: the value the unit's config gives, when the file says nothing.

pyproj and rasterio are needed only for GeoTIFFs (the `survey` extra); they are imported when used.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from edge.image.cameras import find_camera
from edge.image.decode import FORMATS
from edge.image.exif import EXIF_IFD, read_geo
from edge.image.xmp import DJI, PIX4D_CAMERA, parse_xmp, xmp_number

SOURCES = ("geotiff", "exif-xmp", "camera-table", "srt", "config", "option")
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm: what a 35 mm-equivalent focal length is scaled to
# EXIF tags
_MAKE, _MODEL = 0x010F, 0x0110
_FOCAL_LENGTH, _FOCAL_35MM = 0x920A, 0xA405
_FOCAL_PLANE_X_RES, _FOCAL_PLANE_UNIT = 0xA20E, 0xA210
_PIXEL_X_DIMENSION = 0xA002
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # FocalPlaneResolutionUnit: inch, centimetre, millimetre, micrometre


class NoGroundResolution(Exception):
    """No source gave the frame's ground resolution; the message says what is missing and what to do."""


@dataclass(frozen=True)
class GroundResolution:
    x_m: float  # metres of ground per pixel along a row
    y_m: float  # ... down a column
    source: str  # one of SOURCES
    detail: str  # how it was worked out, for people

    @property
    def metres(self) -> float:
        return (self.x_m + self.y_m) / 2.0

    def to_dict(self) -> dict:
        return {"metres": round(self.metres, 6), "x_m": round(self.x_m, 6), "y_m": round(self.y_m, 6),
                "source": self.source, "detail": self.detail}


def given(metres: float, source: str) -> GroundResolution:
    """A resolution stated by the operator (`option`) or the config (`config`)."""
    if not (isinstance(metres, (int, float)) and math.isfinite(metres) and metres > 0):
        raise ValueError(f"a ground resolution is a positive number of metres per pixel, got {metres!r}")
    where = "--gsd" if source == "option" else "the config"
    return GroundResolution(float(metres), float(metres), source, f"{metres} m/px from {where}")


def camera_gsd(sensor_width_mm: float, focal_length_mm: float, altitude_m: float, image_width_px: int) -> float:
    """Metres per pixel of a nadir photo: sensor width x altitude / (focal length x image width)."""
    return sensor_width_mm * altitude_m / (focal_length_mm * image_width_px)


# -- GeoTIFFs ----------------------------------------------------------------------------------------


def geotransform_gsd(transform: Sequence[float], crs, width: int, height: int) -> GroundResolution:
    """From an affine transform (a, b, c, d, e, f) as rasterio orders it (x = a*col + b*row + c,
    y = d*col + e*row + f) and its CRS (anything pyproj.CRS.from_user_input takes, a rasterio CRS too)."""
    from pyproj import CRS, Geod

    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    crs = CRS.from_user_input(crs)
    if crs.is_projected:
        unit = crs.axis_info[0]
        factor = unit.unit_conversion_factor or 1.0  # metres per unit
        return GroundResolution(math.hypot(a, d) * factor, math.hypot(b, e) * factor, "geotiff",
                                f"pixel {math.hypot(a, d):g} x {math.hypot(b, e):g} {unit.unit_name} in {crs.name}")
    if crs.is_geographic:
        # GeoTIFF geotransforms put longitude on x and latitude on y, whatever the CRS's axis order.
        factor = math.degrees(crs.axis_info[0].unit_conversion_factor or math.radians(1.0))  # degrees per unit
        col, row = width / 2.0, height / 2.0

        def at(i: float, j: float) -> tuple[float, float]:
            return (a * i + b * j + c) * factor, (d * i + e * j + f) * factor

        lon, lat = at(col, row)
        if not (-90.0 <= lat <= 90.0):
            raise NoGroundResolution(f"the frame's centre is at latitude {lat:g}: the geotransform is not in degrees")
        geod = Geod(ellps="WGS84")
        x_m = geod.inv(lon, lat, *at(col + 1, row))[2]
        y_m = geod.inv(lon, lat, *at(col, row + 1))[2]
        return GroundResolution(x_m, y_m, "geotiff",
                                f"pixel {math.hypot(a, d):g} x {math.hypot(b, e):g} degrees in {crs.name} "
                                f"at latitude {lat:.4f} (WGS84 ellipsoid)")
    raise NoGroundResolution(f"its CRS ({crs.name}) is neither projected nor geographic")


def read_geotiff_gsd(path: str | Path) -> GroundResolution | None:
    """The geotransform's resolution of a GeoTIFF, or None when the file has no georeferencing.
    Needs rasterio (the `survey` extra)."""
    import rasterio

    with rasterio.open(path) as src:
        if src.crs is None or src.transform.is_identity:
            return None
        return geotransform_gsd(src.transform, src.crs, src.width, src.height)


# -- drone photos ------------------------------------------------------------------------------------


def photo_gsd(exif: Image.Exif, xmp: dict[str, str], width: int, height: int,
              ground_altitude_m: float | None = None) -> GroundResolution:
    """From a nadir drone photo's EXIF and XMP; `width`, `height` are the stored (sensor-oriented) size,
    not the upright one: the sensor's width spans the stored rows. Raises NoGroundResolution naming what
    is missing."""
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001 - a broken EXIF block is a missing one
        sub = {}
    altitude, altitude_from = _altitude(exif, xmp, ground_altitude_m)
    focal = _positive(sub.get(_FOCAL_LENGTH))
    sensor, sensor_from, source = _sensor_width(exif, sub, width)
    if focal is not None and sensor is not None:
        optics = f"focal length {focal:g} mm, sensor width {sensor:g} mm ({sensor_from})"
    elif (focal35 := _positive(sub.get(_FOCAL_35MM))) is not None:
        focal, sensor = focal35, equivalent_sensor_width(width, height)
        optics, source = f"35 mm-equivalent focal length {focal35:g} mm (FocalLengthIn35mmFilm)", "exif-xmp"
    else:
        missing = "FocalLength" if focal is None else "the sensor size (no FocalPlaneXResolution, camera not in the table)"
        raise NoGroundResolution(f"the EXIF has no {missing} and no FocalLengthIn35mmFilm")
    if altitude is None:
        raise NoGroundResolution(f"no altitude above ground ({altitude_from})")
    if altitude <= 0:
        raise NoGroundResolution(f"the altitude above ground is {altitude:g} m ({altitude_from}): not a flight")
    metres = camera_gsd(sensor, focal, altitude, width)
    return GroundResolution(metres, metres, source, f"{altitude:g} m above ground ({altitude_from}), {optics}, "
                                                    f"{width} px wide")


def equivalent_sensor_width(width: int, height: int) -> float:
    """The width of a 35 mm frame's diagonal (43.27 mm) at this frame's aspect ratio: what a 35 mm-equivalent
    focal length is measured against."""
    aspect = width / height
    return FULL_FRAME_DIAGONAL_MM * aspect / math.hypot(aspect, 1.0)


def video_gsd(relative_altitude_m: float | None, focal_35mm: float | None, width: int, height: int,
              where: str = "telemetry") -> GroundResolution:
    """A nadir video frame's resolution from its telemetry: the altitude above the take-off point and the
    35 mm-equivalent focal length. Raises NoGroundResolution naming what is missing."""
    if relative_altitude_m is None:
        raise NoGroundResolution(f"{where} gives no altitude above the take-off point")
    if relative_altitude_m <= 0:
        raise NoGroundResolution(f"{where} gives {relative_altitude_m:g} m above the take-off point: not a flight")
    if focal_35mm is None:
        raise NoGroundResolution(f"{where} gives no focal length (focal_len)")
    metres = camera_gsd(equivalent_sensor_width(width, height), focal_35mm, relative_altitude_m, width)
    return GroundResolution(metres, metres, "srt", f"{relative_altitude_m:g} m above the take-off point, 35 mm-"
                                                   f"equivalent focal length {focal_35mm:g} mm ({where}), "
                                                   f"{width} px wide")


def _altitude(exif: Image.Exif, xmp: dict[str, str], ground: float | None) -> tuple[float | None, str]:
    relative = xmp_number(xmp, DJI, "RelativeAltitude")
    if relative is not None:
        return relative, "XMP drone-dji:RelativeAltitude"
    relative = xmp_number(xmp, PIX4D_CAMERA, "AboveGroundAltitude")
    if relative is not None:
        return relative, "XMP Camera:AboveGroundAltitude"
    geo = read_geo(exif)
    if geo is not None and "alt" in geo and ground is not None:
        return geo["alt"] - ground, f"EXIF GPSAltitude {geo['alt']:g} m minus ground altitude {ground:g} m"
    if geo is not None and "alt" in geo:
        return None, ("no relative altitude in the XMP; EXIF GPSAltitude is above sea level and needs the "
                      "ground's altitude")
    return None, "no relative altitude in the XMP and no EXIF GPSAltitude"


def _sensor_width(exif: Image.Exif, sub: dict, width: int) -> tuple[float | None, str, str]:
    resolution = _positive(sub.get(_FOCAL_PLANE_X_RES))
    unit = _UNIT_MM.get(_int(sub.get(_FOCAL_PLANE_UNIT, 2)))
    if resolution is not None and unit is not None:
        pixels = _int(sub.get(_PIXEL_X_DIMENSION)) or width  # FocalPlaneXResolution counts the camera's own width
        return pixels / resolution * unit, "EXIF FocalPlaneXResolution", "exif-xmp"
    camera = find_camera(exif.get(_MAKE), exif.get(_MODEL))
    if camera is not None:
        return camera.sensor_width_mm, f"camera table: {camera.name}", "camera-table"
    return None, "", ""


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# -- every source ------------------------------------------------------------------------------------


def frame_gsd(path: str | Path | bytes, *, option: float | None = None, config: float | None = None,
              ground_altitude_m: float | None = None) -> GroundResolution:
    """The ground resolution of the frame in `path` (or encoded bytes: a camera's snapshot, read for its EXIF
    and XMP only), from the first source that has it (module docstring). Reads headers only. Raises
    NoGroundResolution naming the file, what is missing and what to do."""
    if option is not None:
        return given(option, "option")
    data = path if isinstance(path, (bytes, bytearray)) else None
    path = Path("the frame") if data is not None else Path(path)
    problems = []
    if data is None and path.suffix.lower() in (".tif", ".tiff"):
        try:
            found = read_geotiff_gsd(path)
        except ImportError:
            problems.append("GeoTIFF tags not read: install the survey extra (pip install 'naturevision[survey]')")
        except (NoGroundResolution, OSError, ValueError) as exc:
            problems.append(f"GeoTIFF: {exc}")
        else:
            if found is not None:
                return found
    try:
        with Image.open(io.BytesIO(data) if data is not None else path, formats=FORMATS) as img:
            width, height = img.size
            # A PNG's EXIF after its pixels is found by decoding them all: not for a header read.
            exif = img.getexif() if img.format != "PNG" or "exif" in img.info else Image.Exif()
            xmp = parse_xmp(img.info.get("xmp"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise NoGroundResolution(f"{path}: cannot read the frame's header: {exc}") from None
    try:
        return photo_gsd(exif, xmp, width, height, ground_altitude_m)
    except NoGroundResolution as exc:
        problems.append(str(exc))
    if config is not None:
        return given(config, "config")
    raise NoGroundResolution(f"{path}: no ground resolution: {'; '.join(problems)}; pass --gsd M (metres per pixel)")
