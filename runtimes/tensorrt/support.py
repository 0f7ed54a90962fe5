"""TensorRT pieces shared by the engine build, the engine runtime and `inspect`: which builder
(TensorRT or TensorRT for RTX) and its lazy import, the GPU's identity read from the CUDA driver,
cuda-python's runtime bindings, and a logger that keeps TensorRT's messages instead of printing
them. Importing this module imports neither tensorrt nor cuda-python.
API: docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/,
docs.nvidia.com/deeplearning/tensorrt-rtx/latest/ and
nvidia.github.io/cuda-python/cuda-bindings/latest/module/runtime.html.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import importlib
import re
import sys
from dataclasses import dataclass

from alexnet_export.errors import AlexNetExportError, MissingDependencyError
from alexnet_export.events import Listener, Note, ignore
from alexnet_export.extras import install_hint
from alexnet_export.models.spec import INPUT_NAME

ENGINE_INPUT = INPUT_NAME
INSTALL_HINT = f"on a machine with an NVIDIA GPU run: {install_hint('trt')}"


class TensorRTUnavailable(AlexNetExportError, RuntimeError):
    """TensorRT cannot run here: no usable NVIDIA GPU or driver, a TensorRT too old, a builder
    word that names none; or (TensorRTNotInstalled) TensorRT or cuda-python is not installed."""


class TensorRTNotInstalled(MissingDependencyError, TensorRTUnavailable):
    """A builder's module or cuda-python is not installed: an ImportError naming the extra, and a
    TensorRTUnavailable (what callers that fall back without TensorRT catch)."""


@dataclass(frozen=True)
class Builder:
    """One of NVIDIA's two engine builders; their Python APIs are the same family."""

    name: str  # as NVIDIA writes it, and as sidecars record it
    word: str  # the API's and the CLI's word for it
    modules: tuple[str, ...]  # import names, tried in order
    install: str
    # TensorRT for RTX builds without a GPU for the compute capabilities it is given, and compiles
    # kernels on the GPU when an engine is loaded (docs.nvidia.com/deeplearning/tensorrt-rtx/latest/
    # inference-library/cpu-engines.html); TensorRT times kernels on the GPU it builds on.
    ahead_of_time: bool


TENSORRT = Builder("TensorRT", "tensorrt", ("tensorrt",), install_hint("trt"), False)
# NVIDIA's pages import tensorrt_rtx; the tensorrt-rtx wheels on PyPI (cu13 bindings) name it tensorrt_rtx_bindings.
TENSORRT_RTX = Builder("TensorRT for RTX", "tensorrt-rtx", ("tensorrt_rtx", "tensorrt_rtx_bindings"),
                       install_hint("tensorrt-rtx"), True)
BUILDERS = (TENSORRT, TENSORRT_RTX)
BUILDER_WORDS = tuple(builder.word for builder in BUILDERS)


def builder_named(word_or_name: str) -> Builder:
    """The builder called `word_or_name` ("tensorrt-rtx" or "TensorRT for RTX")."""
    for builder in BUILDERS:
        if word_or_name in (builder.word, builder.name):
            return builder
    raise TensorRTUnavailable(f"builder {word_or_name!r} is unknown; expected one of {', '.join(BUILDER_WORDS)}",
                              argument="builder")


def import_builder(builder: Builder):
    """The module of `builder`; TensorRTNotInstalled with its install command if it is missing."""
    for module in builder.modules:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise TensorRTNotInstalled(f"{builder.name} is not installed (no module {' or '.join(builder.modules)});"
                               f" {builder.install}")


def import_tensorrt(builder: str | None = None):
    """The builder named `builder` ("tensorrt", "tensorrt-rtx"); None: TensorRT (10 or newer) if it
    is installed, else TensorRT for RTX; TensorRTNotInstalled naming both if neither imports (an unknown
    `builder` or a TensorRT older than 10: TensorRTUnavailable)."""
    if builder is not None:
        chosen = builder_named(builder)
        trt = import_builder(chosen)
        return _check_new_enough(trt) if chosen is TENSORRT else trt
    try:
        import tensorrt as trt
    except ImportError as exc:
        try:
            return import_builder(TENSORRT_RTX)
        except TensorRTNotInstalled:
            raise TensorRTNotInstalled(
                f"TensorRT is not installed ({exc}), nor TensorRT for RTX ({', '.join(TENSORRT_RTX.modules)});"
                f" {INSTALL_HINT}, or anywhere, with or without a GPU: {TENSORRT_RTX.install}") from None
    return _check_new_enough(trt)


def _check_new_enough(trt):
    if major_version(trt.__version__) < 10:
        raise TensorRTUnavailable(f"TensorRT {trt.__version__} is too old (10 or newer needed); {INSTALL_HINT}")
    return trt


def builder_of(trt) -> Builder:
    return TENSORRT_RTX if trt.__name__.split(".")[0] in TENSORRT_RTX.modules else TENSORRT


def tensorrt_name(trt) -> str:
    """"TensorRT 10.9.0" or "TensorRT for RTX 1.7.1.116": their version numbers overlap in nothing else."""
    return f"{builder_of(trt).name} {trt.__version__}"


def major_version(version: str) -> int:
    return int(version.split(".")[0])


# The GPU, from the CUDA driver itself: no cuda-python and no TensorRT needed to learn that there
# is none, or which one it is (CUDA Driver API: cuInit, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute).
_CUDA_DRIVER = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
_ATTRIBUTE_CC_MAJOR, _ATTRIBUTE_CC_MINOR = 75, 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR/_MINOR (cuda.h)


@dataclass(frozen=True)
class Gpu:
    name: str  # "NVIDIA L4"
    compute_capability: str  # "8.9"

    def describe(self) -> str:
        return f"{self.name} (compute capability {self.compute_capability})"


def gpu_identity(device: int = 0) -> Gpu:
    """The CUDA device `device` as the driver reports it; TensorRTUnavailable, in one line, when
    there is no NVIDIA driver, no GPU, or no device `device`."""
    try:
        driver = ctypes.CDLL(_CUDA_DRIVER)
    except OSError:
        raise TensorRTUnavailable(f"no NVIDIA GPU here: the CUDA driver ({_CUDA_DRIVER}) is not installed") from None
    _driver_call(driver, driver.cuInit(0), "cuInit")
    count = ctypes.c_int(0)
    _driver_call(driver, driver.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    if not 0 <= device < count.value:
        raise TensorRTUnavailable(f"no CUDA device {device}: the driver sees {count.value} GPU(s)", argument="device")
    handle, name = ctypes.c_int(0), ctypes.create_string_buffer(256)
    _driver_call(driver, driver.cuDeviceGet(ctypes.byref(handle), device), "cuDeviceGet")
    _driver_call(driver, driver.cuDeviceGetName(name, len(name), handle), "cuDeviceGetName")
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    for value, attribute in ((major, _ATTRIBUTE_CC_MAJOR), (minor, _ATTRIBUTE_CC_MINOR)):
        _driver_call(driver, driver.cuDeviceGetAttribute(ctypes.byref(value), attribute, handle), "cuDeviceGetAttribute")
    return Gpu(name.value.decode("utf-8", "replace").strip(), f"{major.value}.{minor.value}")


def has_gpu() -> bool:
    """Whether the CUDA driver sees an NVIDIA GPU here."""
    try:
        gpu_identity()
    except TensorRTUnavailable:
        return False
    return True


def _driver_call(driver, status: int, call: str) -> None:
    if status != 0:  # CUDA_SUCCESS
        text = ctypes.c_char_p()
        driver.cuGetErrorName(status, ctypes.byref(text))
        reason = text.value.decode() if text.value else f"error {status}"
        raise TensorRTUnavailable(f"no usable NVIDIA GPU here: {call} failed with {reason}")


def import_cudart():
    """cuda-python's runtime bindings: `cuda.bindings.runtime` (12.6+) or `cuda.cudart` (older)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise TensorRTNotInstalled(f"cuda-python is not installed ({exc}); running an engine needs it:"
                                       f" {install_hint('trt')} (beside TensorRT for RTX: pip install"
                                       " 'cuda-python>=12')") from None
    return cudart


def cuda_call(cudart, result: tuple, call: str, error: type[Exception] = RuntimeError):
    """cuda-python calls return (cudaError_t, *values): raise `error` unless cudaSuccess."""
    status, *values = result
    if status != cudart.cudaError_t.cudaSuccess:
        raise error(f"{call} failed with {getattr(status, 'name', status)}")
    return values[0] if len(values) == 1 else tuple(values) or None


class TensorRTLog:
    """TensorRT's messages, kept rather than printed (library code never prints): warnings go to
    the listener of the work under way as Notes, errors are kept for the one-line error that
    reports the failure. One per module and process: TensorRT warns when builders and runtimes
    get different loggers."""

    def __init__(self, trt):
        self.listener: Listener = ignore
        self._errors: collections.deque[str] = collections.deque(maxlen=8)
        log = self

        class _Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)

            def log(self, severity, message):
                log.record(int(severity), str(message))

        self.logger = _Logger()

    def record(self, severity: int, message: str) -> None:
        text = " ".join(message.split())
        if severity <= 1:  # Severity.INTERNAL_ERROR, ERROR
            self._errors.append(text)
        elif severity == 2:  # Severity.WARNING
            self.listener(Note(f"TensorRT: {text}", warning=True))

    @contextlib.contextmanager
    def listening(self, on_event: Listener = ignore):
        """For a piece of work: forget old errors, send warnings to `on_event`, and to no one after."""
        self._errors.clear()
        self.listener = on_event
        try:
            yield self
        finally:
            self.listener = ignore

    def errors(self, limit: int = 400) -> str:
        """The errors since `listening` began, on one line, without the source-file prefixes TensorRT adds."""
        text = "; ".join(re.sub(r"^[\w./-]+\.cpp:\d+:\s*", "", error) for error in self._errors)
        return text[:limit] or "no message from TensorRT"


@functools.lru_cache(maxsize=None)
def _log_for(module_name: str) -> TensorRTLog:
    return TensorRTLog(sys.modules[module_name])


def tensorrt_log(trt) -> TensorRTLog:
    return _log_for(trt.__name__)
