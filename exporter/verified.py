"""The one way an export puts a file in place: write it and its companions in a hidden folder beside
the target, open it with its own runtime, hold its logits to a parity gate against a reference on
held-out images, and only then rename the set into place. A failure at any step leaves the target
and its companions as they were (core/atomic.py).

Every kind that writes through here (the OpenVINO IR, .ort, .pte, .tflite, ...) differs only in how it
writes the staged file and which runtime opens it; which companions move with it is the backend
table's rule (runtimes/table.py). The ONNX files keep their own gate (exporter/onnx/variants.py):
a failed INT8 gate there searches for layers to keep in float before it gives up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from alexnet_export.atomic import staged_with_companions
from alexnet_export.events import Listener, Step, Verified, ignore
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.table import backend_for
from alexnet_export.runtimes.verification.parity import ParityGate, ParityReport, compare_in_batches, enforce


@dataclass(frozen=True)
class Gate:
    """What a new file must agree with: `reference` (a runtime) on `inputs`, within `gate`.
    reference_name and verified_on describe both for the report ("eager PyTorch", "24 photo-like images")."""

    reference: Runtime
    inputs: np.ndarray
    gate: ParityGate
    verified_on: str
    reference_name: str = "eager PyTorch"

    def check(self, candidate: Runtime, what: str) -> ParityReport:
        """Both runtimes on the inputs (verification/parity.py `compare_in_batches`); ParityError naming
        `what` when the candidate fails the gate."""
        return enforce(compare_in_batches(self.reference, candidate, self.inputs), self.gate, what)


@dataclass(frozen=True)
class Written:
    """A file put in place: its size, the parity figures, what ran it, and what the writer returned."""

    path: Path
    size: int
    report: ParityReport
    device: str  # the candidate runtime's device, e.g. "CPU (XNNPACK)"
    precision: str  # what the candidate runtime says the file holds
    made: Any = None  # `write`'s return value (what it read back of the file, say)


def write_verified(output: Path, write: Callable[[Path], Any], open_candidate: Callable[[Path], Runtime], gate: Gate,
                   *, what: str, failing: str | None = None, on_event: Listener = ignore) -> Written:
    """`write(staged)` writes the file (and any companions beside it) under the target's name in a
    hidden folder; `open_candidate(staged)` opens it; `gate` decides. `what` names the candidate in
    progress ("int8-executorch ExecuTorch"); `failing` names it in a failed gate's ParityError
    ("m.pte (int8-executorch)"; None: the file's name and `what`). The companions the table names that
    `write` made move with it."""
    backend, made = backend_for(output), []
    # The staged file has the target's name, so its companions have the targets' names: those the
    # writer made move with it; one the kind may have but this write did not make (an .onnx's
    # external data) is neither moved nor removed.
    with staged_with_companions(output, lambda path: [path.with_name(name) for name in made]) as staged:
        returned = write(staged)
        made.extend(path.name for path in backend.companion_paths(staged) if path.is_file())
        on_event(Step(f"verifying {output.name} ({what}) against {gate.reference_name} on {gate.verified_on}"))
        candidate = open_candidate(staged)
        try:
            report = gate.check(candidate, failing or f"{output.name} ({what})")
            device, precision = candidate.device, candidate.precision
        finally:
            candidate.close()
        size = staged.stat().st_size
    on_event(Verified(f"parity, {gate.reference_name} vs {what} ({device}), on {gate.verified_on}", report))
    return Written(Path(output), size, report, device, precision, returned)


def labelled_props(metadata: ArtifactMetadata, precision: str, versions: Mapping[str, str]) -> dict[str, str]:
    """The toolkit's metadata props for a sidecar: labelled with the file's precision, and the versions
    of the tools that made it added to the source's."""
    return replace(metadata, precision=precision, tool_versions={**metadata.tool_versions, **versions}).to_props()
