"""The files `optimize` can make: one row per kind, each made by the exporter's own library call
(exporter/pipeline.py), so every candidate is the file the export command writes, verified by
its gate before it is put in place.

The FP32 .onnx comes first and is always made: the other ONNX files, the .ort and the IRs are
converted from it. Rows whose extra is not installed, or that this machine cannot run, are
skipped with the reason (and the extra that adds them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from alexnet_export.errors import ArgumentError, MissingDependencyError
from alexnet_export.events import Listener, ignore
from alexnet_export.exporter.commands import ExportCommand, declared_commands
from alexnet_export.exporter.pipeline import (
    CalibrationOptions,
    ModelSource,
    export_onnx_file,
    export_openvino_ir,
    export_ort_file,
    make_precision_file,
)
from alexnet_export.extras import require
from alexnet_export.models.precisions import (
    BF16,
    FP16,
    FP32,
    INT4,
    INT8_CPU,
    INT8_OPENVINO,
    INT8_TENSORRT,
)
from alexnet_export.runtimes.table import ONNX, OPENVINO, backend_named
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.models.spec import precision_file_name

STEM = "alexnet"
KEEP_FLOAT = "onnx:int8-cpu+keep-float"  # made only when the plain INT8 CPU file is outside the budget
KEEP_FLOAT_FILE = f"{STEM}.keep-float.int8-cpu.onnx"


@dataclass(frozen=True)
class Work:
    """What every candidate is made from."""

    folder: Path  # OUTDIR: every candidate is written there under its own name
    source: ModelSource
    calibration: CalibrationOptions
    max_batch: int  # the largest batch a .pte takes (its memory is planned for it)
    threads: int | None
    batch: int = 1  # the timed batch: a .tflite's batch is fixed, so it is made at this one
    accept: Callable[[Path], str | None] | None = None  # the top-1 budget, for the keep-float search
    on_event: Listener = ignore

    @property
    def fp32_onnx(self) -> Path:
        return self.folder / precision_file_name(STEM, FP32)


Make = Callable[[Work, Path], Sequence[str]]  # writes the file; returns the layers it keeps in float


@dataclass(frozen=True)
class Candidate:
    id: str  # "onnx:int8-cpu": format and precision word
    format: str  # the backend table's name (runtimes/table.py): onnx, ort, openvino, executorch, litert
    precision: str  # models/precisions.py's word
    file: str  # its name in OUTDIR
    make: Make = field(repr=False, compare=False)
    needs: tuple[str, ...] = ()  # modules of core/extras.py's table it needs beyond the export extra
    declared: ExportCommand | None = field(default=None, repr=False, compare=False)  # its kind's declared command

    @property
    def calibrated(self) -> bool:
        return precision_row(self.precision).calibrated


def _onnx(precision: str) -> Make:
    def make(work: Work, output: Path) -> Sequence[str]:
        if precision == FP32:
            export_onnx_file(output, work.source, on_event=work.on_event)
            return ()
        return make_precision_file(work.fp32_onnx, precision, output, calibration=work.calibration,
                                   on_event=work.on_event).float_layers
    return make


def _keep_float(work: Work, output: Path) -> Sequence[str]:
    return make_precision_file(work.fp32_onnx, INT8_CPU, output, calibration=work.calibration, auto_keep_float=True,
                               accept=work.accept, on_event=work.on_event).float_layers


def _ort(work: Work, output: Path) -> Sequence[str]:
    export_ort_file(work.fp32_onnx, output, on_event=work.on_event)
    return ()


def _ir(precision: str) -> Make:
    def make(work: Work, output: Path) -> Sequence[str]:
        export_openvino_ir(output, fp32_onnx=work.fp32_onnx, precision=precision, calibration=work.calibration,
                           threads=work.threads, on_event=work.on_event)
        return ()
    return make


def _declared(spec: ExportCommand, precision: str) -> Make:
    """A file kind whose exporter package declares its command (exporter/commands.py): made by that call, with
    its size options set from the run (the timed batch, the largest batch)."""
    def make(work: Work, output: Path) -> Sequence[str]:
        sizes = {option.argument: getattr(work, option.optimize_value) for option in spec.options}
        spec.export_call()(output, work.source, precision=precision, calibration=work.calibration,
                           threads=work.threads, on_event=work.on_event, **sizes)
        return ()
    return make


def _row(fmt: str, precision: str, extension: str, make: Make, needs: tuple[str, ...] = (),
         declared: ExportCommand | None = None) -> Candidate:
    """A candidate named by its kind and the word that kind's command takes (the ONNX
    file's by the library's word, which tells the two INT8 files apart)."""
    word = precision if fmt == ONNX.name else backend_named(fmt).command_word(precision)
    return Candidate(f"{fmt}:{word}", fmt, precision, precision_file_name(STEM, precision, extension), make, needs,
                     declared)


CANDIDATES: tuple[Candidate, ...] = (
    _row(ONNX.name, FP32, "onnx", _onnx(FP32)),
    _row(ONNX.name, FP16, "onnx", _onnx(FP16)),
    _row(ONNX.name, INT8_CPU, "onnx", _onnx(INT8_CPU)),
    Candidate(KEEP_FLOAT, ONNX.name, INT8_CPU, KEEP_FLOAT_FILE, _keep_float),
    _row(ONNX.name, INT8_TENSORRT, "onnx", _onnx(INT8_TENSORRT)),
    _row(ONNX.name, INT4, "onnx", _onnx(INT4)),
    Candidate("ort:fp32", "ort", FP32, f"{STEM}.ort", _ort),
    _row(OPENVINO.name, FP32, "xml", _ir(FP32), ("openvino",)),
    _row(OPENVINO.name, BF16, "xml", _ir(BF16), ("openvino",)),
    _row(OPENVINO.name, INT8_OPENVINO, "xml", _ir(INT8_OPENVINO), ("openvino",)),
    *(_row(spec.name, word, spec.extension, _declared(spec, word), spec.needs, spec)
      for spec in declared_commands() for word in backend_named(spec.name).words()),
)
FIRST = CANDIDATES[0]  # the FP32 .onnx: always made, the others are converted from it
# Files optimize cannot time here, with why (a row in the report's `skipped`).
NOT_TIMED = {
    "engine": "TensorRT engines run only on an NVIDIA GPU (TensorRT for RTX: an RTX-class one); `optimize` times"
              " files on this machine's CPU: build one with `alexnet-export trt` and time it with `bench` on the GPU",
}


def select(wanted: Sequence[str] | None) -> tuple[Candidate, ...]:
    """The candidates asked for by id ("onnx:int8-cpu") or format ("openvino"), in table order, the
    FP32 .onnx always first; None: all of them. An unknown word is an ArgumentError."""
    if wanted is None:
        return CANDIDATES
    known = {c.id for c in CANDIDATES} | {c.format for c in CANDIDATES}
    unknown = [word for word in wanted if word not in known and word not in NOT_TIMED]
    if unknown:
        formats = ", ".join(dict.fromkeys(c.format for c in CANDIDATES))
        raise ArgumentError(f"candidate {unknown[0]!r} is unknown; expected formats ({formats}) or ids"
                            f" ({', '.join(c.id for c in CANDIDATES)})", argument="candidates")
    # The keep-float file is the INT8 CPU file's fallback: one comes with the other.
    pair = {"onnx:int8-cpu", KEEP_FLOAT}
    wanted = set(wanted) | (pair if pair & set(wanted) else set())
    return tuple(c for c in CANDIDATES if c is FIRST or c.id in wanted or c.format in wanted)


def skip_reason(candidate: Candidate, calibrating: bool, batch: int = 1) -> str | None:
    """Why `candidate` cannot be made here, or None: a missing extra, no calibration images, a CPU
    without BF16, a timed batch larger than a .tflite's fixed batch may be."""
    try:
        require(*candidate.needs, purpose=f"{candidate.id} files")
    except MissingDependencyError as exc:
        return str(exc)
    if candidate.calibrated and not calibrating:
        return "needs calibration images (calib_dir)"
    spec = candidate.declared
    for option in spec.options if spec else ():
        if option.optimize_value == "batch" and batch > option.maximum:
            return f"a .{spec.extension}'s {option.argument} is fixed, at most {option.maximum}; the run times batch {batch}"
    if candidate.precision == BF16:
        from alexnet_export.runtimes.openvino.runtime import cpu_supports, import_openvino

        if not cpu_supports(import_openvino().Core(), "CPU", BF16):
            return "this CPU has no BF16 instructions (AVX512_BF16 or AMX), so a BF16 IR can neither be verified nor run"
    return None


def not_timed(wanted: Sequence[str] | None) -> dict[str, str]:
    """The kinds of file left out because they cannot be timed here, with why."""
    return {kind: why for kind, why in NOT_TIMED.items() if wanted is None or kind in wanted}


def untimed_note(candidate: Candidate, missing: Sequence[int], made_at: int) -> str | None:
    """Why `candidate` was not timed at the batches `missing`, or None when it ran them all."""
    if not missing:
        return None
    batches = ", ".join(map(str, missing))
    spec = candidate.declared
    fixed = [option for option in spec.options if option.optimize_value == "batch"] if spec else []
    if fixed:
        return (f"not timed at batch {batches}: a .{spec.extension}'s batch is fixed when it is made, and optimize makes"
                f" one file per kind, at batch {made_at} (the smallest asked); `alexnet-export {spec.name}"
                f" {fixed[0].flag} N` makes the file for another batch")
    return f"not timed at batch {batches}: the file cannot run it"
