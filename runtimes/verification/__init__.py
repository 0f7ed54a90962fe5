"""What the exporter, bench and verify check files with: parity.py (compare logits, gate on them),
layers.py and layer_errors.py (the layers by name, per-layer errors), samples.py (photo-like images
made here), timing.py (calls timed interleaved round by round)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.verification.parity import ParityReport, compare_in_batches, compare_logits, enforce
    from alexnet_export.runtimes.verification.samples import synthetic_images
    from alexnet_export.runtimes.verification.timing import interleaved_rounds

__all__ = ["ParityReport", "compare_in_batches", "compare_logits", "enforce", "interleaved_rounds", "synthetic_images"]
__getattr__ = lazy_names(__name__, {
    "ParityReport": "parity",
    "compare_in_batches": "parity",
    "compare_logits": "parity",
    "enforce": "parity",
    "interleaved_rounds": "timing",
    "synthetic_images": "samples",
})
