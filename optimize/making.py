"""Making one `optimize` candidate and measuring its top-1, or recording why it has no file: its
export failed or could not start (NOT_MADE), or it was made and failed its gate (GATE_FAILED).

The keep-float candidate searches for the fewest layers in float that pass the INT8 gate within
the top-1 budget. When every set that passes the gate is outside the budget, the best of them
(the closest to FP32) is made anyway and listed with its measured top-1 drop: a user who may
widen the budget sees what it would buy, instead of the plain INT8 file's failed figures.
"""

from __future__ import annotations

from dataclasses import replace

from alexnet_export.bench.accuracy import ImageSet
from alexnet_export.errors import AlexNetExportError, ParityError
from alexnet_export.events import Listener, Step, Verified
from alexnet_export.exporter.onnx.auto_keep import MAX_KEPT, Int8GateError
from alexnet_export.exporter.pipeline import make_precision_file
from alexnet_export.hashing import file_sha256
from alexnet_export.models.precisions import INT8_CPU
from alexnet_export.optimize import candidates as table
from alexnet_export.optimize.measure import Accuracy, file_bytes, top1_of_file
from alexnet_export.optimize.progress import FAILED, GATE_FAILED, MADE, NOT_MADE, Record


def make(candidate: table.Candidate, work: table.Work, labelled: ImageSet, key: str,
         on_event: Listener) -> tuple[Record, bool]:
    """The candidate made and measured, or why not; and whether a rerun may reuse that (a made file,
    or a failed gate, which the same settings fail again; not other errors). The parity gates it
    passes are kept in its record for report.md."""
    gates: list[dict] = []
    detail = work.on_event

    def listen(event) -> None:
        if isinstance(event, Verified):
            gates.append({"title": event.title, "table": event.report.table()})
        detail(event)

    work = replace(work, on_event=listen)
    path = work.folder / candidate.file
    try:
        float_layers = tuple(candidate.make(work, path))
    except Int8GateError as exc:
        if candidate.id == table.KEEP_FLOAT and exc.best_passing_gate:
            try:
                return _best_outside_budget(work, exc.best_passing_gate, labelled, key, gates, on_event), True
            except AlexNetExportError:
                pass  # reported as the search's failure, below
        reason = (f"no set of up to {MAX_KEPT} layers in float passes the int8 gate"
                  f" ({exc.failure})" if candidate.id == table.KEEP_FLOAT else exc.failure)
        return Record(candidate.id, FAILED, key, reason=reason, failure=GATE_FAILED), True
    except ParityError as exc:
        return Record(candidate.id, FAILED, key, reason=str(exc), failure=GATE_FAILED), True
    except AlexNetExportError as exc:
        return Record(candidate.id, FAILED, key, reason=str(exc), failure=NOT_MADE), False
    return _measured(candidate.id, work, candidate.file, float_layers, labelled, key, gates, on_event), True


def _best_outside_budget(work: table.Work, layers: tuple[str, ...], labelled: ImageSet, key: str, gates: list[dict],
                         on_event: Listener) -> Record:
    """The keep-float file with `layers` in float, which passed the gate but not the budget."""
    on_event(Step(f"no keep-float set within the budget; making the best that passed the gate ({', '.join(layers)}"
                  " in float) to report its top-1"))
    made = make_precision_file(work.fp32_onnx, INT8_CPU, work.folder / table.KEEP_FLOAT_FILE,
                               calibration=work.calibration, keep_float=layers, on_event=work.on_event)
    return _measured(table.KEEP_FLOAT, work, table.KEEP_FLOAT_FILE, tuple(made.float_layers), labelled, key,
                     gates[-1:], on_event)  # the gate of the file made, not the search's tries


def _measured(candidate_id: str, work: table.Work, file: str, float_layers: tuple[str, ...], labelled: ImageSet,
              key: str, gates: list[dict], on_event: Listener) -> Record:
    path = work.folder / file
    accuracy = top1_of_file(path, labelled, on_event)
    return Record(candidate_id, MADE, key, file, file_sha256(path), file_bytes(path), accuracy, float_layers,
                  gates=tuple(gates))


def refusal(accuracy: Accuracy, reference: Accuracy, budget: float) -> str | None:
    """Why a file's top-1 is outside the budget, or None."""
    if accuracy.within(reference, budget):
        return None
    return (f"top-1 {accuracy.top1:.2%} is {accuracy.drop_points(reference):.2f} pp below the FP32 reference's"
            f" {reference.top1:.2%} ({accuracy.lost(reference)} answers lost); the budget is {budget:g} pp")


def needs_keep_float(done: dict, reference: Accuracy, budget: float) -> bool:
    """The keep-float file is made when the plain INT8 CPU file failed its gate or is outside the budget."""
    entry = done.get("onnx:int8-cpu")
    if entry is None:
        return False
    record = entry[0]
    return record.status == FAILED or not record.accuracy.within(reference, budget)


def progress_line(number: int, total: int, record: Record, reference: Accuracy, budget: float, reused: bool) -> str:
    """The one line a finished candidate gets: its file, size and top-1, or why it has none."""
    head = f"[{number}/{total}] {record.id}"
    if record.status == FAILED:
        return f"{head}: {record.failure or NOT_MADE}: {record.reason}"
    accuracy = record.accuracy
    kept = f", {','.join(record.float_layers)} in float" if record.float_layers else ""
    return (f"{head}: {record.file}{kept}, {record.bytes / 1e6:.1f} MB, top-1 {accuracy.top1:.2%}"
            f" ({accuracy.drop_points(reference):+.2f} pp, {accuracy.lost(reference)} lost),"
            f" {'within' if accuracy.within(reference, budget) else 'outside'} the budget"
            f"{' (reused from an earlier run)' if reused else ''}")
