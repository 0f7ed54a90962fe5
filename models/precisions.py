"""The one table of precisions: what each precision word means, everywhere in the toolkit.

A row says how a file in that precision is named, which gate it must pass against its FP32
reference, whether it is calibrated on images, and what OpenVINO and TensorRT/Triton call it.
Which file kinds carry it, and the word each kind's command takes for it, is the backend table's
(runtimes/table.py `Backend.precisions`). Code that needs any of these asks the table; adding a
precision is adding a row (and the step that makes it). A backend that quantizes with its own tool
names its INT8 "int8-<backend>" and needs no row here (`own_int8`).

No torch, no numpy: apps import this through models/spec.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from alexnet_export.errors import ArgumentError

# The words stored in a file's metadata and used by the library API.
FP32, FP16, BF16 = "fp32", "fp16", "bf16"
INT8_CPU, INT8_TENSORRT, INT8_OPENVINO = "int8-cpu", "int8-tensorrt", "int8-openvino"
INT8_EXECUTORCH, INT8_LITERT = "int8-executorch", "int8-litert"
INT4 = "int4"
# A file quantized by another tool: its Q/DQ layout is unknown, so it is only "int8".
FOREIGN_INT8 = "int8"

OWN_INT8_PREFIX = "int8-"  # "int8-<backend>": INT8 made by that backend's own quantizer


class PrecisionError(ArgumentError):
    """A precision word that is unknown, or that the asked-for file kind cannot carry."""


@dataclass(frozen=True)
class ParityGate:
    """How close a file must stay to its reference's logits (runtimes/verification/parity.py measures)."""

    name: str
    min_cosine: float  # every input's cosine similarity
    min_top1: float  # agreement over decisive inputs, 0..1
    max_abs: float | None = None
    max_rel: float | None = None  # max abs error / max |reference logit|
    min_mean_cosine: float | None = None
    # Count top-1 agreement over the inputs with a clear FP32 margin (CLEAR_MARGIN) instead of the
    # decisive ones (runtimes/verification/parity.py): a rule that does not loosen as the file gets noisier.
    clear_margin_top1: bool = False


# The FP32 gate: 1e-4 absolute. The relative bound keeps it meaningful for models whose logits
# are tiny; a good export measures about 1e-6 of the logit scale (docs/precision.md: 1.2e-6).
FP32_GATE = ParityGate("fp32", min_cosine=0.9999, min_top1=1.0, max_abs=1e-4, max_rel=1e-5)
FP16_GATE = ParityGate("fp16", min_cosine=0.999, min_top1=0.99)
# BF16 keeps FP32's exponent and 8 bits of mantissa: near-lossless, so a tighter gate than FP16's.
BF16_GATE = ParityGate("bf16", min_cosine=0.9999, min_top1=0.995)
INT8_GATE = ParityGate("int8", min_cosine=0.98, min_top1=0.97, min_mean_cosine=0.99)
# A clear FP32 margin: the top-1 logit leads the second by at least this many standard deviations of
# the image's logits. It depends on the reference only, so a noisier file is judged on the same
# inputs. (The decisive rule counts margins above twice the file's own 95th-percentile error: a
# flip there needs an error past that percentile, so the rule passes a file that is noisy everywhere.)
CLEAR_MARGIN = 0.25
# INT4 weights (fc6-fc8, block-wise scales; exporter/onnx/int4.py): rounding 47 million weights to 16
# levels alone sets the logits' cosine to FP32 near 0.99 (measured 0.9926 mean, 0.992 min on the
# seeded 1000-class model), so the cosine bounds sit below INT8's. Its top-1 is counted over clear
# margins: the seeded models keep 97-100% of those answers, a checkpoint with one outlier input in each
# MatMulNBits block of fc7 88-92% at a passing cosine (docs/precision.md, tests/exporter/test_int4.py).
INT4_GATE = ParityGate("int4", min_cosine=0.97, min_top1=0.95, min_mean_cosine=0.98, clear_margin_top1=True)


@dataclass(frozen=True)
class Precision:
    word: str  # the library's word, stored in the file's metadata
    name_part: str  # in default file names: alexnet.<part>.onnx ("" for FP32)
    gate: ParityGate
    calibrated: bool  # made from calibration images (INT8)
    openvino_hint: str | None = None  # INFERENCE_PRECISION_HINT the IR compiles with
    tensorrt_mode: str = "FP32"  # Triton's TensorRT accelerator precision_mode for an ONNX in it
    summary: str = ""

    @property
    def is_int8(self) -> bool:
        return self.gate is INT8_GATE


PRECISIONS: tuple[Precision, ...] = (
    Precision(FP32, "", FP32_GATE, False, "f32", "FP32",
              "float32 throughout"),
    Precision(FP16, "fp16", FP16_GATE, False, None, "FP16",
              "FP16 Conv/Gemm, FP32 inputs, outputs and LRN (a .tflite: FP16 weights, which LiteRT's CPU kernels"
              " widen to FP32 when it loads)"),
    Precision(BF16, "bf16", BF16_GATE, False, "bf16", "FP32",
              "an FP32 IR that OpenVINO runs in BF16 (CPUs with AVX512_BF16 or AMX)"),
    Precision(INT8_CPU, "int8-cpu", INT8_GATE, True, None, "INT8",
              "UINT8 activations, INT8 per-channel weights, LRN as pooled float ops: ONNX Runtime's fast CPU INT8"),
    Precision(INT8_TENSORRT, "int8-tensorrt", INT8_GATE, True, None, "INT8",
              "TensorRT's Q/DQ rules: symmetric INT8, per-tensor activations, per-channel weights"),
    Precision(INT8_OPENVINO, "int8", INT8_GATE, True, "f32", "INT8",
              "TensorRT-rule Q/DQ as FakeQuantize, run by OpenVINO's CPU plugin in INT8"),
    Precision(INT8_EXECUTORCH, "int8", INT8_GATE, True, None, "INT8",
              "PyTorch's PT2E flow with XNNPACK's quantizer: symmetric INT8, per-channel weights, run by ExecuTorch's"
              " XNNPACK delegate"),
    Precision(INT8_LITERT, "int8", INT8_GATE, True, None, "INT8",
              "PT2E with litert-torch's quantizer: symmetric INT8 activations, per-channel weights, INT8 input and"
              " output tensors, run by LiteRT's XNNPACK delegate and builtin kernels"),
    Precision(INT4, "int4", INT4_GATE, False, None, "FP32",
              "INT4 block-wise weights for fc6-fc8 (ONNX Runtime's MatMulNBits), FP32 convolutions, pooled LRN:"
              " weight-only, no calibration images"),
    Precision(FOREIGN_INT8, "int8", INT8_GATE, True, None, "INT8",
              "quantized by another tool (read from the graph; never written by this toolkit)"),
)
_BY_WORD = {row.word: row for row in PRECISIONS}


def precision(word: str, *, argument: str = "precision") -> Precision:
    """The row for `word` (a backend's own "int8-<backend>" included); PrecisionError for an unknown word."""
    row = _BY_WORD.get(word) or own_int8(word)
    if row is None:
        raise PrecisionError(f"precision {word!r} is unknown; expected one of {', '.join(_BY_WORD)}",
                             argument=argument)
    return row


def own_int8(word: str) -> Precision | None:
    """The row of "int8-<backend>": INT8 weights and activations calibrated on images by that backend's
    own quantizer, held to the INT8 gate (what the backend's exporter says it stores); None for
    other words."""
    backend = word[len(OWN_INT8_PREFIX):] if word.startswith(OWN_INT8_PREFIX) else ""
    if not (backend.isascii() and backend.isalnum() and backend.islower()):
        return None
    return Precision(word, "int8", INT8_GATE, True, None, "INT8",
                     f"INT8 by the {backend} backend's own quantizer, calibrated on images")


def gate_for(word: str) -> ParityGate | None:
    """The gate a file reported as `word` is held to, whoever made it; None for an unknown word."""
    row = _BY_WORD.get(word) or own_int8(word)
    return row.gate if row is not None else None


def is_int8(word: str) -> bool:
    """Whether a file reported as `word` computes in INT8 (any flavour, foreign ones included)."""
    row = _BY_WORD.get(word) or own_int8(word)
    return row is not None and row.is_int8
