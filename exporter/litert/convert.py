"""The eager AlexNet -> a verified LiteRT model (.tflite) in FP32, FP16 or INT8, builtin operators only.

litert-torch (Google's PyTorch -> LiteRT converter; no TensorFlow) converts the model rewritten by
exporter/rewrites/lrn_banded.py `for_litert`: LRN as a banded 1x1 convolution with exp/log (the converter
would write PyTorch's LRN as STABLEHLO_REDUCE_WINDOW, POW and DIV, which XNNPACK does not take), and
NHWC input (no TRANSPOSE ops). The batch is fixed: litert-torch 0.10 folds a dynamic batch into the
flatten's RESHAPE, and such a file fails in XNNPACK at any other batch. INT8 goes through PyTorch's
PT2E flow with litert-torch's quantizer (symmetric INT8, per-channel weights), calibrated on the
calibration images the ONNX INT8 files use; FP16 casts the FP32 file's weights to FP16 with
ai-edge-quantizer (`float_casting`). The file and its sidecar JSON (runtimes/litert/runtime.py) are
written in a hidden folder beside the target, its operators read from the flatbuffer, run by
LiteRT's interpreter against eager PyTorch with the precision's gate, and only then renamed in.

APIs: litert-torch 0.10 (litert_torch.convert, quantize.pt2e_quantizer, quantize.quant_config),
ai-edge-quantizer 0.10 (quantizer.Quantizer with a recipe), ai-edge-litert 2.3 (interpreter).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from alexnet_export.errors import ExportError, one_line
from alexnet_export.events import Listener, Note, Step, counter, ignore
from alexnet_export.models.precisions import FP16, precision as precision_row
from alexnet_export.models.spec import IMAGE_SIZE, CHANNELS, ArtifactMetadata
from alexnet_export.quiet import captured_stderr, quiet
from alexnet_export.exporter.verified import Gate, labelled_props, write_verified
from alexnet_export.runtimes.litert.runtime import SIDECAR, LiteRtRuntime, check_facts, read_sidecar
from alexnet_export.runtimes.sidecar import new_sidecar, sidecar_path, write_sidecar
from alexnet_export.runtimes.litert.reader import TfliteFacts, read_tflite_facts
from alexnet_export.runtimes.verification.parity import ParityReport

# ai-edge-quantizer's recipe for FP16 weights: Conv and FullyConnected weights stored as FLOAT16,
# DEQUANTIZE ops in front, arithmetic in FP32.
FP16_RECIPE = [{"regex": ".*", "operation": "*", "algorithm_key": "float_casting",
                "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                              "compute_precision": "FLOAT", "explicit_dequantize": True}}]


@dataclass(frozen=True)
class TfliteResult:
    path: Path
    sidecar: Path
    precision: str
    size_bytes: int
    batch: int
    layout: str
    operators: dict[str, int]  # read from the written flatbuffer
    report: ParityReport
    verified_on: str
    seconds: float = 0.0  # the whole export, set by exporter.command_litert.export_litert


def versions() -> dict[str, str]:
    return {name: version(name) for name in ("litert-torch", "ai-edge-litert")}


@contextmanager
def converter_quiet():
    """litert-torch prints its progress with rich unless LITERT_TORCH_SHOW_PROGRESS says no, and library
    code never prints: off while converting. TensorFlow's C++ log (oneDNN's notice when it loads, the
    converter's op count, absl's "log messages before InitializeLog" line) goes to file descriptor 2
    whatever TF_CPP_MIN_LOG_LEVEL says: captured, with the converter imported inside the block, while
    the toolkit's own progress still shows."""
    saved = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        with quiet("torch", "torchao", "litert_torch", "ai_edge_quantizer", "absl", "root"), \
                captured_stderr(native_only=True):
            yield
    finally:
        if saved is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved


def convert(model, precision: str, batch: int, calibration: np.ndarray | None = None,
            on_event: Listener = ignore) -> bytes:
    """The .tflite flatbuffer of the eager AlexNet `model` in `precision`, for a fixed `batch`.

    calibration: preprocessed NCHW images for an INT8 precision (observed `batch` at a time).
    """
    import torch

    from alexnet_export.exporter.rewrites.lrn_banded import for_litert

    example = (torch.zeros(batch, IMAGE_SIZE, IMAGE_SIZE, CHANNELS),)
    rewritten = for_litert(model)
    with converter_quiet():
        import litert_torch

        try:
            if precision_row(precision).calibrated:
                converted = _convert_int8(rewritten, example, calibration, on_event)
            else:
                on_event(Step(f"converting with litert-torch (batch {batch}, NHWC input)"))
                converted = litert_torch.convert(rewritten, example).model_content()
            if precision == FP16:
                converted = _fp16_weights(converted, on_event)
            return bytes(converted)
        except ExportError:
            raise
        except Exception as exc:  # torch.export, PT2E, the converter and the quantizer raise many types
            raise ExportError(f"LiteRT conversion failed: {one_line(exc, 400)}") from None


def _convert_int8(rewritten, example, images: np.ndarray, on_event: Listener) -> bytes:
    """PT2E: annotate with litert-torch's quantizer, observe the calibration images, convert, lower."""
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    batch = example[0].shape[0]
    on_event(Step(f"tracing the model with torch.export (batch {batch}, NHWC input)"))
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = prepare_pt2e(torch.export.export(rewritten, example).module(), quantizer)
    tick = counter(on_event, "calibrating (PT2E observers)", len(images))
    with torch.no_grad():
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
            prepared(torch.from_numpy(np.ascontiguousarray(padded.transpose(0, 2, 3, 1))))
            tick(len(chunk))
    on_event(Step("quantizing to INT8 (litert-torch's PT2E quantizer: symmetric, per-channel weights)"))
    quantized = convert_pt2e(prepared, fold_quantize=False)
    return litert_torch.convert(quantized, example, quant_config=QuantConfig(pt2e_quantizer=quantizer)).model_content()


def _fp16_weights(flatbuffer: bytes, on_event: Listener) -> bytes:
    from ai_edge_quantizer import quantizer

    on_event(Step("casting the weights to FP16 (ai-edge-quantizer float_casting)"))
    result = quantizer.Quantizer(bytearray(flatbuffer), FP16_RECIPE).quantize(enable_progress_report=False)
    return bytes(result.quantized_model)


def check_builtin(facts: TfliteFacts, name: str) -> None:
    """ExportError when the converted file holds an operator that is not a LiteRT builtin."""
    if facts.not_builtin:
        found = ", ".join(f"{op} x{count}" for op, count in sorted(facts.not_builtin.items()))
        raise ExportError(f"{name} would hold operators that are not LiteRT builtins ({found}); XNNPACK and the"
                          " GPU and NPU delegates take builtins only")


def write_verified_tflite(flatbuffer: bytes, output: Path, precision: str, metadata: ArtifactMetadata, reference,
                          inputs: np.ndarray, verified_on: str, *, batch: int, threads: int | None = None,
                          on_event: Listener = ignore) -> TfliteResult:
    """Write `flatbuffer` and its sidecar, check its operators, and put the pair in place once LiteRT's
    logits pass `precision`'s gate against `reference` on `inputs` (exporter/verified.py)."""
    def write_pair(staged: Path) -> TfliteFacts:
        on_event(Step(f"writing {output.name}"))
        staged.write_bytes(flatbuffer)
        facts = read_tflite_facts(staged)
        check_builtin(facts, output.name)
        on_event(Note(f"{output.name}: {sum(facts.operators.values())} builtin operators"
                      f" ({facts.describe_operators()})"))
        write_sidecar(staged, new_sidecar(
            SIDECAR, precision=precision, batch=(batch, batch), model_path=staged,
            metadata=labelled_props(metadata, precision, versions()), layout=facts.layout,
            operators=dict(sorted(facts.operators.items())), litert=versions()))
        check_facts(facts, read_sidecar(staged), output.name)
        return facts

    gate = Gate(reference, inputs, precision_row(precision).gate, verified_on)
    written = write_verified(output, write_pair, lambda staged: LiteRtRuntime(staged, threads=threads), gate,
                             what=f"{precision} LiteRT", failing=f"{output.name} ({precision})", on_event=on_event)
    facts = written.made
    return TfliteResult(output, sidecar_path(output), precision, written.size, batch, facts.layout,
                        dict(sorted(facts.operators.items())), written.report, verified_on)
