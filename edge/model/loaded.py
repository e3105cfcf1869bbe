"""A loaded model: a verified bundle plus a running interpreter whose tensors match its manifest.

`load_model` is the one way every command gets a model (`nv-edge run`, `config check`, `classify`,
`listen`, `doctor`), so they all accept and refuse the same bundles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.features.logmel import LogMelSpec
from edge.features.pixels import normalise
from edge.model.bundle import BundleError, Manifest, read_bundle
from edge.model.interpreter import BackendError, Runner, quantize


@dataclass
class Model:
    path: Path
    manifest: Manifest
    runner: Runner

    def __post_init__(self) -> None:
        self._table = pixel_table(self.manifest, self.runner)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Image models: uint8 pixels (N, H, W, 3) -> scores (N, labels). Audio models: the normalised
        log-mel input (N, frames, n_mels, 1) float32 from `edge.features.logmel.normalise` -> scores."""
        if self.manifest.task == "audio":
            return self.runner.run(pixels)
        if self._table is None:
            return self.runner.run(normalise(pixels, self.manifest.input))
        return self.runner.run_raw(look_up(self._table, pixels))

    @property
    def identity(self) -> dict:
        """How a record names the model that made it."""
        m = self.manifest
        return {"name": m.name, "version": m.version, "sha256": m.model_sha256}


def pixel_table(manifest: Manifest, runner: Runner) -> np.ndarray | None:
    """For a quantized input, every uint8 pixel value maps to one tensor value per channel: a lookup
    table built with the same normalise + quantize steps gives the same tensor in a fraction of the
    time. Shape (256,) when the channels share mean and std, else (256, 3); None for float inputs."""
    if not runner.input.quantized or manifest.task != "image":
        return None
    values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    table = quantize(normalise(values, manifest.input), runner.input)
    return table[:, 0].copy() if (table == table[:, :1]).all() else table


def look_up(table: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The tensor values of uint8 pixels (N, H, W, 3) from a `pixel_table`, one input at a time: numpy
    indexes with 8-byte integers, so the whole batch at once took 8 bytes a pixel for a moment (3.5 MB
    for 16 inputs of 96 x 96)."""
    out = np.empty(pixels.shape, dtype=table.dtype)
    channels = np.arange(3)
    for i, one in enumerate(pixels):
        out[i] = np.take(table, one) if table.ndim == 1 else table[one, channels]
    return out


def load_model(path: str | Path, backend: str | None = None, num_threads: int | None = None, *,
               task: str | None = None) -> Model:
    """Read and verify the bundle (checksums, manifest), refuse it when `task` is given and the model
    is for another task, open it on an interpreter and check the manifest against the real tensors."""
    bundle = read_bundle(path)
    manifest = bundle.manifest
    if task is not None and manifest.task != task:
        raise BundleError(f"{bundle.path}: is an {manifest.task} model, not an {task} model; "
                          f"pass an {task} model bundle (.nvm)")
    try:
        runner = Runner(bundle.model_bytes, backend=backend, num_threads=num_threads)
    except BackendError as exc:
        raise BundleError(f"{bundle.path}: {exc}") from None
    check_tensors(manifest, bundle.path, runner)
    return Model(path=bundle.path, manifest=manifest, runner=runner)


def check_tensors(manifest: Manifest, path: Path, runner: Runner) -> None:
    """Fail unless the interpreter's real tensors are what the manifest promises: the input shape (the
    image size, or the audio feature spec), the input type, and one output per label."""
    input_shape, output_shape = runner.input.shape, runner.output.shape
    problems = []
    if manifest.task == "image":
        width, height = manifest.input.size
        if len(input_shape) != 4 or tuple(input_shape[1:]) != (height, width, 3):
            problems.append(f"input tensor is {list(input_shape)}, manifest says [N, {height}, {width}, 3]")
    if manifest.task == "audio":
        spec = LogMelSpec.from_dict(manifest.audio)
        if len(input_shape) != 4 or tuple(input_shape[1:]) != spec.input_shape:
            problems.append(f"input tensor is {list(input_shape)}, manifest says [N, {spec.frames}, {spec.n_mels}, 1]")
    if runner.input.dtype != manifest.input.dtype:
        problems.append(f"input tensor type is {runner.input.dtype}, manifest says {manifest.input.dtype}")
    if len(output_shape) != 2 or output_shape[-1] != len(manifest.labels):
        problems.append(f"output tensor is {list(output_shape)}, manifest lists {len(manifest.labels)} labels")
    if problems:
        raise BundleError(f"{path}: model and manifest disagree: {'; '.join(problems)}; rebuild it with nv-convert")
