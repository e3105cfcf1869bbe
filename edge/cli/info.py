"""`nv-edge info [MODEL]`: a bundle's manifest and the model's real tensors, as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge.cli.classify import open_model
from edge.model.interpreter import BACKENDS


def add_arguments(i: argparse.ArgumentParser) -> None:
    i.add_argument("model", type=Path, nargs="?", help="model bundle (.nvm); default: the shipped model")
    i.add_argument("--backend", choices=tuple(BACKENDS))


def run(args: argparse.Namespace) -> int:
    model = open_model(args.model, args.backend, None, task=None)
    info = {
        "path": str(model.path),
        "backend": f"{model.runner.backend} {model.runner.backend_version}",
        "input_tensor": {"shape": list(model.runner.input.shape), "dtype": model.runner.input.dtype,
                         "scale": model.runner.input.scale, "zero_point": model.runner.input.zero_point},
        "output_tensor": {"shape": list(model.runner.output.shape), "dtype": model.runner.output.dtype},
        "manifest": json.loads(model.manifest.to_json()),
    }
    print(json.dumps(info, indent=2))
    return 0
