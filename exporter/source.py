"""Where a pipeline's model comes from: a checkpoint or seeded random weights (`ModelSource`), or an
FP32 .onnx the user already has; and the reference each precision file is verified against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.errors import ArgumentError
from alexnet_export.events import Listener, Note, Step, ignore
from alexnet_export.exporter.onnx.convert import ExportResult, export_onnx
from alexnet_export.models.spec import DEFAULT_NUM_CLASSES, ArtifactMetadata, default_labels
from alexnet_export.models.precisions import FP32
from alexnet_export.runtimes.base import Runtime


@dataclass(frozen=True)
class ModelSource:
    """Where the model comes from: a checkpoint, or seeded random weights when `weights` is None.

    num_classes: None reads it from the checkpoint (1000 for random weights).
    labels: class names, or a file with one per line (default: the names the checkpoint carries, else
    ImageNet's at 1000 classes and placeholders class_N, with a warning, otherwise).
    """

    weights: Path | None = None
    num_classes: int | None = None
    seed: int = 0
    labels: Path | Sequence[str] | None = None


@dataclass(frozen=True)
class ModelToExport:
    model: object  # the eager AlexNet (torch.nn.Module)
    metadata: ArtifactMetadata  # what its exported files will carry


def load_model(source: ModelSource = ModelSource(), *, on_event: Listener = ignore) -> ModelToExport:
    """The eager model and the metadata its files will carry. A checkpoint or labels that cannot work
    fail before any event, so that their error is a command's only line."""
    from alexnet_export.exporter.onnx.convert import tool_versions
    from alexnet_export.models.labels import read_labels_file
    from alexnet_export.models.weights import load_alexnet

    loaded = load_alexnet(source.weights, num_classes=source.num_classes, seed=source.seed)
    classes = loaded.model.num_classes
    if isinstance(source.labels, (str, Path)):
        names = read_labels_file(source.labels, classes)
    elif source.labels is not None:
        names = tuple(source.labels)
    else:
        names = loaded.labels  # those the checkpoint carries (None: it carries none)
    on_event(Step(f"loaded {'weights from ' + str(source.weights) if source.weights else 'random weights'}"))
    if loaded.random_init:
        on_event(Note(f"no weights given: this AlexNet has random weights (seed {source.seed}); "
                      "its predictions are meaningless.", warning=True))
    if source.labels is None:
        names = _labels_of(loaded, names, source, on_event)
    metadata = ArtifactMetadata(classes, names, loaded.source, tool_versions=tool_versions())
    return ModelToExport(loaded.model, metadata)


def _labels_of(loaded, carried: tuple[str, ...] | None, source: ModelSource, on_event: Listener) -> tuple[str, ...]:
    """The labels a checkpoint carries, else the defaults: said in one line where those are placeholders
    (a trained model of another class count than ImageNet's 1000)."""
    classes = loaded.model.num_classes
    if carried is not None:
        on_event(Note(f"labels: the {classes} class names {Path(source.weights).name} carries ({loaded.carried[0]!r})"))
        return carried
    if not loaded.random_init and classes != DEFAULT_NUM_CLASSES:
        on_event(Note(f"{Path(source.weights).name} has {classes} classes and carries no labels: the file will carry"
                      f" placeholder labels class_0..class_{classes - 1}; give the real ones with --labels FILE"
                      " (one name per line)", warning=True))
    return default_labels(classes)


def fp32_start(fp32_onnx: Path | None, source: ModelSource | None, export_path: Path, opset: int,
               on_event: Listener) -> tuple[Path, Runtime, ExportResult | None]:
    """The FP32 .onnx to convert from, the runtime to verify against, and the export's result:
    the given FP32 file as its own reference, or a fresh export to `export_path` and eager PyTorch."""
    if fp32_onnx is not None:
        return fp32_onnx, fp32_reference(fp32_onnx), None
    loaded = load_model(source or ModelSource(), on_event=on_event)
    result = export_onnx(loaded.model, export_path, loaded.metadata, opset=opset, on_event=on_event)
    return export_path, torch_reference(loaded.model), result


def fp32_reference(path: Path) -> Runtime:
    """The FP32 .onnx as the reference runtime (CPU, the verification setting), refusing other files."""
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime

    reference = OnnxRuntime(path, providers=["CPUExecutionProvider"])
    if reference.metadata.preprocessing.takes_pixels:
        raise ArgumentError(f"{path} takes uint8 pixels; give the float32 FP32 export (precision files are made"
                            " from it, and export_onnx_file(input_format=...) makes their pixel versions)",
                            argument="fp32_onnx")
    if reference.precision != FP32:
        raise ArgumentError(f"{path} is a {reference.precision} file; give the FP32 export, the precision"
                            " file is made from it", argument="fp32_onnx")
    return reference


def torch_reference(model) -> Runtime:
    from alexnet_export.runtimes.torch.runtime import TorchRuntime

    return TorchRuntime(model)
