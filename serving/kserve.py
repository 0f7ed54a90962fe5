"""A KServe InferenceService that runs a Triton model repository (serving/triton_repo.py) on Kubernetes.

    apiVersion: serving.kserve.io/v1beta1
    kind: InferenceService
    metadata: {name, namespace?, annotations: {alexnet-export/models: the repository's models}}
    spec.predictor: minReplicas, maxReplicas,
      model: modelFormat triton, runtime kserve-tritonserver, protocolVersion v2, storageUri,
             runtimeVersion? (the Triton image tag), resources (cpu, memory; nvidia.com/gpu limits)

KServe copies storageUri to /mnt/models, where its kserve-tritonserver runtime starts
`tritonserver --model-store=/mnt/models`: the URI names the repository folder itself, and every
model in it is served as /v2/models/<model>/... . Sources: the runtime,
https://github.com/kserve/kserve/blob/master/config/runtimes/kserve-tritonserver.yaml; KServe's
Triton guide, https://github.com/kserve/website/blob/main/docs/model-serving/predictive-inference/frameworks/triton/torchscript/torchscript.md;
the v1beta1 API, https://kserve.github.io/website/master/reference/api; storage URIs,
https://kserve.github.io/website/docs/model-serving/storage/overview and KServe's storage
initializer (python/storage/kserve_storage/kserve_storage.py in its repository); GPUs, asked for
in limits only: https://kubernetes.io/docs/tasks/manage-gpus/scheduling-gpus/.

The manifest is built from plain dicts and written as YAML (or JSON for a .json output) by the
few lines below, so writing one needs no KServe, Kubernetes or YAML package; the tests read every
manifest back into the `kserve` package's own model classes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from alexnet_export.atomic import atomic_output, check_output_path
from alexnet_export.errors import ArgumentError
from alexnet_export.serving.triton_repo import ModelEntry, read_repository

API_VERSION = "serving.kserve.io/v1beta1"
RUNTIME = "kserve-tritonserver"  # KServe's ClusterServingRuntime for Triton (config/runtimes in its repository)
MODELS_ANNOTATION = "alexnet-export/models"
GPU_RESOURCE = "nvidia.com/gpu"  # NVIDIA's device plugin

# What KServe fetches a folder from: its storage initializer's prefixes (gs, s3, hdfs, webhdfs,
# https, hf), a PersistentVolumeClaim (pvc://claim/path) and a model image (oci://, "modelcar").
# Not http:// (anyone on the way may change the model, and an engine is native code) nor file://
# (a path inside the initializer's own container).
STORAGE_SCHEMES = ("s3", "gs", "pvc", "https", "hdfs", "webhdfs", "hf", "oci")
# KServe's own check of an InferenceService name (IsvcNameFmt: a DNS-1035 label), and Kubernetes'
# 63-character limit for a label.
_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # DNS-1123 label
# A Kubernetes quantity greater than zero: "1", "500m", "2Gi", "1.5", "4e3".
_QUANTITY = re.compile(r"(?=.*[1-9])(\d+(\.\d*)?|\.\d+)(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei|[eE]\d+)?")


@dataclass(frozen=True)
class KServeOptions:
    """How the repository runs on the cluster; every argument is checked on construction (ArgumentError)."""

    storage_uri: str
    name: str = "alexnet"
    namespace: str | None = None
    replicas: int = 1
    max_replicas: int | None = None  # None: as many as `replicas` (no autoscaling)
    cpu: str = "1"  # requests and limits alike, as KServe's Triton runtime has them
    memory: str = "2Gi"
    gpus: int | None = None  # per replica; None: 1 if the repository needs a GPU, else 0
    runtime_version: str | None = None  # the Triton image tag, e.g. "25.01-py3"; None: the runtime's

    def __post_init__(self):
        _check_storage_uri(self.storage_uri)
        _check_label(self.name, _SERVICE_NAME, "name", "lower-case letters, digits and '-', starting with a letter"
                     " and ending in a letter or digit (KServe's InferenceService names)")
        if self.namespace is not None:
            _check_label(self.namespace, _NAMESPACE, "namespace", "lower-case letters, digits and '-', starting and"
                         " ending in a letter or digit (a Kubernetes namespace)")
        if self.replicas < 1:
            raise ArgumentError(f"replicas is {self.replicas}; expected at least 1", argument="replicas")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ArgumentError(f"max_replicas {self.max_replicas} is below replicas {self.replicas}",
                                argument="max_replicas")
        for argument in ("cpu", "memory"):
            value = getattr(self, argument)
            if not (isinstance(value, str) and _QUANTITY.fullmatch(value)):
                raise ArgumentError(f"{argument} {value!r} is no Kubernetes quantity above zero; expected e.g. "
                                    + ("'1' or '500m'" if argument == "cpu" else "'2Gi' or '512Mi'"), argument=argument)
        if self.gpus is not None and self.gpus < 0:
            raise ArgumentError(f"gpus is {self.gpus}; expected 0 or more", argument="gpus")
        if self.runtime_version is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
                                                                 self.runtime_version):
            raise ArgumentError(f"runtime_version {self.runtime_version!r} is no image tag; expected e.g. '25.01-py3'",
                                argument="runtime_version")


@dataclass(frozen=True)
class InferenceServiceFile:
    """A manifest written: where, the service's name, the models it serves and its GPUs per replica."""

    path: Path
    name: str
    models: tuple[str, ...]
    gpus: int
    manifest: dict


def write_inference_service(repo: str | Path, output: str | Path, options: KServeOptions) -> InferenceServiceFile:
    """Write a KServe InferenceService for the Triton repository `repo` (a folder `triton` wrote,
    to be copied to `options.storage_uri`); it serves every model there. YAML, or JSON when `output` ends in .json.
    Written beside `output` and renamed into place: a failure leaves what was there."""
    output = check_output_path(output)
    models = read_repository(Path(repo))
    gpus = _gpus(models, options.gpus)
    manifest = inference_service(models, options, gpus)
    text = json.dumps(manifest, indent=2) + "\n" if output.suffix.lower() == ".json" else to_yaml(manifest)
    with atomic_output(output) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return InferenceServiceFile(output, options.name, tuple(m.name for m in models), gpus, manifest)


def inference_service(models: list[ModelEntry], options: KServeOptions, gpus: int) -> dict:
    """The manifest as plain dicts (the keys are KServe's and Kubernetes' JSON names)."""
    resources = {"cpu": options.cpu, "memory": options.memory}
    # A GPU is asked for in limits only; Kubernetes makes the request equal to it. Quantities are
    # strings: Kubernetes' own client classes take nothing else.
    limits = {**resources, **({GPU_RESOURCE: str(gpus)} if gpus else {})}
    model = {
        "modelFormat": {"name": "triton"},
        "runtime": RUNTIME,
        "protocolVersion": "v2",
        "storageUri": options.storage_uri,
        **({"runtimeVersion": options.runtime_version} if options.runtime_version else {}),
        "resources": {"requests": dict(resources), "limits": limits},
    }
    metadata = {
        "name": options.name,
        **({"namespace": options.namespace} if options.namespace else {}),
        "annotations": {MODELS_ANNOTATION: ",".join(m.name for m in models)},
    }
    predictor = {"minReplicas": options.replicas, "maxReplicas": options.max_replicas or options.replicas,
                 "model": model}
    return {"apiVersion": API_VERSION, "kind": "InferenceService", "metadata": metadata,
            "spec": {"predictor": predictor}}


def _gpus(models: list[ModelEntry], asked: int | None) -> int:
    """GPUs per replica: what was asked, if the repository's models agree; 1 or 0 by default."""
    on_gpu = [m.name for m in models if m.needs_gpu]
    if asked is None:
        return 1 if on_gpu else 0
    if on_gpu and asked == 0:
        raise ArgumentError(f"model {on_gpu[0]} runs on a GPU (a TensorRT engine or instance kind gpu); "
                            "gpus must be at least 1", argument="gpus")
    if not on_gpu and asked > 0:
        raise ArgumentError(f"every model of the repository runs on the CPU (instance kind cpu), so {asked} GPU(s) "
                            "would sit idle; write the repository with kind 'gpu' or leave gpus at 0", argument="gpus")
    return asked


def _check_storage_uri(uri: str) -> None:
    parts = urlsplit(uri) if isinstance(uri, str) else None
    expected = ", ".join(f"{scheme}://" for scheme in STORAGE_SCHEMES)
    if parts is None or parts.scheme not in STORAGE_SCHEMES or not parts.netloc or re.search(r"\s", uri):
        raise ArgumentError(f"storage URI {uri!r} is not one KServe fetches a model folder from; expected "
                            f"{expected} followed by a bucket, claim or host and the repository's path",
                            argument="storage_uri")


def _check_label(value: str, pattern: re.Pattern, argument: str, expected: str) -> None:
    if not (isinstance(value, str) and len(value) <= 63 and pattern.fullmatch(value)):
        raise ArgumentError(f"{argument} {value!r} is not valid: expected at most 63 {expected}", argument=argument)


def to_yaml(value: dict | list, indent: int = 0) -> str:
    """Block-style YAML for dicts and lists of strings, ints, bools and more of the same. A string
    is written plain only when YAML reads it back as that string (a word without ':' or '#' that
    starts with a letter and is no boolean or null), else double-quoted with JSON's escapes, which
    YAML reads the same: "1", "2Gi" and "s3://..." stay strings."""
    pad = " " * indent
    lines = []
    for key, item in value.items() if isinstance(value, dict) else enumerate(value):
        head = f"{pad}{_yaml_scalar(key)}:" if isinstance(value, dict) else f"{pad}-"
        if not isinstance(item, (dict, list)):
            lines.append(f"{head} {_yaml_scalar(item)}\n")
        elif not item:
            lines.append(f"{head} {json.dumps(item)}\n")  # {} or []
        elif isinstance(value, dict):
            lines.append(f"{head}\n{to_yaml(item, indent + 2)}")
        else:  # a list item's first line goes on its dash's line
            lines.append(f"{head} {to_yaml(item, indent + 2)[indent + 2:]}")
    return "".join(lines)


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}  # YAML 1.1 reads these as others


def _yaml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"no YAML form for {type(value).__name__}")
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_./-]*", value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value)
