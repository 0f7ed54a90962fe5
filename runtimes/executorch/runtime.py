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

import contextlib
import re
from importlib import import_module
from pathlib import Path

import numpy as np

from alexnet_export.errors import InferenceError, MissingDependencyError, ModelLoadError, one_line
from alexnet_export.extras import import_extra
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.quiet import captured_stderr, quiet
from alexnet_export.runtimes import sidecar as sidecars
from alexnet_export.runtimes.sidecar import Sidecar, SidecarRule
from alexnet_export.runtimes.base import Runtime

METHOD = "forward"
SIDECAR = SidecarRule(1, "a .pte carries no labels or preprocessing of ours, and loads only with the sidecar written"
                      " beside it", "export it again with `alexnet-export executorch`", size_key="pte_bytes",
                      precisions_of="executorch")


class ExecuTorchUnavailable(MissingDependencyError):
    """executorch (or its Python bindings) is not installed (an ImportError naming the extra)."""


def import_executorch():
    """The `executorch` package, or one line naming the extra that installs it; quietly: importing it
    imports torchao, which logs a warning per kernel library this machine cannot load, and torch's
    pytree logs a deprecation about torchao's enums, none of it the user's concern."""
    with contextlib.suppress(ImportError):
        import torch  # noqa: F401  first: its logging setup, run at import, would undo quiet()'s levels
    with quiet("torch", "torchao", "executorch"):
        # The Python bindings are the part that fails without the wheel's libraries.
        import_extra("executorch.runtime", "ExecuTorch is not installed", ExecuTorchUnavailable)
    return import_module("executorch")


def check_program_header(path: Path) -> None:
    """ModelLoadError unless `path` starts like an ExecuTorch program: a flatbuffer whose file identifier
    (bytes 4 to 8) is "ET" and two digits. Checked before the bindings read it: ExecuTorch logs a wrong
    identifier's four bytes as text, and pybind11 aborts the process when they are not UTF-8."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not re.fullmatch(rb"ET\d\d", head[4:8]):
        raise ModelLoadError(f"ExecuTorch cannot load {path}: it is not an ExecuTorch program (its header has no"
                             " ExecuTorch identifier); the file is damaged or of another kind")


def executorch_version() -> str:
    from importlib.metadata import version

    return version("executorch")


def read_sidecar(pte_path: str | Path) -> Sidecar:
    """The sidecar beside `pte_path`, checked for what the runtime needs and that it belongs to this file."""
    return sidecars.read_sidecar(pte_path, SIDECAR)


class ExecuTorchRuntime(Runtime):
    """Run a .pte on the CPU through ExecuTorch's Python bindings (XNNPACK delegate).

    threads: the XNNPACK thread pool's size (None: ExecuTorch's default, one per core). ExecuTorch
    has one pool per process, so this sets it for every ExecuTorch runtime in the process.
    Calls are serialised: a loaded method owns one set of planned buffers, so two threads at once
    would overwrite each other's activations.
    Loading is quiet: what ExecuTorch logs as it loads is kept from stderr, and the line that says why
    a load failed goes into the ModelLoadError.
    """

    serialised = True
    backend = "ExecuTorch"

    def __init__(self, path: str | Path, *, threads: int | None = None):
        super().__init__(path)
        sidecar = read_sidecar(self.path)
        import_executorch()
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime as Loader

        check_program_header(self.path)
        failure = None
        with captured_stderr() as log:  # the CPU probe's lines on every load, the reason on a failed one
            try:
                if threads is not None and threads != portable_lib._threadpool_get_thread_count():
                    portable_lib._unsafe_reset_threadpool(threads)
                program = Loader.get().load_program(self.path)
                self._method = program.load_method(METHOD)
            except Exception as exc:  # the bindings raise RuntimeError with ExecuTorch's error code
                failure = exc
        if failure is not None:
            raise ModelLoadError(f"ExecuTorch cannot load {self.path}: {load_failure(failure, log.getvalue())}") from None
        self._program = program  # the method's memory belongs to the program: keep it alive
        meta = self._method.metadata
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise ModelLoadError(f"{self.path} has {meta.num_inputs()} inputs and {meta.num_outputs()} outputs;"
                                 " expected one image input and one logits output")
        num_classes = meta.output_tensor_meta(0).sizes()[1]
        try:
            self.metadata = ArtifactMetadata.from_props(sidecar.metadata, num_classes)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        self.precision = sidecar.precision
        self.bounds = sidecar.batch
        self.device = (f"ExecuTorch {executorch_version()} XNNPACK (CPU,"
                       f" {portable_lib._threadpool_get_thread_count()} threads)")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        try:
            # The checked batch is contiguous float32: torch views it without a copy. The bindings copy
            # the logits out of the planned buffers, so the caller owns what comes back.
            logits = self._method.execute([torch.from_numpy(batch)])[0]
        except Exception as exc:
            raise InferenceError(f"ExecuTorch failed on a batch of {len(batch)}: {one_line(exc, 400)}") from None
        return logits.numpy().astype(np.float32, copy=False)

    def _close(self) -> None:
        self._method = self._program = None


# ExecuTorch's log lines: "[program.cpp:184] Verification failed; ...". Its CPU probe logs on every load.
_LOG_LINE = re.compile(r"\[([^\]:]+):\d+\] (.+)")
_CHATTER = {"cpuinfo_utils.cpp"}


def load_failure(error: Exception, log: str) -> str:
    """Why a load failed, in one line: the first line ExecuTorch logged about it (what was wrong), then
    the bindings' error (which carries only an error code)."""
    for line in log.splitlines():
        found = _LOG_LINE.match(line.strip())
        if found and found.group(1) not in _CHATTER:
            return " ".join(f"{found.group(2)} ({one_line(error, 200)})".split())[:400]
    return one_line(error, 400)
