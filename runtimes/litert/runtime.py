"""LiteRT backend: runs a `.tflite` made by `alexnet-export litert`, with its sidecar, through Google's
interpreter (`ai-edge-litert`, the `litert` extra; no torch, no TensorFlow).

The toolkit's files take NHWC input (an app's image layout; NCHW would add TRANSPOSE ops, 2 in FP32
and 2 more in INT8, docs/litert.md) at a fixed batch, and an INT8 file takes and gives INT8 tensors; `predict`
takes the toolkit's float32 NCHW batch whatever the file's layout and dtype, and does the
transpose and the (de)quantization here, from what the flatbuffer says. Labels, preprocessing,
precision and the batch are in `<name>.tflite.json` (runtimes/sidecar.py), which the
registry names as the file's companion, so signing covers it. The interpreter applies the
XNNPACK delegate by default, as on a phone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alexnet_export.errors import InferenceError, ModelLoadError, one_line
from alexnet_export.extras import import_extra
from alexnet_export.quiet import captured_stderr
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.runtimes import sidecar as sidecars
from alexnet_export.runtimes.sidecar import Sidecar, SidecarRule
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.litert.reader import NHWC, LiteRtUnavailable, TfliteFacts, read_tflite_facts

SIDECAR = SidecarRule(1, "a .tflite carries no labels or preprocessing of ours, and loads only with the sidecar"
                      " written beside it", "export it again with `alexnet-export litert`", size_key="tflite_bytes",
                      precisions_of="litert")
_DTYPES = {"FLOAT32": np.float32, "INT8": np.int8}


def import_interpreter():
    """ai_edge_litert.interpreter.Interpreter, or one line naming the extra that installs it."""
    return import_extra("ai_edge_litert.interpreter", "LiteRT is not installed", LiteRtUnavailable).Interpreter


def litert_version() -> str:
    from importlib.metadata import version

    return version("ai-edge-litert")


def read_sidecar(path: str | Path) -> Sidecar:
    return sidecars.read_sidecar(path, SIDECAR)


def check_facts(facts: TfliteFacts, sidecar: Sidecar, name: str) -> None:
    """ModelLoadError when the file is not one this runtime feeds: one image input of 224 x 224 x 3
    (NHWC or NCHW) in float32 or INT8 at the sidecar's batch, one logits output, the sidecar's
    layout, and the arithmetic its precision says."""
    expected = ("expected one (N, 224, 224, 3) or (N, 3, 224, 224) float32 or int8 input and one (N, classes)"
                " output, as `alexnet-export litert` writes")
    if len(facts.inputs) != 1 or len(facts.outputs) != 1:
        raise ModelLoadError(f"{name} has {len(facts.inputs)} inputs and {len(facts.outputs)} outputs; {expected}")
    tensor, output = facts.inputs[0], facts.outputs[0]
    if facts.layout is None or tensor.dtype not in _DTYPES or output.dtype not in _DTYPES or len(output.shape) != 2:
        raise ModelLoadError(f"{name} takes {tensor.dtype} {list(tensor.shape)} and gives {output.dtype}"
                             f" {list(output.shape)}; {expected}")
    bounds = sidecar.batch
    if tensor.shape[0] != bounds.maximum or bounds.minimum != bounds.maximum:
        raise ModelLoadError(f"{name} takes a batch of {tensor.shape[0]} but its sidecar says {bounds.describe()};"
                             " the two are not one export")
    if sidecar.get("layout", facts.layout) != facts.layout:
        raise ModelLoadError(f"{name} takes {facts.layout} input but its sidecar says {sidecar['layout']}")
    said = "int8" if precision_row(sidecar.precision).is_int8 else sidecar.precision
    if said != facts.arithmetic:
        raise ModelLoadError(f"{name} holds {facts.arithmetic} weights but its sidecar says {sidecar.precision};"
                             " the two are not one export")


class LiteRtRuntime(Runtime):
    """Run a .tflite on the CPU with LiteRT's interpreter (XNNPACK delegate, builtin kernels).

    threads: the interpreter's thread count (None: LiteRT's default). Calls are serialised: an
    interpreter owns one set of input and output tensors, so two threads at once would overwrite
    each other's batch (open one runtime per thread for parallel calls).
    """

    serialised = True
    backend = "LiteRT"

    def __init__(self, path: str | Path, *, threads: int | None = None):
        super().__init__(path)
        sidecar = read_sidecar(self.path)
        facts = read_tflite_facts(self.path)
        check_facts(facts, sidecar, self.path.name)
        Interpreter = import_interpreter()
        try:  # LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate" on every load: not the user's concern
            with captured_stderr():
                self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except Exception as exc:  # the bindings raise ValueError/RuntimeError with LiteRT's message
            raise ModelLoadError(f"LiteRT cannot load {self.path}: {one_line(exc, 400)}") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        num_classes = int(facts.outputs[0].shape[1])
        try:
            self.metadata = ArtifactMetadata.from_props(sidecar.metadata, num_classes)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        self.layout = facts.layout
        self.precision = sidecar.precision
        self.bounds = sidecar.batch
        self.device = f"LiteRT {litert_version()} interpreter, XNNPACK delegate (CPU, {threads or 'default'} threads)"

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.layout == NHWC:
            batch = batch.transpose(0, 2, 3, 1)  # a view: writing it into the input tensor transposes
        try:
            # Straight into the interpreter's input tensor: one pass over the batch, layout and quantization
            # included, where set_tensor would copy a converted copy again. The view is gone before
            # invoke(), which refuses to run while one is alive.
            _feed(self._interpreter.tensor(self._input["index"])(), batch, self._input)
            self._interpreter.invoke()
            logits = self._interpreter.get_tensor(self._output["index"])  # a copy: the caller owns it
        except Exception as exc:
            raise InferenceError(f"LiteRT failed on a batch of {len(batch)}: {one_line(exc, 400)}") from None
        return _dequantize(logits, self._output)

    def _close(self) -> None:
        self._interpreter = None


def _feed(tensor: np.ndarray, batch: np.ndarray, details: dict) -> None:
    """Write the float batch into the input tensor in its dtype: INT8 by its scale and zero point
    (nearest step, clipped to INT8's range), as the file's quantized input expects."""
    if details["dtype"] == np.float32:
        np.copyto(tensor, batch)
        return
    scale, zero_point = details["quantization"]
    np.copyto(tensor, np.clip(np.rint(batch / scale) + zero_point, -128, 127), casting="unsafe")


def _dequantize(logits: np.ndarray, details: dict) -> np.ndarray:
    if details["dtype"] == np.float32:
        return logits.astype(np.float32, copy=False)
    scale, zero_point = details["quantization"]
    return ((logits.astype(np.float32) - zero_point) * scale).astype(np.float32)
