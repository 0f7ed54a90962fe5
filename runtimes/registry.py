"""Pick the runtime for a model file by its suffix."""

from __future__ import annotations

from pathlib import Path

from alexnet_export.errors import ModelLoadError
from alexnet_export.models.spec import CHECKPOINT_SUFFIXES
from alexnet_export.runtimes.base import Runtime

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")
KNOWN_SUFFIXES = ONNX_SUFFIXES + CHECKPOINT_SUFFIXES + ENGINE_SUFFIXES
_KINDS = {
    **dict.fromkeys(ONNX_SUFFIXES, "onnx"),
    **dict.fromkeys(CHECKPOINT_SUFFIXES, "checkpoint"),
    **dict.fromkeys(ENGINE_SUFFIXES, "engine"),
}


def runtime_kind(path: str | Path) -> str | None:
    """"onnx", "checkpoint" or "engine" by suffix; None for files no runtime loads."""
    return _KINDS.get(Path(path).suffix.lower())


def open_runtime(path: str | Path, **options) -> Runtime:
    """OnnxRuntime for .onnx, TorchRuntime for checkpoints, TensorRTRuntime for engines."""
    kind = runtime_kind(path)
    if kind == "onnx":
        from alexnet_export.runtimes.onnx import OnnxRuntime

        return OnnxRuntime(path, **options)
    if kind == "checkpoint":
        from alexnet_export.runtimes.torch import TorchRuntime

        return TorchRuntime(path, **options)
    if kind == "engine":
        from alexnet_export.runtimes.tensorrt import TensorRTRuntime

        return TensorRTRuntime(path, **options)
    suffix = Path(path).suffix
    raise ModelLoadError(
        f"don't know how to run {path}: suffix {suffix or '(none)'!r}; expected one of {', '.join(KNOWN_SUFFIXES)}"
    )


def open_runtime_with_threads(path: str | Path, threads: int | None) -> Runtime:
    """`open_runtime` with `threads` intra-op threads where the backend takes them (None: its default).

    ONNX Runtime's threads stop spinning after each run: spinning keeps the cores busy and slows
    whatever shares the machine (other sessions, a server's event loop) for no gain between runs.
    """
    kind = runtime_kind(path)
    if kind == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return open_runtime(path, threads=threads, session_options=options)
    if kind == "checkpoint":
        return open_runtime(path, threads=threads)
    return open_runtime(path)
