"""What a `.tflite` file holds, read from its flatbuffer with the schema bindings ai-edge-litert ships
(`ai_edge_litert.schema_py_generated`): its operators by name, its input and output tensors, and
whether every operator is one of LiteRT's builtins (no STABLEHLO_* op, no CUSTOM op, no Flex op).

Reads the file without running it (no interpreter, no delegate), so the exporter checks a file
before it is put in place and the runtime refuses a foreign one with one line. No numpy at module
level, no torch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from alexnet_export.errors import MissingDependencyError, ModelLoadError, one_line
from alexnet_export.extras import import_extra
from alexnet_export.models.spec import CHANNELS, IMAGE_SIZE

NHWC, NCHW = "NHWC", "NCHW"
FILE_IDENTIFIER = b"TFL3"  # the schema's file_identifier, at bytes 4..8 of every .tflite
# Builtins that are StableHLO ops carried through, not LiteRT kernels: XNNPACK and most delegates
# take none of them.
NOT_BUILTIN_PREFIXES = ("STABLEHLO_",)


@dataclass(frozen=True)
class TensorFacts:
    name: str
    shape: tuple[int, ...]  # the static shape; -1 where the file's shape signature says dynamic
    dtype: str  # the schema's word: "FLOAT32", "INT8", "UINT8", ...
    scale: float | None = None  # per-tensor quantization of an integer tensor
    zero_point: int | None = None


@dataclass(frozen=True)
class TfliteFacts:
    operators: dict[str, int]  # "CONV_2D" -> count; "CUSTOM:Name" for custom ops
    inputs: tuple[TensorFacts, ...]
    outputs: tuple[TensorFacts, ...]
    subgraphs: int
    tensor_types: dict[str, int]  # "FLOAT32" -> how many tensors of the first subgraph have it

    @property
    def arithmetic(self) -> str:
        """What the weights say: "int8" (any INT8 tensor), "fp16" (FLOAT16 tensors: FP16 weights), else "fp32"."""
        if self.tensor_types.get("INT8"):
            return "int8"
        return "fp16" if self.tensor_types.get("FLOAT16") else "fp32"

    @property
    def not_builtin(self) -> dict[str, int]:
        """The operators that are not LiteRT builtins: STABLEHLO_*, CUSTOM (Flex ops are custom ops)."""
        return {name: count for name, count in self.operators.items()
                if name.startswith(NOT_BUILTIN_PREFIXES) or name.startswith("CUSTOM")}

    @property
    def layout(self) -> str | None:
        """NHWC or NCHW for a single image input of this toolkit's size, else None."""
        if len(self.inputs) != 1 or len(self.inputs[0].shape) != 4:
            return None
        shape = self.inputs[0].shape[1:]
        if shape == (IMAGE_SIZE, IMAGE_SIZE, CHANNELS):
            return NHWC
        if shape == (CHANNELS, IMAGE_SIZE, IMAGE_SIZE):
            return NCHW
        return None

    def describe_operators(self) -> str:
        return ", ".join(f"{name} x{count}" for name, count in sorted(self.operators.items()))


class LiteRtUnavailable(MissingDependencyError):
    """ai-edge-litert is not installed (an ImportError naming the extra)."""


def schema():
    return import_extra("ai_edge_litert.schema_py_generated", "reading a .tflite needs ai-edge-litert", LiteRtUnavailable)


def read_tflite_facts(path: str | Path) -> TfliteFacts:
    """The operators and tensors of the .tflite at `path`; ModelLoadError in one line for a file
    that is not a whole LiteRT flatbuffer."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    return facts_of(data, path.name)


def facts_of(data: bytes, name: str) -> TfliteFacts:
    s = schema()
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelLoadError(f"{name} is not a LiteRT (.tflite) flatbuffer: no {FILE_IDENTIFIER.decode()} identifier"
                             " at byte 4; expected a file written by a LiteRT converter")
    try:
        return _read(s, s.Model.GetRootAs(data, 0))
    except ModelLoadError:
        raise
    except Exception as exc:  # a truncated or damaged buffer: flatbuffers reads past its end
        raise ModelLoadError(f"{name} is damaged or truncated ({len(data)} bytes): its flatbuffer cannot be read"
                             f" ({one_line(exc, 120)})") from None


def _read(s, model) -> TfliteFacts:
    if model.SubgraphsLength() < 1:
        raise ModelLoadError("the .tflite has no subgraph")
    names = {value: key for key, value in vars(s.BuiltinOperator).items() if not key.startswith("_")}
    types = {value: key for key, value in vars(s.TensorType).items() if not key.startswith("_")}
    graph = model.Subgraphs(0)
    operators: Counter[str] = Counter()
    for index in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(index).OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the schema's two fields, see its comment
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if builtin == s.BuiltinOperator.CUSTOM:
            name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
        operators[name] += 1

    def tensor(index: int) -> TensorFacts:
        t = graph.Tensors(index)
        shape = tuple(int(v) for v in (t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()))
        quantization = t.Quantization()
        scale = zero = None
        if quantization is not None and quantization.ScaleLength() == 1:
            scale, zero = float(quantization.Scale(0)), int(quantization.ZeroPoint(0))
        return TensorFacts((t.Name() or b"").decode(errors="replace"), shape, types.get(t.Type(), str(t.Type())),
                           scale, zero)

    inputs = tuple(tensor(graph.Inputs(i)) for i in range(graph.InputsLength()))
    outputs = tuple(tensor(graph.Outputs(i)) for i in range(graph.OutputsLength()))
    kinds = Counter(types.get(graph.Tensors(i).Type(), "OTHER") for i in range(graph.TensorsLength()))
    return TfliteFacts(dict(operators), inputs, outputs, model.SubgraphsLength(), dict(kinds))
