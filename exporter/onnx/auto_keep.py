"""When an INT8 file fails its gate: find where it loses accuracy, and the fewest layers to keep
in float (exporter/onnx/keep_float.py) that make it pass.

Ranking: the per-layer error of the all-INT8 file (runtimes/verification/layer_errors.py) says where the
noise enters; the layer that reads that tensor is tried first, because keeping it in float
removes the rounding of its input. Each try is a real quantization gated on the same images as
the file itself, so a layer is kept only for a measured pass. The first single layer that
passes ends the search (one layer is the fewest); when none does, layers are added in the order
of their measured single-layer gain, up to MAX_KEPT.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from alexnet_export.errors import ParityError
from alexnet_export.events import Listener, Step, ignore
from alexnet_export.runtimes.verification.layer_errors import LayerReport, compare_layers, describe_layer, onnx_layers
from alexnet_export.runtimes.verification.layers import LAYERS, WEIGHTED
from alexnet_export.runtimes.verification.parity import ParityReport
from alexnet_export.models.precisions import INT8_GATE

# Past half of the weighted layers the file is mostly float: say so instead of writing it.
MAX_KEPT = len(WEIGHTED) // 2
TIMING_BATCH, TIMING_ROUNDS = 8, 10

Quantize = Callable[[Path, Sequence[str]], None]  # (output, layers to keep in float)
Gate = Callable[[Path], ParityReport]  # the file's figures on the verification images
# A check beyond the gate (e.g. top-1 on labelled images within a budget): why the file is refused, or None.
Accept = Callable[[Path], "str | None"]


@dataclass(frozen=True)
class Speed:
    """Median milliseconds per batch of TIMING_BATCH, timed interleaved in one process."""

    fp32_ms: float
    int8_ms: float  # every layer INT8
    kept_ms: float  # with the kept layers in float
    rounds: int


@dataclass(frozen=True)
class KeepFloatSearch:
    layers: tuple[str, ...]  # kept in float, network order
    before: ParityReport  # the all-INT8 file
    after: ParityReport
    tried: tuple[tuple[tuple[str, ...], ParityReport], ...]  # every candidate set and its figures
    analysis: LayerReport  # per-layer error of the all-INT8 file
    speed: Speed

    def summary(self) -> str:
        kept, tries = ", ".join(self.layers), len(self.tried)
        return (f"{kept} kept in float after {tries} tr{'y' if tries == 1 else 'ies'}: cosine mean/min"
                f" {self.before.mean_cosine:.4f}/{self.before.min_cosine:.4f} all INT8 ->"
                f" {self.after.mean_cosine:.4f}/{self.after.min_cosine:.4f}; batch {TIMING_BATCH} on this CPU: FP32"
                f" {self.speed.fp32_ms:.1f} ms, all INT8 {self.speed.int8_ms:.1f} ms, {kept} in float"
                f" {self.speed.kept_ms:.1f} ms ({self.speed.kept_ms / self.speed.int8_ms - 1:+.0%} against all INT8,"
                f" median of {self.speed.rounds} interleaved rounds)")


def layer_analysis(fp32_onnx: Path, candidate: Path, inputs: np.ndarray) -> LayerReport:
    return compare_layers(onnx_layers(fp32_onnx), onnx_layers(candidate), [inputs])


def reader_of(layer: str) -> str:
    """The weighted layer that reads `layer`'s output (fc8, the last, reads nothing: itself)."""
    names = [entry.name for entry in LAYERS]
    following = [name for name in names[names.index(layer) + 1 :] if name in WEIGHTED]
    return following[0] if following else layer


class Int8GateError(ParityError):
    """An INT8 file failed its gate: the figures, where the noise enters, and what to try (or,
    after a search, the best it reached). `message(keep, auto)` words it with the caller's option
    names; str() uses the library's."""

    def __init__(self, failure: str, report: ParityReport, analysis: LayerReport,
                 tried: Sequence[tuple[tuple[str, ...], ParityReport]] = ()):
        self.failure, self.analysis, self.tried = failure, analysis, tuple(tried)
        super().__init__(self.message("keep_float", "auto_keep_float"), report)

    @property
    def best_passing_gate(self) -> tuple[str, ...] | None:
        """The layers of the closest try to FP32 (min cosine) that passed the gate, refused only by the
        search's accept check (`optimize`'s budget); None when no try passed the gate."""
        passed = [(layers, report) for layers, report in self.tried if not report.failures(INT8_GATE)]
        return max(passed, key=lambda t: t[1].min_cosine)[0] if passed else None

    def message(self, keep_option: str, auto_option: str) -> str:
        worst = self.analysis.worst
        text = f"{self.failure}; most noise enters at {describe_layer(worst)}"
        if not self.tried:
            return (f"{text}; try {keep_option} {reader_of(worst.layer)} (the layer that reads it, kept in float) or"
                    f" {auto_option} (searches for the fewest layers to keep)")
        layers, best = max(self.tried, key=lambda t: t[1].min_cosine)
        return (f"{text}; {auto_option} tried {len(self.tried)} sets of up to {MAX_KEPT} layers in float and none"
                f" passes; the best, {','.join(layers)}: {'; '.join(best.failures(INT8_GATE))}")


def search_float_layers(
    fp32_onnx: Path,
    output: Path,
    before: ParityReport,
    inputs: np.ndarray,
    quantize: Quantize,
    gate: Gate,
    what: str,
    *,
    already_float: Sequence[str] = (),
    accept: Accept | None = None,
    on_event: Listener = ignore,
) -> KeepFloatSearch:
    """Replace the all-INT8 file at `output`, which failed with `before` its figures, by the INT8
    file with the fewest layers in float that passes INT8_GATE.

    `what` names the file in errors; already_float: layers `quantize` keeps in float anyway, not
    tried again. accept: a check each try must also pass (`optimize`'s top-1 budget), which may be
    what the all-INT8 file failed. Raises Int8GateError with the best figures reached when no set of up to
    MAX_KEPT layers passes; `output` is then gone.
    """
    on_event(Step("measuring the per-layer error of the INT8 file"))
    analysis = layer_analysis(fp32_onnx, output, inputs)
    ranked = sorted(analysis.layers, key=lambda f: -f.noise_added)
    order = [name for name in dict.fromkeys([*(reader_of(f.layer) for f in ranked), *WEIGHTED])
             if name not in already_float]
    tried: list[tuple[tuple[str, ...], ParityReport]] = []
    with tempfile.TemporaryDirectory(prefix=".alexnet-export-keep-", dir=output.parent) as scratch:
        candidate, full = Path(scratch) / "candidate.onnx", Path(scratch) / "all-int8.onnx"
        os.replace(output, full)  # kept for the timing at the end

        def attempt(layers: tuple[str, ...]) -> bool:
            layers = tuple(name for name in WEIGHTED if name in layers)
            on_event(Step(f"trying {', '.join(layers)} in float"))
            quantize(candidate, layers)
            report = gate(candidate)
            tried.append((layers, report))
            if report.failures(INT8_GATE) or (accept is not None and accept(candidate) is not None):
                return False
            os.replace(candidate, output)
            return True

        found = next((layer for layer in order if attempt((layer,))), None)
        if found is None:
            by_gain = [layers[0] for layers, _ in sorted(tried, key=lambda t: -t[1].min_cosine)]
            found = next((by_gain[:count] for count in range(2, MAX_KEPT + 1) if attempt(tuple(by_gain[:count]))), None)
        if found is None:
            failures = before.failures(INT8_GATE) or ([accept(full)] if accept is not None else [])
            raise Int8GateError(f"{what} fails the int8 parity gate: {'; '.join(map(str, failures))}",
                                max(tried, key=lambda t: t[1].min_cosine)[1] if tried else before, analysis, tried)
        layers, after = tried[-1]
        on_event(Step(f"timing FP32, all-INT8 and {', '.join(layers)}-in-float files, interleaved"))
        speed = time_files(fp32_onnx, full, output)
    return KeepFloatSearch(layers, before, after, tuple(tried), analysis, speed)


def time_files(fp32_onnx: Path, all_int8: Path, kept: Path) -> Speed:
    """One interleaved timing of the three files (runtimes/verification/timing.py's rounds, as bench times), spinning off."""
    from alexnet_export.models.spec import IMAGE_DIMS
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime
    from alexnet_export.runtimes.verification.timing import interleaved_rounds

    batch = np.random.default_rng(0).normal(size=(TIMING_BATCH, *IMAGE_DIMS)).astype(np.float32)
    runtimes = {name: OnnxRuntime(path, providers=["CPUExecutionProvider"], spinning=False)
                for name, path in (("fp32", fp32_onnx), ("int8", all_int8), ("kept", kept))}
    times = interleaved_rounds({name: (lambda r=r: r.predict(batch)) for name, r in runtimes.items()},
                               warmup=2, rounds=TIMING_ROUNDS)
    median = {name: float(np.median(values)) * 1e3 for name, values in times.items()}
    return Speed(median["fp32"], median["int8"], median["kept"], TIMING_ROUNDS)
