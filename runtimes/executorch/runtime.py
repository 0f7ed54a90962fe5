"""ExecuTorch backend: runs a `.pte` program made by `alexnet-export executorch`, with its sidecar.

A `.pte` carries no metadata of ours, so labels, preprocessing, precision and the batch range it
was planned for are in `<name>.pte.json` beside it (the registry names it as a companion, so
signing covers it). Imports numpy only at module level; `executorch` (and through its Python
bindings, torch: the pip wheel links libtorch) loads when a runtime opens
(`pip install 'alexnet-export[executorch]'`). On a phone or board the same file runs in
ExecuTorch's C++ runtime with the XNNPACK backend linked in, no Python and no torch
(docs/executorch.md).
"""

from __future__ import annotations

import threading
from importlib import import_module
from pathlib import Path

import numpy as np

from alexnet_export.errors import InferenceError, MissingDependencyError, ModelLoadError, one_line
from alexnet_export.extras import import_extra
from alexnet_export.models.precisions import EXECUTORCH_FORMAT
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.runtimes import sidecar as model_sidecar
from alexnet_export.runtimes.base import Runtime

METHOD = "forward"
BYTES_KEY = "pte_bytes"


class ExecuTorchUnavailable(MissingDependencyError):
    """executorch (or its Python bindings) is not installed (an ImportError naming the extra)."""


def import_executorch():
    """The `executorch` package, or one line naming the extra that installs it."""
    # The Python bindings are the part that fails without the wheel's libraries.
    import_extra("executorch.runtime", "ExecuTorch is not installed", ExecuTorchUnavailable)
    return import_module("executorch")


def executorch_version() -> str:
    from importlib.metadata import version

    return version("executorch")


def sidecar_path(pte_path: str | Path) -> Path:
    return model_sidecar.sidecar_path(pte_path)


def new_sidecar(*, precision: str, batch: tuple[int, int], pte_bytes: int, pte_sha256: str, metadata: dict[str, str],
                delegation: dict, executorch: str) -> dict:
    """The sidecar of a new .pte, as JSON-ready data (runtimes/sidecar.py)."""
    return model_sidecar.new_sidecar(precision=precision, batch=batch, bytes_key=BYTES_KEY, size=pte_bytes,
                                     sha256=pte_sha256, metadata=metadata, executorch=executorch, delegation=delegation)


def read_sidecar(pte_path: str | Path) -> dict:
    """The sidecar beside `pte_path`, checked for what the runtime needs and that it belongs to this file."""
    return model_sidecar.read_sidecar(pte_path, fmt=EXECUTORCH_FORMAT, bytes_key=BYTES_KEY, command="executorch")


class ExecuTorchRuntime(Runtime):
    """Run a .pte on the CPU through ExecuTorch's Python bindings (XNNPACK delegate).

    threads: the XNNPACK thread pool's size (None: ExecuTorch's default, one per core). ExecuTorch
    has one pool per process, so this sets it for every ExecuTorch runtime in the process.
    Calls are serialised: a loaded method owns one set of planned buffers, so two threads at once
    would overwrite each other's activations.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"model file {self.path} does not exist or is not a file")
        sidecar = read_sidecar(self.path)
        import_executorch()
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime as Loader

        if threads is not None and threads != portable_lib._threadpool_get_thread_count():
            portable_lib._unsafe_reset_threadpool(threads)
        try:
            program = Loader.get().load_program(self.path)
            self._method = program.load_method(METHOD)
        except Exception as exc:  # the bindings raise RuntimeError with ExecuTorch's error code
            raise ModelLoadError(f"ExecuTorch cannot load {self.path}: {one_line(exc, 400)}") from None
        self._program = program  # the method's memory belongs to the program: keep it alive
        meta = self._method.metadata
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise ModelLoadError(f"{self.path} has {meta.num_inputs()} inputs and {meta.num_outputs()} outputs;"
                                 " expected one image input and one logits output")
        num_classes = meta.output_tensor_meta(0).sizes()[1]
        try:
            self.metadata = ArtifactMetadata.from_props(sidecar["metadata"], num_classes)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        self.precision = sidecar["precision"]
        self.bounds = sidecar["bounds"]
        self.device = (f"ExecuTorch {executorch_version()} XNNPACK (CPU,"
                       f" {portable_lib._threadpool_get_thread_count()} threads)")
        self._lock = threading.Lock()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if self._method is None:
            raise InferenceError(f"the ExecuTorch runtime for {self.path.name} is closed")
        try:
            with self._lock:  # outputs are copied out of the planned buffers on every call
                logits = self._method.execute([torch.from_numpy(np.ascontiguousarray(batch))])[0]
        except Exception as exc:
            raise InferenceError(f"ExecuTorch failed on a batch of {len(batch)}: {one_line(exc, 400)}") from None
        return logits.numpy().astype(np.float32, copy=False)

    def close(self) -> None:
        self._method = self._program = None
