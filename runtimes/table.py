"""The one table of backends, the only place that knows every file kind: its suffixes, companion
files, runtime class and options, the extra that runs it, the exporter package that makes it, and
whether `verify --on aarch64` runs it.

Everything that picks a runtime for a file (the CLI, bench, serve, the Triton repository, signing,
`verify --on aarch64`, the help texts) asks this table; adding a backend is a row here and its two
packages (exporter/<name>/, runtimes/<name>/). Opening a file is runtimes/registry.py's job, which
verifies a signature first; this module imports nothing that opens or verifies, so signing can read
the table without a circle. Runtime classes and exporter packages are named as strings and imported
when used, so importing this module imports neither torch nor any backend's library.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from alexnet_export.errors import ModelArgumentError, OptionError
from alexnet_export.models import precisions as rows
from alexnet_export.models.precisions import (BF16, FP16, FP32, INT4, INT8_CPU, INT8_EXECUTORCH, INT8_LITERT,
                                              INT8_OPENVINO, INT8_TENSORRT, Precision, PrecisionError)
from alexnet_export.models.spec import CHECKPOINT_SUFFIXES
from alexnet_export.runtimes.base import Runtime


@dataclass(frozen=True)
class Backend:
    name: str  # "onnx", "checkpoint", "engine", "openvino", "executorch", "litert"
    description: str  # what its files are, for messages: "a PyTorch checkpoint"
    suffixes: tuple[str, ...]  # lower case, with the dot
    runtime: str  # "module:Class", imported when a file is opened
    options: frozenset[str]  # the keyword options its runtime takes (tests/runtimes/test_registry.py keeps them true)
    platform: str  # the platform it serves as, in Triton's words (the KServe v2 model metadata's "platform")
    # Files that belong to a model file, as patterns of its name: "{name}.data" (ONNX external
    # weights), "{stem}.bin" (an IR's weights), "{name}.json" (an engine's, a .pte's or a .tflite's sidecar).
    companions: tuple[str, ...] = ()
    extra: str | None = None  # the install extra its runtime needs (None: the light install runs it)
    # The package that makes its files (exporter/<name>/), whose face names the export call; None: the
    # file is made from another kind's (a .ort from an .onnx) or by the user (a checkpoint).
    exporter: str | None = None
    aarch64: bool = False  # `verify --on aarch64` runs it under emulation (bench/aarch64.py)
    # The precisions its exporter writes: (the word its command takes, the library's word), in order.
    # `trt --int8`, `openvino --precision int8` and `onnx --precision int8` each mean their own INT8.
    precisions: tuple[tuple[str, str], ...] = ()

    def command_words(self) -> dict[str, str]:
        """Its command's precision words -> the library's: {"fp32": "fp32", "int8": "int8-cpu", ...}."""
        return dict(self.precisions)

    def words(self) -> tuple[str, ...]:
        """The library's words for the precisions its files carry, in order."""
        return tuple(word for _, word in self.precisions)

    def command_word(self, word: str) -> str:
        """The word its command takes for the library's `word` (the inverse of command_words)."""
        return next(command for command, library in self.precisions if library == word)

    def precision(self, word: str, *, argument: str = "precision") -> Precision:
        """The precision row for `word`; PrecisionError when this kind's exporter does not write it."""
        if word not in self.words():
            raise PrecisionError(f"precision {word!r} is unknown for {self.name} files; expected one of"
                                 f" {', '.join(self.words())}", argument=argument)
        return rows.precision(word)

    def companion_paths(self, path: str | Path) -> list[Path]:
        """Where the companions of `path` lie, whether or not they exist: the one rule for their names."""
        path = Path(path)
        return [path.with_name(pattern.format(name=path.name, stem=path.stem)) for pattern in self.companions]

    def files(self, path: str | Path) -> list[Path]:
        """`path` and those of its companion files that exist."""
        return [Path(path), *(companion for companion in self.companion_paths(path) if companion.is_file())]

    @property
    def kind(self) -> str:
        """What its files are, with their suffixes, for messages: "an ONNX model (.onnx)"."""
        return f"{self.description} ({', '.join(self.suffixes)})"

    def takes(self, option: str) -> bool:
        return option in self.options

    def taken(self, **options) -> dict:
        """The `options` this backend takes, for settings that apply only where they do (e.g. threads)."""
        return {name: value for name, value in options.items() if self.takes(name)}

    def check_options(self, path: str | Path, options) -> None:
        """OptionError for an option in `options` this backend does not take (reads no file)."""
        for option in options:
            if not self.takes(option):
                raise OptionError(f"option {option!r} does not apply to {Path(path).name}, {self.description};"
                                  f" it takes {', '.join(sorted(self.options))}", argument=option)

    def runtime_class(self) -> type[Runtime]:
        module, name = self.runtime.split(":")
        return getattr(import_module(module), name)


_ONNX_RUNTIME_OPTIONS = frozenset({"providers", "threads", "spinning", "session_options", "tensorrt_cache_dir", "tf32",
                                   "enable_cuda_graph"})
ONNX = Backend(
    "onnx", "an ONNX model", (".onnx",), "alexnet_export.runtimes.onnx.runtime:OnnxRuntime", _ONNX_RUNTIME_OPTIONS,
    "onnxruntime_onnx", ("{name}.data",), exporter="alexnet_export.exporter.onnx", aarch64=True,
    precisions=(("fp32", FP32), ("fp16", FP16), ("int8", INT8_CPU), ("int8-tensorrt", INT8_TENSORRT), ("int4", INT4)))
# ONNX Runtime's own format (flatbuffers, what ONNX Runtime Mobile loads): the same runtime, but no
# protobuf to read, no external data, and not a file Triton's ONNX backend is given.
ORT_FORMAT = Backend(
    "ort", "an ONNX Runtime format model", (".ort",), "alexnet_export.runtimes.onnx.runtime:OnnxRuntime",
    _ONNX_RUNTIME_OPTIONS, "onnxruntime_onnx", ("{stem}.required_operators.config",), aarch64=True)
CHECKPOINT = Backend(
    "checkpoint", "a PyTorch checkpoint", CHECKPOINT_SUFFIXES, "alexnet_export.runtimes.torch.runtime:TorchRuntime",
    frozenset({"num_classes", "seed", "labels", "threads", "device", "dtype", "channels_last", "tf32"}), "pytorch",
    extra="export")
ENGINE = Backend(
    "engine", "a TensorRT engine", (".engine", ".plan"), "alexnet_export.runtimes.tensorrt.runtime:TensorRTRuntime",
    frozenset({"device"}), "tensorrt_plan", ("{name}.json",), extra="trt", exporter="alexnet_export.exporter.tensorrt",
    precisions=(("fp32", FP32), ("fp16", FP16), ("int8", INT8_TENSORRT)))
OPENVINO = Backend(
    "openvino", "an OpenVINO IR", (".xml",), "alexnet_export.runtimes.openvino.runtime:OpenVinoRuntime",
    frozenset({"threads", "device"}), "openvino", ("{stem}.bin",), extra="openvino",
    exporter="alexnet_export.exporter.openvino", precisions=(("fp32", FP32), ("bf16", BF16), ("int8", INT8_OPENVINO)))
# No Triton backend runs .pte files; "executorch" is the platform `serve` reports for them.
EXECUTORCH = Backend(
    "executorch", "an ExecuTorch program", (".pte",), "alexnet_export.runtimes.executorch.runtime:ExecuTorchRuntime",
    frozenset({"threads"}), "executorch", ("{name}.json",), extra="executorch",
    exporter="alexnet_export.exporter.executorch", aarch64=True, precisions=(("fp32", FP32), ("int8", INT8_EXECUTORCH)))
# LiteRT (.tflite): Google's interpreter from ai-edge-litert; no Triton backend of NVIDIA's runs them.
LITERT = Backend(
    "litert", "a LiteRT model", (".tflite",), "alexnet_export.runtimes.litert.runtime:LiteRtRuntime",
    frozenset({"threads"}), "litert", ("{name}.json",), extra="litert", exporter="alexnet_export.exporter.litert",
    aarch64=True, precisions=(("fp32", FP32), ("fp16", FP16), ("int8", INT8_LITERT)))
# ncnn (.ncnn.param + .ncnn.bin): the runtime of ARM boards and many Android apps; no Triton backend runs it.
# Its INT8 is its own ("int8-<backend>", models/precisions.py `own_int8`).
NCNN = Backend(
    "ncnn", "an ncnn model", (".ncnn.param",), "alexnet_export.runtimes.ncnn.runtime:NcnnRuntime",
    frozenset({"threads", "spinning"}), "ncnn", ("{stem}.bin", "{name}.json"), extra="ncnn", exporter="alexnet_export.exporter.ncnn",
    aarch64=True, precisions=(("fp32", FP32), ("fp16", FP16), ("int8", "int8-ncnn")))
BACKENDS = (ONNX, ORT_FORMAT, CHECKPOINT, ENGINE, OPENVINO, EXECUTORCH, LITERT, NCNN)
KNOWN_SUFFIXES = tuple(suffix for backend in BACKENDS for suffix in backend.suffixes)


def backend_named(name: str) -> Backend:
    """The row called `name` ("onnx", "litert")."""
    return next(backend for backend in BACKENDS if backend.name == name)


def backend_for(path: str | Path) -> Backend:
    """The backend that runs `path`, by how its name ends (a suffix may hold two dots: ".ncnn.param");
    ModelArgumentError (a ModelLoadError) for a file no backend runs."""
    backend = _by_name(path)
    if backend is not None:
        return backend
    raise ModelArgumentError(
        f"don't know how to run {path}: suffix {Path(path).suffix or '(none)'!r};"
        f" expected one of {', '.join(KNOWN_SUFFIXES)}", argument="model"
    )


def is_model_file(path: str | Path) -> bool:
    """Whether some backend opens `path`, by its name (hidden files are not models)."""
    return not Path(path).name.startswith(".") and _by_name(path) is not None


def _by_name(path: str | Path) -> Backend | None:
    name = Path(path).name.lower()
    return next((backend for backend in BACKENDS if name.endswith(backend.suffixes)), None)


def file_kinds(backends=BACKENDS) -> str:
    """The kinds of file `backends` open, for help texts and messages: "an ONNX model (.onnx), ... or an
    OpenVINO IR (.xml)"."""
    kinds = [b.kind for b in backends]
    return ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]


def backends_taking(option: str) -> str:
    """Which files take `option`, for messages: "a PyTorch checkpoint (.pt, .pth, .safetensors)"."""
    return " or ".join(b.kind for b in BACKENDS if b.takes(option))
