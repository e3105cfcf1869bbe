"""A PNG overview of a scanned ortho with its detections drawn: alerting tiles outlined in yellow, areas
shaded and outlined in red, each numbered (as in the GeoJSON) on its most alarming tile. It is pasted
together from each tile's small thumbnail, made when the tile was read, so drawing it costs no second
pass over an ortho larger than memory."""

from __future__ import annotations

import math
import os
from pathlib import Path

from PIL import Image, ImageDraw

from edge.survey.areas import Area, TileDecision
from edge.survey.grid import Tile

MAX_SIDE = 2048  # overview pixels on its longer side, at most
TILE_COLOUR, AREA_COLOUR = (255, 220, 0), (255, 40, 40)


def thumb_scale(width: int, height: int, tile_w: int, out_px: int) -> float:
    """Overview pixels per ortho pixel: at most the training resolution, and at most MAX_SIDE across."""
    return min(out_px / tile_w, MAX_SIDE / max(width, height), 1.0)


def draw_overview(path: Path, width: int, height: int, scale: float, tiles: list[Tile], thumbs: list[bytes | None],
                  alerts: list[TileDecision], areas: list[Area]) -> None:
    canvas = Image.new("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))), (0, 0, 0))
    for tile, thumb in zip(tiles, thumbs):
        if thumb is not None:
            size = (max(1, round(tile.width * scale)), max(1, round(tile.height * scale)))
            canvas.paste(Image.frombytes("RGB", size, thumb), (round(tile.x * scale), round(tile.y * scale)))
    shade = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    fill = ImageDraw.Draw(shade)
    for area in areas:  # a translucent red over each area, holes left clear
        fill.polygon([(x * scale, y * scale) for x, y in area.pixel_polygon.exterior.coords], fill=AREA_COLOUR + (70,))
        for ring in area.pixel_polygon.interiors:
            fill.polygon([(x * scale, y * scale) for x, y in ring.coords], fill=(0, 0, 0, 0))
    canvas = Image.alpha_composite(canvas.convert("RGBA"), shade).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for t in alerts:
        left, top, right, bottom = (v * scale for v in t.tile.box)
        draw.rectangle((left, top, right - 1, bottom - 1), outline=TILE_COLOUR, width=1)
    line = max(2, round(min(canvas.size) / 300))
    for area in areas:
        for ring in [area.pixel_polygon.exterior, *area.pixel_polygon.interiors]:
            draw.line([(x * scale, y * scale) for x, y in ring.coords], fill=AREA_COLOUR, width=line, joint="curve")
        centre = area.peak.tile.box
        draw.text(((centre[0] + centre[2]) / 2 * scale - 3, (centre[1] + centre[3]) / 2 * scale - 5), str(area.number),
                  fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    canvas.save(tmp, "PNG", compress_level=1)  # fast: level 6 took 0.8 s of a 7 s scan
    os.replace(tmp, path)
