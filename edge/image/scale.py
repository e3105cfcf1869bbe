"""A frame at an image model's training scale: how much the frame is resampled so that each model input
covers the ground a training tile covered, whether the model can judge the frame at all (its domain), and,
of several models, which one fits a frame best.

A model "has a scale" when its manifest gives both `trained_on.ground_resolution_m` and `tile_px` (the
shipped mining-s2: 48 px tiles at 10 m/px, 480 m of ground). A frame at g m/px is resampled by g / m
(model pixels per frame pixel) and cut into the model's own tile_px tiles, so a 5 m/px frame's tiles are
96 frame px and a 0.3 m/px frame's 1,600 frame px, each brought to 48 px as the model learnt them.

The domain, frames a model with a scale can judge:
- the frame's ground resolution is known (from the file, the config or --gsd);
- it lies in the manifest's `trained_on.ground_resolution_range_m` [finest, coarsest], by default
  [no bound, DEFAULT_COARSEST x the training's]: a finer frame is averaged down to the training's
  resolution, which is what a coarser camera does (nv-edge scan does the same with orthomosaics), but a
  coarser one would have to be upsampled, and upsampling adds no detail: at twice the training's metres
  per pixel a tile holds a quarter of the pixels the model learnt from, the most `nv-edge scan` accepts too;
- the frame covers at least one tile of ground (480 x 480 m for mining-s2) each way: a smaller frame would
  be stretched to a tile, which is not the scale the model learnt either.
A frame outside the domain is still scored, but raises no alert unless the operator allows it.

Models without a scale (camera models) take every frame as it is: nothing here applies to them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from edge.image.decode import FORMATS
from edge.image.gsd import GroundResolution, NoGroundResolution, frame_gsd
from edge.model.trained_on import TrainedOn

DEFAULT_COARSEST = 2.0  # a frame up to this many times coarser than the training's is upsampled to it
_SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations stored a quarter turn from upright


@dataclass(frozen=True)
class Ground:
    """What a frame's header says of its ground: its upright size and resolution, or why that is unknown."""

    gsd: GroundResolution | None  # along the upright frame's rows (x) and columns (y)
    unknown: str = ""  # why gsd is None, for people
    width: int = 0  # upright pixels; 0 when the header cannot be read (decoding will say why)
    height: int = 0


@dataclass(frozen=True)
class Scale:
    """How one frame meets one model with a scale."""

    trained_m: float  # the model's metres per pixel
    tile_px: int  # the model's training tile, pixels
    gsd: GroundResolution | None  # the frame's, when known
    factor: tuple[float, float]  # model pixels per frame pixel (x, y); (1, 1) when the frame's resolution is unknown
    out_of_domain: str | None = None  # why the model cannot judge the frame, in words; None: it can

    @property
    def resample(self) -> bool:
        return self.gsd is not None and any(abs(f - 1.0) > 1e-9 for f in self.factor)

    @property
    def tile_ground_m(self) -> float:
        return self.trained_m * self.tile_px


def has_scale(trained: TrainedOn) -> bool:
    return trained.ground_resolution_m is not None and trained.tile_px is not None


def domain(trained: TrainedOn) -> tuple[float | None, float | None]:
    """(finest, coarsest) metres per pixel a model with a scale judges; None: no bound on that side."""
    if trained.ground_resolution_range_m is not None:
        return trained.ground_resolution_range_m
    return None, DEFAULT_COARSEST * trained.ground_resolution_m


def read_ground(source: str | Path | bytes, *, option: float | None = None, config: float | None = None) -> Ground:
    """The frame's upright size and ground resolution (edge.image.gsd.frame_gsd: --gsd, file, config), from
    its header. Never raises: an unreadable header gives an unknown ground, and decoding says what is wrong."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source, formats=FORMATS) as img:
            width, height = img.size
            jpeg_like = img.format != "PNG" or "exif" in img.info  # a PNG's late EXIF would need a decode
            exif = img.getexif() if jpeg_like else {}
            orientation = exif.get(0x0112, 1)
            silent = not exif and not img.info.get("xmp") and img.format != "TIFF"
    except Exception:  # noqa: BLE001 - any header Pillow cannot read: open_frame names the problem
        return Ground(None, "the frame's header cannot be read")
    try:
        gsd = frame_gsd(source, option=option, config=config)
    except NoGroundResolution as exc:
        why = "the file has no georeferencing and no drone EXIF or XMP" if silent else _reason(exc, source)
        return Ground(None, why, *_upright(width, height, orientation))
    if orientation in _SIDEWAYS:
        gsd = replace(gsd, x_m=gsd.y_m, y_m=gsd.x_m)
    return Ground(gsd, "", *_upright(width, height, orientation))


def plan_scale(trained: TrainedOn, ground: Ground) -> Scale | None:
    """None for a model without a scale (it takes the frame as it is)."""
    if not has_scale(trained):
        return None
    m, tile = trained.ground_resolution_m, trained.tile_px
    learnt = f"the model learnt {_m(m)} m/px"
    gsd = ground.gsd
    if gsd is None:
        return Scale(m, tile, None, (1.0, 1.0),
                     f"ground resolution unknown ({ground.unknown}); {learnt} and cannot judge a frame of unknown "
                     "scale: pass --gsd M (metres per pixel), or set gsd under [image] in the config")
    factor = (gsd.x_m / m, gsd.y_m / m)
    finest, coarsest = domain(trained)
    said = f"{_m(gsd.metres)} m/px ({gsd.source})"
    why = None
    if coarsest is not None and gsd.metres > coarsest * (1 + 1e-9):
        why = (f"{said}, {learnt}: it cannot judge this scale (a frame coarser than {_m(coarsest)} m/px holds "
               "less detail than the model learnt from); use a model trained at this resolution")
    elif finest is not None and gsd.metres < finest * (1 - 1e-9):
        why = (f"{said}, {learnt}: it cannot judge this scale (its manifest accepts {_m(finest)} to "
               f"{_m(coarsest) if coarsest else 'any'} m/px); use a model trained at this resolution")
    elif ground.width and (round(ground.width * factor[0]) < tile or round(ground.height * factor[1]) < tile):
        why = (f"{said}: the frame covers {ground.width * gsd.x_m:.0f} x {ground.height * gsd.y_m:.0f} m of ground, "
               f"less than one tile of the model ({tile * m:g} x {tile * m:g} m: {learnt} in {tile} px tiles): "
               "it cannot judge a frame this small; stitch the photos into an orthomosaic and run nv-edge scan")
    return Scale(m, tile, gsd, factor, why)


def misfit(trained: TrainedOn, ground: Ground) -> float:
    """How far the frame's resolution is from the model's, as |log ratio|; 0 when either is unknown."""
    if not has_scale(trained) or ground.gsd is None:
        return 0.0
    return abs(math.log(ground.gsd.metres / trained.ground_resolution_m))


def choose(trained: Sequence[TrainedOn], ground: Ground) -> int:
    """Which of several models classifies the frame: of the models with a scale that can judge it, the one
    whose training resolution is nearest the frame's; else the first model without a scale (a camera model
    takes any frame); else the nearest (whose record then says why it cannot judge it). Ties: the first."""
    plans = [plan_scale(t, ground) for t in trained]
    judging = [(misfit(t, ground), i) for i, (t, p) in enumerate(zip(trained, plans))
               if p is not None and p.out_of_domain is None]
    if judging:
        return min(judging)[1]
    plain = [i for i, p in enumerate(plans) if p is None]
    if plain:
        return plain[0]
    return min((misfit(t, ground), i) for i, t in enumerate(trained))[1]


def _upright(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in _SIDEWAYS else (width, height)


def _reason(exc: NoGroundResolution, source) -> str:
    """frame_gsd's message without the file name (the record has it) and its advice (the caller gives it)."""
    text = str(exc)
    prefix = f"{Path('the frame') if isinstance(source, (bytes, bytearray)) else Path(source)}: "
    text = text.removeprefix(prefix).removeprefix("no ground resolution: ")
    return text.removesuffix("; pass --gsd M (metres per pixel)")


def _m(value: float) -> str:
    return f"{value:.3g}"
