"""The eager AlexNet -> a verified ExecuTorch program (.pte) for the XNNPACK delegate, FP32 or INT8.

torch.export traces the model with a bounded dynamic batch, the LRN rewritten in operators
XNNPACK has (exporter/rewrites/lrn_banded.py); INT8 goes through PyTorch's PT2E flow with XNNPACK's
quantizer (symmetric INT8, per-channel weights), calibrated on the calibration images the ONNX
INT8 files use; `to_edge_transform_and_lower` hands the graph to XNNPACK. The program and its
sidecar JSON (runtimes/executorch/runtime.py) are written in a hidden folder beside the target, run by
ExecuTorch against eager PyTorch with the precision's gate, and only then renamed into place.

APIs: ExecuTorch 1.5 (executorch.exir.to_edge_transform_and_lower, XnnpackPartitioner,
executorch.devtools.backend_debug.get_delegation_info; docs.pytorch.org/executorch), torchao 0.18
(torchao.quantization.pt2e.quantize_pt2e.prepare_pt2e / convert_pt2e).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from alexnet_export.quiet import quiet
from alexnet_export.exporter.executorch.spec import DEFAULT_MAX_BATCH
from alexnet_export.errors import ExportError, one_line
from alexnet_export.events import Listener, Note, Step, counter, ignore
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.models.spec import IMAGE_DIMS, ArtifactMetadata
from alexnet_export.exporter.verified import Gate, labelled_props, write_verified
from alexnet_export.runtimes.executorch.runtime import SIDECAR, ExecuTorchRuntime, executorch_version, import_executorch
from alexnet_export.runtimes.sidecar import new_sidecar, sidecar_path, write_sidecar
from alexnet_export.runtimes.verification.parity import ParityReport

CALIBRATION_BATCH = 16
# Nodes the delegation report leaves out: reading the delegate's outputs, not an operator.
_STRUCTURAL = {"getitem"}


@dataclass(frozen=True)
class DelegationReport:
    """Which operators ExecuTorch hands to XNNPACK, by type, and which it runs itself."""

    subgraphs: int
    delegated: dict[str, int]
    not_delegated: dict[str, int]

    @property
    def complete(self) -> bool:
        return not self.not_delegated

    def describe(self) -> str:
        done = sum(self.delegated.values())
        if self.complete:
            return f"all {done} operators delegated to XNNPACK ({self.subgraphs} subgraph{'s' * (self.subgraphs != 1)})"
        rest = ", ".join(f"{name} x{count}" for name, count in sorted(self.not_delegated.items()))
        return f"{done} operators delegated to XNNPACK; not delegated (run by ExecuTorch's portable kernels): {rest}"

    def to_json(self) -> dict:
        return {"subgraphs": self.subgraphs, "delegated": dict(sorted(self.delegated.items())),
                "not_delegated": dict(sorted(self.not_delegated.items()))}


@dataclass(frozen=True)
class PteResult:
    path: Path
    sidecar: Path
    precision: str
    size_bytes: int
    batch: tuple[int, int]
    delegation: DelegationReport
    report: ParityReport
    verified_on: str
    seconds: float = 0.0  # the whole export, set by export_executorch (exporter/executorch/command.py)


def lower(model, precision: str, max_batch: int, calibration: np.ndarray | None = None,
          on_event: Listener = ignore):
    """(the ExecuTorch program manager, its delegation report) for the eager AlexNet `model`.

    calibration: preprocessed images for an INT8 precision (observed in batches of CALIBRATION_BATCH).
    """
    import_executorch()
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from alexnet_export.exporter.rewrites.lrn_banded import for_executorch

    # torch.export specialises a dimension whose example size is 1, so trace with 2 (as the ONNX
    # export); a program for batch 1 only is static.
    example = (torch.zeros(min(2, max_batch), *IMAGE_DIMS),)
    shapes = ({0: torch.export.Dim("batch", min=1, max=max_batch)},) if max_batch > 1 else None
    exportable = for_executorch(model)
    with quiet("torch", "torchao", "executorch", "root"):
        try:
            on_event(Step(f"tracing the model with torch.export (batch 1..{max_batch})"))
            program = torch.export.export(exportable, example, dynamic_shapes=shapes)
            if precision_row(precision).calibrated:
                program = _quantize(program, calibration, example, shapes, on_event)
            on_event(Step("lowering to ExecuTorch with the XNNPACK partitioner"))
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            _plan_for_declared_batch(edge.exported_program())
            delegation = delegation_report(edge.exported_program().graph_module)
            return edge.to_executorch(), delegation
        except ExportError:
            raise
        except Exception as exc:  # torch.export, the quantizer and the lowering raise many types
            raise ExportError(f"ExecuTorch export failed: {one_line(exc, 400)}") from None


def _quantize(program, images: np.ndarray, example, shapes, on_event: Listener):
    """PT2E: annotate with XNNPACK's quantizer, observe the calibration images, convert, re-export."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    tick = counter(on_event, "calibrating (PT2E observers)", len(images))
    with torch.no_grad():
        for start in range(0, len(images), CALIBRATION_BATCH):
            chunk = images[start : start + CALIBRATION_BATCH]
            prepared(torch.from_numpy(np.ascontiguousarray(chunk)))
            tick(len(chunk))
    on_event(Step("quantizing to INT8 (XNNPACK quantizer: symmetric, per-channel weights)"))
    return torch.export.export(convert_pt2e(prepared), example, dynamic_shapes=shapes)


def _plan_for_declared_batch(program) -> None:
    """Plan memory for the batch range torch.export was given.

    While lowering, PyTorch's fake convolution (torch/_subclasses/fake_impls.py, conv backend
    selection) guards "batch < 16" on the traced example and narrows the batch symbol's range in
    the shape environment to 2..15, while the program's range_constraints keep the declared range.
    ExecuTorch plans every buffer at the range's upper bound (ConstraintBasedSymShapeEvalPass), so
    the program would refuse batches over 15. XNNPACK reshapes for the actual batch on every call,
    so the declared bound is restored before the memory is planned (tests check batch 1 and the
    largest against eager).
    """
    placeholders = [node for node in program.graph.nodes if node.op == "placeholder"]
    for node in placeholders:
        value = node.meta.get("val")
        for size in getattr(value, "shape", ()):
            if hasattr(size, "node"):
                size.node.shape_env.var_to_range.update(program.range_constraints)
                return


def delegation_report(graph_module) -> DelegationReport:
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    delegated, not_delegated = {}, {}
    for name, breakdown in info.delegation_by_operator.items():
        if name in _STRUCTURAL:
            continue
        if breakdown.delegated:
            delegated[name] = breakdown.delegated
        if breakdown.non_delegated:
            not_delegated[name] = breakdown.non_delegated
    return DelegationReport(info.num_delegated_subgraphs, delegated, not_delegated)


def export_verified_pte(model, output: Path, precision: str, metadata: ArtifactMetadata, reference, inputs: np.ndarray,
                        verified_on: str, *, max_batch: int = DEFAULT_MAX_BATCH, calibration: np.ndarray | None = None,
                        threads: int | None = None, on_event: Listener = ignore) -> PteResult:
    """Lower `model` (`lower`) and put it in place verified (`write_verified_pte`)."""
    manager, delegation = lower(model, precision, max_batch, calibration, on_event)
    on_event(Note(delegation.describe(), warning=not delegation.complete))
    return write_verified_pte(manager.write_to_file, delegation, output, precision, metadata, reference, inputs,
                              verified_on, max_batch=max_batch, threads=threads, on_event=on_event)


def write_verified_pte(write: Callable[[BinaryIO], None], delegation: DelegationReport, output: Path, precision: str,
                       metadata: ArtifactMetadata, reference, inputs: np.ndarray, verified_on: str, *, max_batch: int,
                       threads: int | None = None, on_event: Listener = ignore) -> PteResult:
    """Write the program (`write(file)`) and its sidecar, and put the pair in place once ExecuTorch's
    logits pass `precision`'s gate against `reference` on `inputs` (exporter/verified.py)."""

    def write_pair(staged: Path) -> None:
        on_event(Step(f"writing {output.name}"))
        with open(staged, "wb") as handle:
            write(handle)
        write_sidecar(staged, new_sidecar(
            SIDECAR, precision=precision, batch=(1, max_batch), model_path=staged,
            metadata=labelled_props(metadata, precision, {"executorch": executorch_version()}),
            executorch=executorch_version(), delegation=delegation.to_json()))

    gate = Gate(reference, inputs, precision_row(precision).gate, verified_on)
    written = write_verified(output, write_pair, lambda staged: ExecuTorchRuntime(staged, threads=threads), gate,
                             what=f"{precision} ExecuTorch", failing=f"{output.name} ({precision})", on_event=on_event)
    return PteResult(output, sidecar_path(output), precision, written.size, (1, max_batch), delegation, written.report,
                     verified_on)
