"""The tensors a served model takes and gives, as the KServe v2 protocol and Triton's config name
them: one contract for `serve` (serving/protocol.py, serving/server.py) and the Triton repository
`triton` writes (serving/triton_repo.py), so one client works against both."""

from __future__ import annotations

from alexnet_export.models.spec import Preprocessing

# The tensors' type in the KServe v2 protocol; Triton's config spells it TYPE_FP32. The local server
# (serving/server.py) uses the same names, types and dims, so one client works against both.
DATATYPE = "FP32"
# The input's protocol type by the numpy dtype a file takes (Preprocessing.input_dtype): a pixel
# file's clients send UINT8.
INPUT_DATATYPES = {"float32": "FP32", "uint8": "UINT8"}


def input_tensor(preprocessing: Preprocessing) -> tuple[str, str, tuple[int, int, int]]:
    """The input's protocol datatype, Triton format and per-image dims for a file's preprocessing."""
    return (INPUT_DATATYPES[preprocessing.input_dtype], "FORMAT_NHWC" if preprocessing.takes_pixels else "FORMAT_NCHW",
            preprocessing.input_dims)


def warmup_sizes(max_batch: int, preferred: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The batch sizes to run once before serving: 1, the preferred sizes and the largest. The first
    run at a size pays for the allocations (ONNX Runtime's arena, TensorRT's per-shape setup)."""
    return tuple(sorted({1, *preferred, max_batch}))
