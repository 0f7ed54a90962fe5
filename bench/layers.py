"""`verify --per-layer`: where a precision file departs from its FP32 reference, layer by layer,
on the user's images (runtimes/verification/layer_errors.py measures, runtimes/verification/layers.py names the layers)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from alexnet_export.errors import ArgumentError
from alexnet_export.runtimes.verification.layer_errors import LayerReport, compare_layers, onnx_layers
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes.preprocess import preprocess_readable

Tick = Callable[[int], None]


def check_layer_files(model: Path, reference: Path) -> None:
    """Both files are .onnx, whose graphs the comparison reads: an ArgumentError naming the one that is not,
    before any work."""
    for path, role in ((model, "model"), (reference, "reference")):
        if Path(path).suffix.lower() != ".onnx":
            raise ArgumentError(f"per-layer comparison reads ONNX graphs; the {role} {path} is not an .onnx file",
                                argument=role)


def per_layer_errors(model: Path, reference: Path, paths, preprocessing: Preprocessing, batch_size: int = 32,
                     tick: Tick = lambda n: None) -> LayerReport:
    """Every layer of `model` against the same layer of `reference` (both .onnx) on the images
    at `paths`, read in batches; unreadable images are skipped (evaluate() reports them)."""
    check_layer_files(model, reference)

    def batches():
        for start in range(0, len(paths), batch_size):
            inputs, _, _ = preprocess_readable(paths[start : start + batch_size], preprocessing, tick)
            if len(inputs):
                yield inputs

    return compare_layers(onnx_layers(reference), onnx_layers(model), batches())
