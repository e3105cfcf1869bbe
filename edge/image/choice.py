"""A unit with several image models: each frame goes to the model whose training scale fits it best
(edge.image.scale.choose), with that model's own options (thresholds, tiles)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.image.classify import ClassifyOptions
from edge.image.scale import Ground, choose, has_scale, read_ground
from edge.model.loaded import Model


@dataclass
class ImageModel:
    model: Model
    options: ClassifyOptions


def pick(models: Sequence[ImageModel], source: str | Path | bytes) -> tuple[ImageModel, Ground | None]:
    """The model for this frame, and the frame's ground when it was read (None: no model has a scale)."""
    if len(models) == 1 and not has_scale(models[0].model.manifest.trained_on):
        return models[0], None
    first = models[0].options  # --gsd and the config's gsd are the unit's, the same for every model
    ground = read_ground(source, option=first.gsd, config=first.default_gsd)
    if len(models) == 1:
        return models[0], ground
    return models[choose([m.model.manifest.trained_on for m in models], ground)], ground

