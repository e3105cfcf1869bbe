"""Loading, continued: the model bundles a section names, its threshold overrides and event rules. The image
section may name several models (`models = [...]`, or the one `model`): each is loaded and checked, the
thresholds and event rules apply to each model that has the alert groups they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.config.errors import ConfigError
from edge.config.sections import ImageModelConfig
from edge.config.values import TomlValues, shown
from edge.decisions.alerts import resolve_thresholds, takes_threshold
from edge.decisions.events import EventRules, layered_rules
from edge.decisions.groups import alert_groups, plain
from edge.model.bundle import BundleError, Manifest
from edge.model.loaded import load_model


class ModelValues(TomlValues):
    def image_models(self, t: dict, backend: str | None, threads: int | None) -> tuple[ImageModelConfig, ...]:
        """`model = PATH` (one model) or `models = [PATH, ...]` (several: each frame goes to the one whose
        ground resolution fits it best), each with the event rules of [image.events] over its own."""
        if ("model" in t) == ("models" in t):
            raise self.fail("image.model", "both model and models given" if "model" in t else "missing",
                            'model = "PATH.nvm" for one image model, or models = ["A.nvm", "B.nvm"] for several')
        if "model" in t:
            named = [(t, "image.model")]
        else:
            listed = t["models"]
            if not (isinstance(listed, list) and listed and all(isinstance(p, str) for p in listed)):
                raise self.fail("image.models", f"got {shown(listed)}", 'a list of model bundle paths like ["a.nvm", "b.nvm"]')
            named = [({f"models[{i}]": p}, f"image.models[{i}]") for i, p in enumerate(listed, 1)]
        models = []
        for table, where in named:  # where's last part is the key in table (TomlValues.string)
            path, manifest = self.model(table, "image", backend, threads, where=where)
            if any(m.path.resolve() == path.resolve() for m in models):
                raise self.fail(where, f"{path} is named twice", "each model once")
            events = self.image_events(t["events"], path, manifest) if "events" in t else None
            models.append(ImageModelConfig(path=path, manifest=manifest, events=events))
        return tuple(models)

    def image_thresholds(self, t: dict, models: tuple[ImageModelConfig, ...]) -> dict[str, float]:
        """[image.thresholds]: each key an alert group (or label) of at least one of the models."""
        if len(models) == 1:
            return self.thresholds(t, "image", models[0].manifest)
        raw = self.table(t.get("thresholds", {}), "image.thresholds", optional=None)
        for label in raw:
            self.number(raw, f"image.thresholds.{label}", low=0, high=1)
            if not any(takes_threshold(m.manifest, label) for m in models):
                names = ", ".join(m.manifest.name for m in models)
                raise self.fail(f"image.thresholds.{label}", f"no model ({names}) decides {label!r}",
                                "an alert group or label of one of the models")
        return {label: float(value) for label, value in raw.items()}

    def model(self, t: dict, section: str, backend: str | None, threads: int | None,
              where: str | None = None) -> tuple[Path, Manifest]:
        """The section's bundle, loaded as the service loads it (`load_model`, for a moment): checksums,
        manifest, task, and the manifest against the interpreter's real tensors."""
        where = where or f"{section}.model"
        path = self.path_of(t, where, self.here)
        if not path.is_file():
            raise self.fail(where, f"{path}: no such file", "the path of a model bundle (.nvm)")
        try:
            manifest = load_model(path, backend=backend, num_threads=threads, task=section).manifest
        except BundleError as exc:
            raise self.fail(where, str(exc), f"an {section} model bundle (.nvm) made by nv-convert") from None
        return path, manifest

    def thresholds(self, t: dict, section: str, manifest: Manifest) -> dict[str, float]:
        where = f"{section}.thresholds"
        raw = self.table(t.get("thresholds", {}), where, optional=None)
        for label in raw:
            self.number(raw, f"{where}.{label}", low=0, high=1)
            try:
                resolve_thresholds(manifest, {label: float(raw[label])})
            except ValueError as exc:
                kind = "label" if plain(alert_groups(manifest)) else "group"
                raise self.fail(f"{where}.{label}", str(exc), f"an alert {kind} of {manifest.name}") from None
        return {label: float(value) for label, value in raw.items()}

    def image_events(self, raw: Any, model: Path, manifest: Manifest) -> EventRules:
        """Frames come at irregular intervals (a camera trap fires on motion), so a pause between
        frames ends nothing unless max_gap_s is given (here or by the model)."""
        return self.events(raw, "image.events", model, manifest, base={"max_gap_s": None})

    def events(self, raw: Any, where: str, model: Path, manifest: Manifest, base: dict | None = None) -> EventRules:
        """The model's recommended rules (its manifest's `events`), with the keys of this table over them."""
        try:
            return layered_rules((base, "defaults"), (manifest.events, f"{model}: manifest.json: events"),
                                 (raw, f"{self.path}: [{where}]"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


