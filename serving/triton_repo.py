"""Write a Triton Inference Server model repository for exported models.

    repo/
      alexnet/            platform onnxruntime_onnx
        config.pbtxt
        labels.txt
        1/model.onnx
      alexnet_trt/        platform tensorrt_plan (an engine's model name ends in _trt)
        config.pbtxt
        labels.txt
        1/model.plan

A signed model (runtimes/signing/sign.py) keeps its own file names in the version folder, with its
companion files and its signature, since the signature names them: 1/alexnet.onnx and
1/alexnet.onnx.sig, and config.pbtxt names the file (default_model_filename), so
`alexnet-export verify-signature repo/` checks every model before a server starts from it.

config.pbtxt is written as text (no Triton packages needed); the tests parse every file into
Triton's own ModelConfig protobuf. Field reference: Triton's model_config.proto and the
"Model Configuration" page of its documentation.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alexnet_export.errors import AlexNetExportError, ArgumentError
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.models.spec import INPUT_NAME, OUTPUT_NAME, ArtifactMetadata
from alexnet_export.runtimes.table import ENGINE, ONNX, backend_for
from alexnet_export.runtimes.signing import model_files, signature_path
from alexnet_export.serving.tensors import DATATYPE, input_tensor, warmup_sizes

KINDS = ("cpu", "gpu")

class RepositoryError(AlexNetExportError, ValueError):
    """The repository cannot be written as asked."""


class RepositoryArgumentError(RepositoryError, ArgumentError):
    """Arguments that cannot work (options that do not fit together, a file that is no .onnx, a folder to
    create in one that does not exist, a model there already without force), found before anything is written."""


@dataclass(frozen=True)
class ServingOptions:
    max_batch: int = 32
    instances: int = 1
    kind: str = "cpu"
    preferred_batch: tuple[int, ...] = (8, 16)
    max_queue_delay_us: int = 100
    onnx_tensorrt: bool = False  # let Triton's ONNX Runtime backend use its TensorRT accelerator

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RepositoryArgumentError(f"instance kind {self.kind!r} is unknown; expected cpu or gpu",
                                          argument="kind")
        for name in ("max_batch", "instances"):
            if getattr(self, name) < 1:
                raise RepositoryArgumentError(f"{name} is {getattr(self, name)}; expected at least 1", argument=name)
        if self.max_queue_delay_us < 0:
            raise RepositoryArgumentError(f"max_queue_delay_us is {self.max_queue_delay_us}; expected 0 or more",
                                          argument="max_queue_delay_us")
        too_big = [size for size in self.preferred_batch if not 1 <= size <= self.max_batch]
        if too_big:
            raise RepositoryArgumentError(f"preferred batch sizes {too_big} must lie in 1..{self.max_batch}"
                                          " (max_batch)", argument="preferred_batch")
        if self.onnx_tensorrt and self.kind != "gpu":
            raise RepositoryArgumentError("the TensorRT accelerator (onnx_tensorrt) needs kind 'gpu'", argument="kind")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    folder: Path
    platform: str
    kind: str  # the instance group's device kind: "cpu" or "gpu"

    @property
    def needs_gpu(self) -> bool:
        """TensorRT engines run only on a GPU, whatever their instance kind says."""
        return self.kind == "gpu" or self.platform == ENGINE.platform


def model_name(path: Path, suffix: str = "") -> str:
    """A Triton model name from a file name: letters, digits, '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", path.stem) + suffix


def add_onnx(repo: Path, onnx_path: Path, options: ServingOptions, *, force: bool = False) -> ModelEntry:
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime

    if Path(onnx_path).suffix.lower() not in ONNX.suffixes:
        raise RepositoryArgumentError(f"{Path(onnx_path).name} is not an ONNX file; expected an .onnx",
                                      argument="onnx_path")
    name = model_name(onnx_path)
    _check_target(repo, name, force)
    runtime = OnnxRuntime(onnx_path, providers=["CPUExecutionProvider"])
    if runtime.bounds.maximum is not None:
        raise RepositoryError(f"{onnx_path} has a fixed batch of {runtime.bounds.maximum}; Triton batching needs an "
                              "export with a dynamic batch")
    accelerator = _tensorrt_accelerator(runtime.precision) if options.onnx_tensorrt else ""
    files, model_file = _version_files(onnx_path, "model.onnx")
    config = _config(name, ONNX.platform, runtime.metadata, options, accelerator, model_file)
    return _write_model(repo, name, ONNX.platform, options.kind, files, config, runtime.metadata.labels, force)


def add_engine(repo: Path, engine_path: Path, options: ServingOptions, *, force: bool = False) -> ModelEntry:
    from alexnet_export.runtimes.tensorrt.sidecar import builder_description, read_sidecar
    from alexnet_export.runtimes.tensorrt.support import TENSORRT

    if options.kind != "gpu":
        raise RepositoryArgumentError("a TensorRT engine runs on a GPU: use kind 'gpu'", argument="kind")
    name = model_name(engine_path, "_trt")
    _check_target(repo, name, force)
    sidecar = read_sidecar(engine_path)
    if sidecar["builder"]["name"] != TENSORRT.name:  # Triton's tensorrt_plan backend loads engines with TensorRT
        raise RepositoryError(f"{engine_path} was built by {builder_description(sidecar)}, whose engines Triton's"
                              " TensorRT backend cannot load; build one with `alexnet-export trt --builder tensorrt`",
                              argument="engine_path")
    if options.max_batch > sidecar.batch.maximum:
        raise RepositoryError(f"max_batch {options.max_batch} exceeds the engine's profile maximum "
                              f"{sidecar.batch.maximum}; rebuild it with a larger maximum batch", argument="max_batch")
    try:
        metadata = ArtifactMetadata.from_props(sidecar.metadata)
    except ValueError as exc:
        raise RepositoryError(f"{engine_path}: {exc}") from None
    files, model_file = _version_files(engine_path, "model.plan")
    config = _config(name, ENGINE.platform, metadata, options, "", model_file)
    return _write_model(repo, name, ENGINE.platform, options.kind, files, config, metadata.labels, force)


def _version_files(source: Path, default_name: str) -> tuple[dict[str, Path], str | None]:
    """The files of the version folder by name, and the model file's name when it is not Triton's
    default: a signed model keeps its names, with its companions and signature (the signature
    names them); an unsigned one becomes `default_name`, with an ONNX's external data under the
    name the ONNX reads it by (torch.onnx.export's default sidecar)."""
    signature = signature_path(source)
    if signature.is_file():
        return {**model_files(source), signature.name: signature}, source.name
    files = {default_name: source}
    if backend_for(source) is ONNX:  # its external data keeps the name the graph reads it by
        files.update({companion.name: companion for companion in ONNX.files(source)[1:]})
    return files, None


def _config(name: str, platform: str, metadata: ArtifactMetadata, options: ServingOptions, accelerator: str,
            model_file: str | None = None) -> str:
    preferred = ", ".join(map(str, options.preferred_batch))
    datatype, layout, dims = input_tensor(metadata.preprocessing)
    dims_text = ", ".join(map(str, dims))
    lines = [
        f'name: "{name}"',
        f'platform: "{platform}"',
        *([f'default_model_filename: "{model_file}"'] if model_file else []),
        f"max_batch_size: {options.max_batch}",
        f'input [ {{ name: "{INPUT_NAME}" data_type: TYPE_{datatype} format: {layout} dims: [ {dims_text} ] }} ]',
        f'output [ {{ name: "{OUTPUT_NAME}" data_type: TYPE_{DATATYPE} dims: [ {metadata.num_classes} ]'
        ' label_filename: "labels.txt" } ]',
        f"dynamic_batching {{ preferred_batch_size: [ {preferred} ] max_queue_delay_microseconds: {options.max_queue_delay_us} }}",
        f"instance_group [ {{ count: {options.instances} kind: KIND_{options.kind.upper()} }} ]",
    ]
    # Triton runs these (zeros) before it marks the model ready, as `serve` does (serving/server.py).
    warmups = [f'{{ name: "batch_{size}" batch_size: {size} inputs {{ key: "{INPUT_NAME}" value: {{'
               f" data_type: TYPE_{datatype} dims: [ {dims_text} ] zero_data: true }} }} }}"
               for size in warmup_sizes(options.max_batch, options.preferred_batch)]
    lines.append(f"model_warmup [ {', '.join(warmups)} ]")
    if accelerator:
        lines.append(accelerator)
    return "\n".join(lines) + "\n"


def _tensorrt_accelerator(precision: str) -> str:
    """Triton's TensorRT accelerator in the file's precision (INT8 for every INT8 flavour, foreign ones included)."""
    mode = precision_row(precision).tensorrt_mode
    return ("optimization { execution_accelerators { gpu_execution_accelerator : [ { name : \"tensorrt\" "
            f'parameters {{ key: "precision_mode" value: "{mode}" }} }} ] }} }}')


def _check_target(repo: Path, name: str, force: bool) -> None:
    """The model folder `name` can be written in `repo` (made if missing, in a folder that exists), before any
    model file is read."""
    if (repo / name).exists() and not force:
        raise RepositoryArgumentError(f"{repo / name} already exists; pass force=True to replace it", argument="force")
    if not Path(repo).parent.is_dir():
        raise RepositoryArgumentError(f"repository folder {repo}: its parent {Path(repo).parent} does not exist; create"
                                      " it first", argument="repo")


def _write_model(repo: Path, name, platform, kind, files: dict[str, Path], config, labels, force) -> ModelEntry:
    """Build the model folder beside its final place, then rename it in: never half a model."""
    folder = repo / name
    _check_target(repo, name, force)
    repo.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=repo))
    try:
        (staging / "1").mkdir()
        for file_name, source in files.items():
            shutil.copyfile(source, staging / "1" / file_name)
        (staging / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
        (staging / "config.pbtxt").write_text(config, encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RepositoryError(f"cannot write {folder}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ModelEntry(name, folder, platform, kind)


# The fields read back from a config.pbtxt, in protobuf text format (one or more spaces, either
# quote); enough for the repositories this module writes and for hand edits of them.
_PLATFORM = re.compile(r"""^\s*platform\s*:\s*["']([^"']+)["']""", re.M)
_KIND = re.compile(r"\bkind\s*:\s*KIND_(CPU|GPU)\b")


def read_repository(repo: Path) -> list[ModelEntry]:
    """The models of a Triton repository, by name: each folder with a config.pbtxt, its platform
    and its instance kind (gpu if any instance group is KIND_GPU). RepositoryError (argument
    `repo`) when there is no repository or no model in it, or a config lacks a platform."""
    repo = Path(repo)
    if not repo.is_dir():
        raise RepositoryError(f"{repo} is not a folder; write the repository first (add_onnx, add_engine)",
                              argument="repo")
    entries = []
    for config_path in sorted(repo.glob("*/config.pbtxt")):
        if config_path.parent.name.startswith("."):  # a model being staged by another writer
            continue
        text = config_path.read_text(encoding="utf-8", errors="replace")
        platform = _PLATFORM.search(text)
        if platform is None:
            raise RepositoryError(f"{config_path} names no platform; expected one Triton model config per model",
                                  argument="repo")
        kind = "gpu" if "GPU" in _KIND.findall(text) else "cpu"
        entries.append(ModelEntry(config_path.parent.name, config_path.parent, platform.group(1), kind))
    if not entries:
        raise RepositoryError(f"{repo} holds no model (no <model>/config.pbtxt); write the repository first",
                              argument="repo")
    return entries
