"""One small shim over the TFLite interpreters a device may have.

Order of preference: LiteRT (`ai_edge_litert`, runs int8 through XNNPACK), then `tflite_runtime`
(same API; older, slower for int8, needs numpy<2), then `tensorflow.lite` (a workstation only).
Inputs and outputs are (de)quantized from each tensor's own scale and zero-point.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKENDS = {  # name -> (module to import, attribute path to the Interpreter class)
    "litert": ("ai_edge_litert.interpreter", "Interpreter"),
    "tflite-runtime": ("tflite_runtime.interpreter", "Interpreter"),
    "tensorflow": ("tensorflow", "lite.Interpreter"),  # the package `tensorflow.lite` itself lacks it
}


class BackendError(Exception):
    """No usable interpreter, or the model cannot be opened by it."""


def _import_backend(name: str):
    module_name, path = BACKENDS[name]
    found = importlib.import_module(module_name)
    for attr in path.split("."):
        found = getattr(found, attr)
    return found


def available_backends() -> list[str]:
    """Backends usable here, in order of preference. LiteRT and tflite-runtime are imported to be
    sure they work (tflite-runtime fails with numpy 2); TensorFlow is only looked up, because
    importing it takes seconds and breaks tflite-runtime in the same process."""
    found = []
    for name in BACKENDS:
        if name == "tensorflow":
            if importlib.util.find_spec("tensorflow") is not None:
                found.append(name)
            continue
        try:
            _import_backend(name)
        except Exception:  # noqa: BLE001 - any import failure means "not usable here"
            continue
        found.append(name)
    return found


def backend_version(name: str) -> str:
    package = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime", "tensorflow": "tensorflow"}[name]
    from importlib.metadata import PackageNotFoundError, version

    for candidate in (package, "tensorflow-cpu") if name == "tensorflow" else (package,):
        try:
            return version(candidate)
        except PackageNotFoundError:
            continue
    return "unknown"


def _select(backend: str | None):
    if backend is not None:
        if backend not in BACKENDS:
            raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        try:
            return backend, _import_backend(backend)
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"backend {backend!r} is not usable here: {type(exc).__name__}: {exc}") from None
    errors = []
    for name in BACKENDS:
        try:
            return name, _import_backend(name)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise BackendError(
        "no TFLite interpreter found; install one: pip install ai-edge-litert "
        "(or tflite-runtime with numpy<2). Tried: " + "; ".join(errors)
    )


@dataclass
class TensorInfo:
    index: int
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> "TensorInfo":
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return cls(
            index=detail["index"],
            shape=tuple(int(v) for v in detail["shape"]),
            dtype=np.dtype(detail["dtype"]).name,
            scale=float(scale),
            zero_point=int(zero_point),
        )

    @property
    def quantized(self) -> bool:
        return self.dtype in ("int8", "uint8") and self.scale > 0


def quantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Float values -> the tensor's type, using the tensor's own scale and zero-point."""
    if not info.quantized:
        return values.astype(info.dtype, copy=False)
    limits = np.iinfo(info.dtype)
    q = np.rint(values / info.scale + info.zero_point)
    return np.clip(q, limits.min, limits.max).astype(info.dtype)


def dequantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    if not info.quantized:
        return values.astype(np.float32, copy=False)
    return ((values.astype(np.float32) - info.zero_point) * info.scale).astype(np.float32)


@contextlib.contextmanager
def native_stderr():
    """Catch what the interpreter's C++ code writes to fd 2 while a model is opened: its INFO lines
    ("Created TensorFlow Lite XNNPACK delegate") are dropped, anything else is passed on, and the
    caller may read the lines to explain a failure."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:

        def said() -> list[str]:
            sink.seek(0)
            return [line for line in sink.read().decode(errors="replace").splitlines() if line.strip()]

        os.dup2(sink.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            for line in said():
                if not line.startswith("INFO:"):
                    print(line, file=sys.stderr)


class Runner:
    """A TFLite model ready to run on float batches: `run(x) -> float outputs`.

    The batch dimension is resized on demand; the last size is kept so that a stream of
    equal batches allocates once.
    """

    def __init__(self, model_bytes: bytes, backend: str | None = None, num_threads: int | None = None):
        self.backend, interpreter_cls = _select(backend)
        self.backend_version = backend_version(self.backend)
        with native_stderr() as said:
            try:
                self._interpreter = interpreter_cls(model_content=model_bytes, num_threads=num_threads)
                self._interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                detail = " ".join(line for line in said() if not line.startswith("INFO:"))[:500]
                raise BackendError(f"{self.backend} cannot open the model: {exc} {detail}".strip()) from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError(f"expected a model with one input and one output, got {len(inputs)} and {len(outputs)}")
        self.input = TensorInfo.from_detail(inputs[0])
        self.output = TensorInfo.from_detail(outputs[0])
        self._batch = self.input.shape[0]

    def _resize(self, batch: int) -> None:
        shape = list(self.input.shape)
        shape[0] = batch
        self._interpreter.resize_tensor_input(self.input.index, shape)
        self._interpreter.allocate_tensors()
        self._batch = batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run float inputs (already normalised) through the model and return float outputs."""
        return self.run_raw(quantize(batch, self.input))

    def run_raw(self, batch: np.ndarray) -> np.ndarray:
        """Run inputs already in the input tensor's type; return float outputs."""
        if batch.shape[1:] != self.input.shape[1:] or batch.dtype != np.dtype(self.input.dtype):
            raise ValueError(
                f"input batch is {batch.dtype}{list(batch.shape)}, model takes {self.input.dtype}[N, {', '.join(map(str, self.input.shape[1:]))}]"
            )
        if batch.shape[0] != self._batch:
            self._resize(batch.shape[0])
        self._interpreter.set_tensor(self.input.index, batch)
        self._interpreter.invoke()
        return dequantize(self._interpreter.get_tensor(self.output.index), self.output)
