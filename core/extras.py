"""Optional dependencies: which install extra brings each, and the one line that says so.

The package's own install is the light one an edge box or an app takes (numpy, ONNX Runtime,
Pillow, the server's small libraries): it runs files. Exporting them needs the `export` extra
(torch and the ONNX tooling); each other extra brings one backend or tool. This table is the
one place that knows which.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from alexnet_export.errors import MissingDependencyError

# Import name -> (distribution, extra). Modules of the export extra come first: they are
# what an install without it lacks most often.
EXTRA_OF = {
    "torch": ("torch", "export"),
    "onnx": ("onnx", "export"),
    "onnxscript": ("onnxscript", "export"),
    "onnxconverter_common": ("onnxconverter-common", "export"),
    "safetensors": ("safetensors", "export"),
    "openvino": ("openvino", "openvino"),
    "model_signing": ("model-signing", "signing"),
    "matplotlib": ("matplotlib", "bench"),
    "pyarrow": ("pyarrow", "batch"),
    "executorch": ("executorch", "executorch"),
    "tensorrt": ("tensorrt", "trt"),
    "cuda": ("cuda-python", "trt"),  # cuda-python's bindings, which running an engine needs
    "tensorrt_rtx": ("tensorrt-rtx", "tensorrt-rtx"),  # NVIDIA's name; the PyPI wheels install the next one
    "tensorrt_rtx_bindings": ("tensorrt-rtx", "tensorrt-rtx"),
    "ai_edge_litert": ("ai-edge-litert", "litert"),
    "litert_torch": ("litert-torch", "litert-export"),
    "ncnn": ("ncnn", "ncnn"),
    "ray": ("ray", "ray"),
}
EXPORT_MODULES = tuple(module for module, (_, extra) in EXTRA_OF.items() if extra == "export")


def install_hint(extra: str) -> str:
    return f"pip install 'alexnet-export[{extra}]'"


def import_extra(module: str, what: str, error: type[MissingDependencyError] = MissingDependencyError):
    """`module` imported; else `error`, in one line: "<what> (<why>); run: pip install ..." with the extra
    this table names for it."""
    parts = module.split(".")
    try:  # package by package, as `import a.b` does, so a missing package is named as itself
        return [import_module(".".join(parts[:end])) for end in range(1, len(parts) + 1)][-1]
    except ImportError as exc:
        raise error(f"{what} ({exc}); run: {install_hint(EXTRA_OF[module.split('.')[0]][1])}") from None


def missing_message(module: str, purpose: str) -> str | None:
    """"<purpose> needs torch, which is not installed here: pip install 'alexnet-export[export]'"
    for a module of the table (its top-level name), None for any other."""
    known = EXTRA_OF.get(module.split(".")[0])
    if known is None:
        return None
    distribution, extra = known
    return f"{purpose} needs {distribution}, which is not installed here: {install_hint(extra)}"


def require(*modules: str, purpose: str) -> None:
    """Raises MissingDependencyError, naming the extra, for the first of `modules` not installed.

    Checked by finding the module, not importing it, so a present torch costs nothing here."""
    for module in modules:
        if not _installed(module):
            raise MissingDependencyError(missing_message(module, purpose) or f"{purpose} needs {module}")


def require_export() -> None:
    """The export extra, checked where an export is first asked for (the exporter's package faces):
    one line naming it, where an import would fail deep inside torch or onnx."""
    require(*EXPORT_MODULES, purpose="exporting a model")


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a module set to None in sys.modules
        return False
