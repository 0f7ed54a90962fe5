"""Compare a candidate's logits with a reference's, report the figures and gate on them: the one
parity check of the exporter's gates, `verify` and `bench`'s recommendation.

Random-weight networks give nearly tied logits, so top-1 agreement is counted over the
"decisive" inputs only: those whose reference margin (first minus second logit) exceeds twice
the measured error (the 95th percentile over inputs of each input's largest logit error). A
flip there means the candidate is wrong, not that a tie broke the other way. On random weights
INT8 errors exceed most margins, so few inputs are decisive there; with trained weights most
are. Raw agreement is reported too, and agreement over the inputs whose margin is clear by a
rule on the reference alone (models/precisions.py CLEAR_MARGIN), which a gate may count instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np

from alexnet_export.errors import ParityError
from alexnet_export.models.precisions import CLEAR_MARGIN, ParityGate


DECISIVE_ERROR_PERCENTILE = 95


@dataclass(frozen=True)
class ParityReport:
    samples: int
    max_abs: float
    max_rel: float
    mean_cosine: float
    min_cosine: float
    top1_agreement: float
    decisive: int
    decisive_top1_agreement: float
    top5_overlap: float
    batches: tuple[int, ...] = ()  # the batch sizes the inputs ran in, where the caller ran batches of its own
    clear: int = 0  # inputs whose reference margin is at least CLEAR_MARGIN standard deviations of their logits
    clear_top1_agreement: float = 1.0

    def failures(self, gate: ParityGate) -> list[str]:
        problems = []
        if gate.max_abs is not None and not self.max_abs <= gate.max_abs:
            problems.append(f"max abs error {self.max_abs:.3g} > {gate.max_abs:g}")
        if gate.max_rel is not None and not self.max_rel <= gate.max_rel:
            problems.append(f"relative error {self.max_rel:.3g} > {gate.max_rel:g}")
        if gate.min_mean_cosine is not None and not self.mean_cosine >= gate.min_mean_cosine:
            problems.append(f"mean cosine {self.mean_cosine:.6f} < {gate.min_mean_cosine}")
        if not self.min_cosine >= gate.min_cosine:
            problems.append(f"min cosine {self.min_cosine:.6f} < {gate.min_cosine}")
        if gate.clear_margin_top1:
            if self.clear and not self.clear_top1_agreement >= gate.min_top1:
                problems.append(f"top-1 agreement {self.clear_top1_agreement:.1%} < {gate.min_top1:.0%} on"
                                f" the {self.clear} of {self.samples} inputs whose reference margin is clear"
                                f" (>= {CLEAR_MARGIN} std of their logits)")
        elif self.decisive and not self.decisive_top1_agreement >= gate.min_top1:
            problems.append(f"top-1 agreement {self.decisive_top1_agreement:.1%} < {gate.min_top1:.0%}")
        return problems

    def table(self) -> str:
        rows = [
            ("inputs", f"{self.samples}{_in_batches(self.batches)}"),
            ("max abs error", f"{self.max_abs:.3g}"),
            ("max error / logit scale", f"{self.max_rel:.3g}"),
            ("cosine (mean / min)", f"{self.mean_cosine:.8f} / {self.min_cosine:.8f}"),
            ("top-1 agreement (all)", f"{self.top1_agreement:.1%}"),
            (f"top-1 agreement ({self.decisive} decisive)",
             f"{self.decisive_top1_agreement:.1%}" if self.decisive else "n/a: every margin is within the error"),
            (f"top-1 agreement ({self.clear} clear margin)",
             f"{self.clear_top1_agreement:.1%}" if self.clear else f"n/a: no margin reaches {CLEAR_MARGIN} std"),
            ("top-5 overlap", f"{self.top5_overlap:.1%}"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def _in_batches(sizes: tuple[int, ...]) -> str:
    """What the inputs were run as, after their count: " (1 + 8: batch 1 and batch 8)"."""
    if len(sizes) < 2:
        return f" (one batch of {sizes[0]})" if sizes else ""
    if len(set(sizes)) == 1:
        return f" ({len(sizes)} batches of {sizes[0]})"
    return f" ({' + '.join(map(str, sizes))}: {', '.join(f'batch {n}' for n in sizes[:-1])} and batch {sizes[-1]})"


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape or reference.ndim != 2 or len(reference) == 0:
        raise ValueError(f"logit shapes {reference.shape} and {candidate.shape} differ or are empty")
    row_error = np.abs(reference - candidate).max(axis=1)
    scale = float(np.abs(reference).max()) or 1.0
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = np.where(norms > 0, (reference * candidate).sum(axis=1) / np.where(norms > 0, norms, 1), 1.0)
    same_top1 = reference.argmax(axis=1) == candidate.argmax(axis=1)
    ordered = np.sort(reference, axis=1)
    margin = ordered[:, -1] - ordered[:, -2] if reference.shape[1] > 1 else np.full(len(reference), np.inf)
    decisive = margin > 2 * np.percentile(row_error, DECISIVE_ERROR_PERCENTILE)
    clear = (margin > 0) & (margin >= CLEAR_MARGIN * reference.std(axis=1))
    k = min(5, reference.shape[1])
    top_ref = np.argsort(-reference, axis=1)[:, :k]
    top_cand = np.argsort(-candidate, axis=1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_cand)])
    return ParityReport(
        samples=len(reference),
        max_abs=float(row_error.max()),
        max_rel=float(row_error.max()) / scale,
        mean_cosine=float(cosine.mean()),
        min_cosine=float(cosine.min()),
        top1_agreement=float(same_top1.mean()),
        decisive=int(decisive.sum()),
        decisive_top1_agreement=float(same_top1[decisive].mean()) if decisive.any() else 1.0,
        top5_overlap=float(overlap),
        clear=int(clear.sum()),
        clear_top1_agreement=float(same_top1[clear].mean()) if clear.any() else 1.0,
    )


def compare_runtimes(reference, candidate, batches: Iterable[np.ndarray]) -> ParityReport:
    """Run both runtimes (anything with `predict`) on the same batches and compare."""
    batches = list(batches)
    expected = np.concatenate([reference.predict(batch) for batch in batches])
    actual = np.concatenate([candidate.predict(batch) for batch in batches])
    return replace(compare_logits(expected, actual), batches=tuple(len(batch) for batch in batches))


def enforce(report: ParityReport, gate: ParityGate, what: str) -> ParityReport:
    problems = report.failures(gate)
    if problems:
        raise ParityError(f"{what} fails the {gate.name} parity gate: {'; '.join(problems)}", report)
    return report


VERIFY_BATCH = 16  # images per predict() while verifying: bounded memory for any number of images


def compare_in_batches(reference, candidate, inputs: np.ndarray) -> ParityReport:
    """Both runtimes on `inputs` in chunks of VERIFY_BATCH, each split or padded to what the runtime takes
    (`predict_in_allowed_batches`: a fixed-batch file too), the figures of every image in one report."""
    chunks = [inputs[i : i + VERIFY_BATCH] for i in range(0, len(inputs), VERIFY_BATCH)]
    expected = np.concatenate([reference.predict_in_allowed_batches(chunk) for chunk in chunks])
    actual = np.concatenate([candidate.predict_in_allowed_batches(chunk) for chunk in chunks])
    return compare_logits(expected, actual)
