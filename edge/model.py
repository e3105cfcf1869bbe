"""A loaded model: a verified bundle plus a running interpreter whose tensors match its manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle import BundleError, Manifest, check_tensors, read_bundle
from edge.image import normalise
from edge.interpreter import BackendError, Runner


@dataclass
class Model:
    path: Path
    manifest: Manifest
    runner: Runner

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (N, H, W, 3) -> scores (N, labels)."""
        return self.runner.run(normalise(pixels, self.manifest.input))

    @property
    def identity(self) -> dict:
        """How a record names the model that made it."""
        m = self.manifest
        return {"name": m.name, "version": m.version, "sha256": m.model_sha256}


def load_model(path: str | Path, backend: str | None = None, num_threads: int | None = None) -> Model:
    bundle = read_bundle(path)
    try:
        runner = Runner(bundle.model_bytes, backend=backend, num_threads=num_threads)
    except BackendError as exc:
        raise BundleError(f"{bundle.path}: {exc}") from None
    check_tensors(
        bundle.manifest,
        bundle.path,
        input_shape=runner.input.shape,
        input_dtype=runner.input.dtype,
        output_shape=runner.output.shape,
    )
    return Model(path=bundle.path, manifest=bundle.manifest, runner=runner)
