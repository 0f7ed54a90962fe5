"""Which file to ship on this machine: per batch size, the fastest model whose numbers pass the
gate of its precision against an FP32 model of the same run.

Speed alone would pick a file that is fast because it is wrong (an INT8 file calibrated badly, a
file quantized by another tool); so every model is first checked against the reference on the
same photo-like images the exporter verifies on, with the gate its precision has at export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from alexnet_export.runtimes.verification.samples import synthetic_images
from alexnet_export.errors import ParityError
from alexnet_export.models.precisions import gate_for
from alexnet_export.runtimes.verification.parity import ParityReport, compare_runtimes, enforce
from alexnet_export.models.precisions import FP32
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.preprocess import preprocess_batch

CHECK_IMAGES, CHECK_BATCH, CHECK_SEED = 32, 16, 4321


@dataclass(frozen=True)
class GateCheck:
    """One model against the run's FP32 reference, under its precision's gate."""

    model: str
    precision: str
    passed: bool
    detail: str  # "reference", the figures that failed, or why it was not checked
    report: ParityReport | None = None


@dataclass(frozen=True)
class Pick:
    """The fastest model that passed its gate, at one batch size."""

    batch: int
    model: str
    precision: str
    images_per_s: float
    over_reference: float | None  # speed over the reference at this batch, where it ran

    def describe(self) -> str:
        ratio = f", {self.over_reference:.2f}x the FP32 reference" if self.over_reference else ""
        return f"batch {self.batch}: {self.model} ({self.precision}, {self.images_per_s:.1f} img/s{ratio})"


def check_gates(models: Sequence[tuple[str, Runtime]]) -> list[GateCheck]:
    """Each (name, runtime) against the first FP32 one among them; none checked without an FP32 model."""
    reference = next(((name, runtime) for name, runtime in models if runtime.precision == FP32), None)
    if reference is None:
        return [GateCheck(name, runtime.precision, False, "not checked: no FP32 model in this run to compare with")
                for name, runtime in models]
    reference_name, reference_runtime = reference
    inputs = preprocess_batch(synthetic_images(CHECK_IMAGES, seed=CHECK_SEED), reference_runtime.metadata.preprocessing)
    checks = []
    for name, runtime in models:
        if name == reference_name:
            checks.append(GateCheck(name, runtime.precision, True, "reference"))
            continue
        gate = gate_for(runtime.precision)
        if runtime.metadata.preprocessing.input_format != reference_runtime.metadata.preprocessing.input_format:
            checks.append(GateCheck(name, runtime.precision, False, "not checked: it takes another input format than"
                                    " the reference (compare it with `verify --reference`)"))
            continue
        if gate is None or runtime.metadata.num_classes != reference_runtime.metadata.num_classes:
            checks.append(GateCheck(name, runtime.precision, False, "not checked: no gate for this model here"))
            continue
        # CHECK_BATCH, or the largest batch the model takes below it (a .pte planned for 8, a fixed batch of 1)
        size = min(CHECK_BATCH, runtime.bounds.maximum or CHECK_BATCH)
        batches = [inputs[i : i + size] for i in range(0, len(inputs), size)
                   if runtime.bounds.admits(len(inputs[i : i + size]))]
        report = compare_runtimes(reference_runtime, runtime, batches) if batches else None
        if report is None:
            checks.append(GateCheck(name, runtime.precision, False, "not checked: its batch size fits no check batch"))
            continue
        try:
            enforce(report, gate, name)
            checks.append(GateCheck(name, runtime.precision, True, f"{gate.name} gate passed", report))
        except ParityError as failure:
            checks.append(GateCheck(name, runtime.precision, False, str(failure), report))
    return checks


def recommend(rows, checks: Sequence[GateCheck]) -> list[Pick]:
    """Per batch size among `rows` (bench Rows), the fastest model that passed its gate."""
    passed = {check.model for check in checks if check.passed}
    reference = next((check.model for check in checks if check.detail == "reference"), None)
    picks = []
    for batch in sorted({row.batch for row in rows}):
        at_batch = [row for row in rows if row.batch == batch]
        candidates = [row for row in at_batch if row.model in passed]
        if not candidates:
            continue
        best = max(candidates, key=lambda row: row.images_per_s)
        base = next((row.images_per_s for row in at_batch if row.model == reference), None)
        picks.append(Pick(batch, best.model, best.precision, best.images_per_s,
                          best.images_per_s / base if base else None))
    return picks

