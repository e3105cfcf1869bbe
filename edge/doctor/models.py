"""Model checks: each bundle loads, its measured latency on this board, and which interpreters import."""

from __future__ import annotations

import statistics
import time

import numpy as np

from edge.config import AudioConfig, EdgeConfig, ImageConfig
from edge.doctor.check import Check, fail, ok, skipped, warn
from edge.features.logmel import LogMelSpec
from edge.image.classify import predict_tiles
from edge.model.bundle import BundleError
from edge.model.interpreter import available_backends, backend_version
from edge.model.loaded import Model, load_model

# Thresholds (systemd/README.md states them too).
LATENCY_RUNS = 20  # timed runs of each model; the median is reported
AUDIO_HOP_SHARE = 0.25  # an audio model may use a quarter of the hop: the rest is capture, features, events, the image model
IMAGE_BATCH_MAX_S = 1.0  # per batch of [image] batch tiles: slower and a large frame takes minutes


# -- 2. models -------------------------------------------------------------------------------------------

def check_models(cfg: EdgeConfig | None, runs: int = LATENCY_RUNS) -> list[Check]:
    if cfg is None:
        return [skipped("model")]
    checks = []
    if cfg.image is not None:  # each image model, when there are several: "model image 1", "model image 2"...
        several = len(cfg.image.models) > 1
        checks += [check_model("image", cfg.image, runs, entry.path, f"model image {i}" if several else None)
                   for i, entry in enumerate(cfg.image.models, 1)]
    if cfg.audio is not None:
        checks.append(check_model("audio", cfg.audio, runs))
    return checks


def check_model(kind: str, section: ImageConfig | AudioConfig, runs: int = LATENCY_RUNS, path=None,
                name: str | None = None) -> Check:
    """Checksum and manifest (read again: a bundle can be damaged after the config was checked), load
    on the configured or best backend, and the median latency of `runs` runs on this board. `path`: which of
    the section's models (its first by default)."""
    name = name or f"model {kind}"
    try:
        model = load_model(path or section.model, backend=section.backend, num_threads=section.threads)
    except BundleError as exc:
        text = str(exc)
        if "checksum" in text or "not a model bundle" in text:
            fix = "Copy the bundle (.nvm) to the unit again from the release: this copy is damaged."
        elif "no TFLite interpreter" in text or "not usable here" in text:
            fix = "Install an interpreter into the service's venv: pip install ai-edge-litert."
        else:
            fix = "Replace the bundle with one made by nv-convert for this nv-edge version."
        return fail(name, text, fix)
    m = model.manifest
    where = f"{m.name} {m.version} on {model.runner.backend} {model.runner.backend_version}"
    t = m.trained_on
    if kind == "image" and t.ground_resolution_m is not None and t.tile_px is not None:
        where += f" (learnt {t.ground_resolution_m:g} m/px, {t.tile_px} px tiles)"
    if kind == "audio":
        batch = np.zeros((1, *LogMelSpec.from_dict(m.audio).input_shape), dtype=np.float32)
        budget, unit = AUDIO_HOP_SHARE * section.hop_s, "per window"
    else:
        width, height = m.input.size
        batch = np.full((section.batch, height, width, 3), 128, dtype=np.uint8)  # grey tiles
        budget, unit = IMAGE_BATCH_MAX_S, f"per batch of {section.batch} tiles"
        if m.input.tta > 1:  # each tile in its orientations, as the unit runs them
            unit += f", each in {m.input.tta} orientations"
    median = median_latency_s(model, batch, runs, m.input.tta if kind == "image" else 1)
    found = f"{where}: {median * 1000:.1f} ms {unit} (median of {runs} runs on this board; limit {budget * 1000:.0f} ms)"
    if median <= budget:
        return ok(name, found)
    fix = faster(kind, model.runner.backend, section.threads)
    if kind == "audio":
        return warn(name, f"{found}: it cannot keep up with hop_s = {section.hop_s:g} s",
                    f"Set [audio] hop_s to at least {median / AUDIO_HOP_SHARE:.2f} s, or {fix[0].lower()}{fix[1:]}")
    return warn(name, f"{found}: large frames will take minutes", fix)


def faster(kind: str, backend: str, threads: int | None) -> str:
    """What makes a slow model faster on the backend it runs on: LiteRT is already the fast one (XNNPACK),
    so only threads, the board's other load, the model or the board are left; the others lack XNNPACK for int8."""
    more = f"raise [{kind}] threads (now {threads})" if threads else f"set [{kind}] threads = 2"
    if backend == "litert":
        return (f"It already runs on LiteRT (XNNPACK): {more} if a core is free, stop other programs keeping "
                f"the cores busy (top shows them), or use a smaller model or a faster board.")
    why = ("it runs int8 models through XNNPACK, tflite-runtime does not" if backend == "tflite-runtime"
           else "the interpreter made for boards; TensorFlow's is for workstations")
    return (f"Install LiteRT into the service's venv: pip install ai-edge-litert ({why}; remove [{kind}] backend "
            f"if the config names {backend}), then {more}.")


def median_latency_s(model: Model, batch: np.ndarray, runs: int, tta: int = 1) -> float:
    def run():
        return model.predict(batch) if tta == 1 else predict_tiles(model, batch, tta)

    run()  # the first run allocates the tensors for this batch size: not a steady-state time
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- 3. interpreter --------------------------------------------------------------------------------------

def check_interpreter() -> Check:
    found = available_backends()  # imports LiteRT and tflite-runtime; TensorFlow is only looked up
    if not found:
        return fail("interpreter", "no TFLite interpreter imports here (tried litert, tflite-runtime, tensorflow)",
                    "Install LiteRT into the service's venv: pip install ai-edge-litert.")
    versions = ", ".join(f"{name} {backend_version(name)}" for name in found)
    if found == ["tflite-runtime"]:
        return warn("interpreter", f"{versions} only: no XNNPACK for int8 models, about 20x slower than LiteRT",
                    "Install LiteRT into the service's venv: pip install ai-edge-litert.")
    return ok("interpreter", f"{versions}; models run on {found[0]} unless the config names another")
