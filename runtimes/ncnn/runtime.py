"""ncnn backend: runs an `.ncnn.param` / `.ncnn.bin` pair made by `alexnet-export ncnn`, with its sidecar,
through ncnn's own Python runtime (the `ncnn` wheel: numpy and ncnn, no torch).

ncnn checks little of what it reads: a file that does not fit can crash the process or load and give
wrong numbers, and a Net whose load failed crashes when used (docs/ncnn.md). So both files pass
runtimes/ncnn/reader.py (every layer, every shape, every weight blob's tag and size, the .bin's exact
length) before ncnn sees a byte, and ncnn's return codes are checked at every step.

Threads: one Net is shared, each image gets an Extractor of its own (an Extractor keeps the blobs it
computed, so reusing one returns its first image's logits). ncnn's Python binding holds the GIL while
it runs, so threads take turns; `threads` sets ncnn's own OpenMP threads for each image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alexnet_export.errors import InferenceError, MissingDependencyError, ModelLoadError
from alexnet_export.extras import import_extra
from alexnet_export.models.spec import INPUT_NAME, OUTPUT_NAME, ArtifactMetadata
from alexnet_export.quiet import captured_stderr
from alexnet_export.runtimes import sidecar as sidecars
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.ncnn.reader import NcnnFacts, bin_path, read_ncnn_facts
from alexnet_export.runtimes.sidecar import Sidecar, SidecarRule

SIDECAR = SidecarRule(1, "an ncnn pair carries no labels or preprocessing of ours, and loads only with the sidecar"
                      " written beside it", "export it again with `alexnet-export ncnn`", size_key="param_bytes",
                      precisions_of="ncnn", required=("bin_bytes",))


class NcnnUnavailable(MissingDependencyError):
    """The ncnn wheel is not installed (an ImportError naming the extra)."""


def import_ncnn():
    return import_extra("ncnn", "ncnn is not installed", NcnnUnavailable)


def ncnn_version() -> str:
    from importlib.metadata import version

    return version("ncnn")


def read_sidecar(param_path: str | Path) -> Sidecar:
    return sidecars.read_sidecar(param_path, SIDECAR)


def check_pair(facts: NcnnFacts, sidecar: Sidecar, path: Path) -> None:
    """ModelLoadError unless the files are the ones the sidecar describes, and hold what its precision says.
    The digests too: a .bin of another AlexNet with as many classes has the same size and passes every check."""
    from alexnet_export.hashing import file_sha256

    name = path.name
    if sidecar["bin_bytes"] != facts.bin_bytes:
        raise ModelLoadError(f"{name}'s sidecar describes a .bin of {sidecar['bin_bytes']} bytes but"
                             f" {bin_path(name).name} has {facts.bin_bytes}; the two are not one export")
    for file, key in ((path, SIDECAR.hash_key), (bin_path(path), "bin_sha256")):
        if sidecar.get(key) is not None and sidecar[key] != file_sha256(file):
            raise ModelLoadError(f"{file.name} is not the file {name}'s sidecar describes (its SHA-256 differs from"
                                 f" the sidecar's {key}); the two are not one export")
    stored = "int8" if sidecar.precision.startswith("int8") else sidecar.precision
    if facts.weights != stored:
        raise ModelLoadError(f"{name} holds {facts.weights} weights but its sidecar says {sidecar.precision};"
                             " the two are not one export")
    if facts.input != INPUT_NAME or facts.output != OUTPUT_NAME:
        raise ModelLoadError(f"{name} reads {facts.input!r} and gives {facts.output!r}; expected {INPUT_NAME!r} and"
                             f" {OUTPUT_NAME!r}, as `alexnet-export ncnn` writes")


class NcnnRuntime(Runtime):
    """Run an ncnn pair on the CPU with ncnn's Python runtime. threads: ncnn's threads per image
    (None: ncnn's default, one per core). spinning: False stops ncnn's OpenMP threads from spinning
    after each layer (ncnn's openmp_blocktime, 20 ms by default), as bench and serve ask of every
    runtime that spins (interleaved with the INT8 .pte, IR and .onnx on 2 cores it made no
    difference to the FP32 pair's batch-1 median: 13.5-14.4 ms either way)."""

    backend = "ncnn"

    def __init__(self, path: str | Path, *, threads: int | None = None, spinning: bool = True):
        super().__init__(path)
        facts = read_ncnn_facts(self.path)
        sidecar = read_sidecar(self.path)
        check_pair(facts, sidecar, self.path)
        ncnn = import_ncnn()
        try:
            self.metadata = ArtifactMetadata.from_props(sidecar.metadata, facts.classes)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        if self.metadata.preprocessing.input_dims != facts.input_shape:
            raise ModelLoadError(f"{self.path.name} takes {facts.input_shape} but its sidecar says"
                                 f" {self.metadata.preprocessing.input_dims}; the two are not one export")
        self._net = _load(ncnn, self.path, facts, threads, spinning)
        self._mat = ncnn.Mat
        self.precision = sidecar.precision
        self.facts = facts
        self.device = f"ncnn {ncnn_version()} (CPU, {threads or 'default'} threads)"

    def _run(self, batch: np.ndarray) -> np.ndarray:
        net = self._net
        logits = np.empty((len(batch), self.metadata.num_classes), np.float32)
        for row, image in enumerate(batch):
            # ncnn.Mat borrows the array's memory without holding it and takes the bytes as float32:
            # give it a float32 C-contiguous image that lives until the extractor is done.
            image = np.ascontiguousarray(image, dtype=np.float32)
            extractor = net.create_extractor()
            if extractor.input(INPUT_NAME, self._mat(image)) != 0:
                raise InferenceError(f"ncnn refused the input of {self.path.name}")
            code, output = extractor.extract(OUTPUT_NAME)
            if code != 0:
                raise InferenceError(f"ncnn failed on {self.path.name} (extract returned {code})")
            logits[row] = np.asarray(output, dtype=np.float32).reshape(-1)
        return logits

    def _close(self) -> None:
        net, self._net = getattr(self, "_net", None), None
        if net is not None:
            net.clear()


def _load(ncnn, path: Path, facts: NcnnFacts, threads: int | None, spinning: bool):
    """A Net holding the pair; ModelLoadError with ncnn's own words when it refuses one (a Net whose load
    failed is never used: ncnn crashes on it)."""
    net = ncnn.Net()
    if threads is not None:
        net.opt.num_threads = threads
    if not spinning:
        net.opt.openmp_blocktime = 0
    if facts.weights == "fp32":  # else ncnn stores FP32 weights as FP16 where the CPU has F16C (1e-3 of the logits)
        net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    with captured_stderr() as said:  # ncnn prints why it refused; the reason goes into the one-line error
        failed = net.load_param(str(path)) != 0 or net.load_model(str(bin_path(path))) != 0
    if failed:
        net.clear()
        reason = " ".join(said.getvalue().split())[:300] or "no reason given"
        raise ModelLoadError(f"ncnn cannot load {path}: {reason}")
    return net
