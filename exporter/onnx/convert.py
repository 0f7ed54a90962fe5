"""The seed AlexNet -> one self-contained, self-describing, verified FP32 ONNX file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from alexnet_export import __version__
from alexnet_export.quiet import quiet
from alexnet_export.errors import ExportError, ParityError, one_line
from alexnet_export.events import Listener, Note, Step, Verified, ignore
from alexnet_export.atomic import atomic_output
from alexnet_export.runtimes.verification.layer_errors import first_divergence
from alexnet_export.exporter.rewrites.lrn import ONNX_TRANSLATIONS, with_native_lrn
from alexnet_export.exporter.rewrites.lrn_pooled import POOLED_LRN_OPS, pool_lrn_nodes
from alexnet_export.runtimes.verification.samples import synthetic_images
from alexnet_export.runtimes.verification.parity import ParityReport, compare_runtimes, enforce
from alexnet_export.models.precisions import FP32_GATE
from alexnet_export.models.alexnet import AlexNet
from alexnet_export.models.spec import IMAGE_DIMS, INPUT_NAME, LRN_KEY, OUTPUT_NAME, ArtifactMetadata, Preprocessing
from alexnet_export.runtimes.preprocess import preprocess_batch

DEFAULT_OPSET = 18
# The torch.export-based exporter targets opset 18 and newer; 23 is the newest that the
# supported onnx and ONNX Runtime releases all read.
SUPPORTED_OPSETS = range(18, 24)
# The plain chain we promise: anything else means the exporter decomposed or added something.
EXPECTED_OPS = {"Conv", "Relu", "MaxPool", "LRN", "Flatten", "Reshape", "Gemm"}
PROTOBUF_LIMIT = 2**31 - 1
VERIFY_BATCHES = (1, 8)
LRN_FORMS = ("native", "pooled")  # see exporter/rewrites/lrn_pooled.py: native for TensorRT, pooled for ONNX Runtime CPUs


@dataclass(frozen=True)
class ExportResult:
    path: Path
    size_bytes: int
    operators: tuple[str, ...]
    report: ParityReport | None


def export_onnx(
    model: AlexNet,
    output: str | Path,
    metadata: ArtifactMetadata,
    *,
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    verify: bool = True,
    lrn: str = "native",
    on_event: Listener = ignore,
) -> ExportResult:
    """Export, check, verify against eager and only then move the file to `output`.

    batch: None for a dynamic batch dimension, or a fixed batch size.
    lrn: "native" (one ONNX LRN node each) or "pooled" (the same formula in plain ops, faster on
    ONNX Runtime's CPU provider; TensorRT maps only the native node).
    A failed check or parity gate raises and leaves `output` as it was.
    """
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(f"opset {opset} is not supported; expected {SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    if batch is not None and batch < 1:
        raise ExportError(f"batch size {batch} is invalid; expected a positive integer or dynamic")
    if lrn not in LRN_FORMS:
        raise ExportError(f"LRN form {lrn!r} is unknown; expected one of {', '.join(LRN_FORMS)}")
    model = model.eval()
    started = time.perf_counter()
    on_event(Step(f"tracing the model with torch.export (opset {opset}, batch {batch or 'dynamic'})"))
    proto = build_onnx_proto(model, metadata, opset=opset, batch=batch, lrn=lrn)
    on_event(Step(f"traced and checked: {len(proto.graph.node)} nodes in {time.perf_counter() - started:.1f}s"))
    with atomic_output(output) as temporary:
        onnx.save_model(proto, str(temporary))
        report = None
        if verify:
            on_event(Step("verifying ONNX Runtime against eager PyTorch"))
            report = verify_onnx_file(model, temporary, batch, metadata.preprocessing)
        size = temporary.stat().st_size
    if report is None:
        on_event(Note("not verified: the file was not compared with eager PyTorch", warning=True))
    else:
        on_event(Verified("parity, eager PyTorch vs ONNX Runtime FP32 (CPU)", report))
    return ExportResult(Path(output), size, tuple(node.op_type for node in proto.graph.node), report)


def build_onnx_proto(
    model: AlexNet, metadata: ArtifactMetadata, *, opset: int, batch: int | None, lrn: str = "native"
) -> onnx.ModelProto:
    # torch.export specialises a dynamic dimension whose example size is 1, so trace with 2.
    example = torch.zeros(batch or 2, *IMAGE_DIMS)
    dynamic_shapes = None if batch else ({0: torch.export.Dim("batch", min=1)},)
    try:
        with quiet("torch.onnx"):
            program = torch.onnx.export(
                with_native_lrn(model),
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                custom_translation_table=ONNX_TRANSLATIONS,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed: {one_line(exc)}") from None
    proto = program.model_proto
    _strip_exporter_annotations(proto)
    check_graph(proto)  # the traced graph, before any rewrite: the native chain we promise
    if lrn == "pooled":
        pool_lrn_nodes(proto)
        check_graph(proto, lrn="pooled")
    _describe(proto, metadata, lrn)
    return proto


def check_graph(proto: onnx.ModelProto, lrn: str = "native") -> None:
    """The promises about the file: our op set, one file under 2 GB, valid for the checker."""
    allowed = EXPECTED_OPS if lrn == "native" else (EXPECTED_OPS - {"LRN"}) | POOLED_LRN_OPS
    unexpected = sorted({node.op_type for node in proto.graph.node} - allowed)
    if unexpected or proto.functions:
        raise ExportError(f"the exported graph has unexpected operators {unexpected or [f.name for f in proto.functions]}")
    if lrn == "native" and sum(1 for node in proto.graph.node if node.op_type == "LRN") != 2:
        raise ExportError("the exported graph does not have exactly two native LRN nodes")
    if proto.ByteSize() > PROTOBUF_LIMIT:
        raise ExportError(f"the model is {proto.ByteSize() / 2**30:.1f} GiB; a single-file ONNX must stay under 2 GiB")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {one_line(exc)}") from None


def verify_onnx_file(model: AlexNet, path: Path, batch: int | None, preprocessing: Preprocessing) -> ParityReport:
    """Eager vs ONNX Runtime (CPU) on photo-like images at batch 1 and 8 (or the fixed batch)."""
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime
    from alexnet_export.runtimes.torch.runtime import TorchRuntime

    sizes = (batch,) if batch else VERIFY_BATCHES
    images = synthetic_images(sum(sizes), seed=1234)
    inputs = preprocess_batch(images, preprocessing)
    batches, start = [], 0
    for size in sizes:
        batches.append(inputs[start : start + size])
        start += size
    candidate = OnnxRuntime(path, providers=["CPUExecutionProvider"])
    report = compare_runtimes(TorchRuntime(model), candidate, batches)
    try:
        return enforce(report, FP32_GATE, "the exported ONNX")
    except ParityError as exc:
        raise ParityError(f"{exc}; {first_divergence(model, path, batches[0])}", report) from None


def tool_versions() -> dict[str, str]:
    import onnxscript

    return {
        "alexnet-export": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
    }


def _describe(proto: onnx.ModelProto, metadata: ArtifactMetadata, lrn: str) -> None:
    del proto.metadata_props[:]
    for key, value in {**metadata.to_props(), LRN_KEY: lrn}.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "alexnet-export"
    proto.producer_version = __version__
    proto.doc_string = f"The seed AlexNet ({metadata.num_classes} classes), weights: {metadata.source_weights}"


def _strip_exporter_annotations(proto: onnx.ModelProto) -> None:
    """Drop the exporter's per-node debug metadata: stack traces with local paths, FX dumps."""
    graph = proto.graph
    for item in [*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        del item.metadata_props[:]
        item.doc_string = ""
    del graph.metadata_props[:]
