"""The eager AlexNet -> a verified ncnn pair (.ncnn.param + .ncnn.bin) and its sidecar JSON.

The toolkit writes ncnn's format itself (exporter/ncnn/layers.py), where PyTorch's route to ncnn is
pnnx: measured on the seed AlexNet, pnnx took 10-12 s and 1.2 GB, needs torch.jit.trace and an 88 MB
binary, leaves 0.6-0.75 GB of side files, and has no INT8 (ncnn's quantize tools are C++ programs no
wheel ships); the writer takes under a second, and its FP32 .bin is byte for byte pnnx's. The pair
is staged, run by ncnn against the reference with the precision's gate, and only then renamed in
(exporter/verified.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alexnet_export.events import Listener, Note, Step, ignore
from alexnet_export.exporter.ncnn.format import INT8
from alexnet_export.exporter.ncnn.layers import write_ncnn
from alexnet_export.exporter.verified import Gate, labelled_props, write_verified
from alexnet_export.hashing import file_sha256
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.runtimes.ncnn.reader import NcnnFacts, bin_path, read_ncnn_facts
from alexnet_export.runtimes.ncnn.runtime import SIDECAR, NcnnRuntime, ncnn_version
from alexnet_export.runtimes.sidecar import new_sidecar, sidecar_path, write_sidecar
from alexnet_export.runtimes.verification.parity import ParityReport

WRITER = "alexnet-export ncnn writer 1"  # in the sidecar: which writer (and which layout of layers) made the pair


@dataclass(frozen=True)
class NcnnResult:
    path: Path  # the .ncnn.param
    bin: Path
    sidecar: Path
    precision: str
    param_bytes: int
    bin_bytes: int
    layers: str  # "15 layers: Convolution x2, ..."
    report: ParityReport
    verified_on: str
    seconds: float = 0.0


def stored(precision: str) -> str:
    """How the .bin holds the weights for a library precision word."""
    return INT8 if precision_row(precision).is_int8 else precision  # "fp32" and "fp16" are stored as named


def write_verified_ncnn(model, output: Path, precision: str, metadata: ArtifactMetadata, reference, inputs: np.ndarray,
                        verified_on: str, *, input_ranges: dict[str, float] | None = None, threads: int | None = None,
                        on_event: Listener = ignore) -> NcnnResult:
    """Write the pair and its sidecar, and put the three in place once ncnn's logits pass `precision`'s
    gate against `reference` on `inputs`. input_ranges: INT8's calibrated input ranges (quantize.py)."""
    def write(staged: Path) -> NcnnFacts:
        on_event(Step(f"writing {output.name} and {bin_path(output).name} ({stored(precision)} weights)"))
        param, weights = write_ncnn(model, stored(precision), input_ranges)
        staged.write_text(param, encoding="ascii")
        bin_path(staged).write_bytes(weights)
        facts = read_ncnn_facts(staged)
        on_event(Note(f"{output.name}: {facts.describe()}"))
        write_sidecar(staged, new_sidecar(
            SIDECAR, precision=precision, batch=(1, None), model_path=staged,
            metadata=labelled_props(metadata, precision, {"ncnn": ncnn_version()}),
            bin_bytes=facts.bin_bytes, bin_sha256=file_sha256(bin_path(staged)), writer=WRITER))
        return facts

    gate = Gate(reference, inputs, precision_row(precision).gate, verified_on)
    written = write_verified(output, write, lambda staged: NcnnRuntime(staged, threads=threads), gate,
                             what=f"{precision} ncnn", failing=f"{output.name} ({precision})", on_event=on_event)
    facts = written.made
    return NcnnResult(output, bin_path(output), sidecar_path(output), precision, written.size, facts.bin_bytes,
                      facts.describe(), written.report, verified_on)
