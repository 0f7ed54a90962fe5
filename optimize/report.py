"""`optimize`'s report: OUTDIR/report.json (the figures), report.md (the same as tables) and
report.png (p50 latency against top-1 drop, where matplotlib is installed)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from alexnet_export.bench.report import markdown_table, text_table, write_text

REPORT_JSON, REPORT_MD, REPORT_PLOT = "report.json", "report.md", "report.png"


@dataclass(frozen=True)
class BatchTiming:
    """One file at one timed batch (bench's figures)."""

    batch: int
    p50_ms: float
    p95_ms: float
    images_per_s: float  # batch / p50
    p50_ci_ms: tuple[float, float] | None = None


@dataclass(frozen=True)
class Row:
    """One candidate file, measured."""

    id: str  # "onnx:int8-cpu"
    file: str  # its name in OUTDIR
    format: str
    precision: str
    bytes: int
    top1: float  # 0..1 on the labelled images
    top1_drop: float  # percentage points below the FP32 reference (negative: above)
    answers_lost: int  # images the reference got right and this file gets wrong
    p50_ms: float | None  # at the chosen batch; None where it could not run that batch
    gate: str  # bench's check against the run's FP32 model: "passed", or the figures that failed
    within_budget: bool
    float_layers: tuple[str, ...] = ()
    reused: bool = False  # measured by an earlier run with the same checkpoint and settings
    p50_ci_ms: tuple[float, float] | None = None  # the 95% interval of p50, by order statistics
    pareto: bool | None = None  # on the front of speed, top-1 drop and bytes (optimize/choice.py); None: not timed
    by_batch: tuple[BatchTiming, ...] = ()  # every batch it was timed at; p50_ms above is the first's
    note: str | None = None  # why it was not timed at every batch asked, where it was not


@dataclass(frozen=True)
class Report:
    settings: dict
    machine: dict  # bench's describe_machine: CPU, flags, load average
    reference_top1: float
    images: int
    candidates: list[Row]
    not_chosen: list[dict]  # {id, kind, reason}: not made, failed its gate, outside the budget, ... (optimize/choice.py)
    chosen: str | None  # the chosen file's path (OUTDIR/<file>); None when no file is within the budget
    bench: dict = field(default_factory=dict)  # the whole bench run the p50 figures come from
    tie: tuple[str, ...] = ()  # ids of the files within the budget whose p50 interval overlaps the fastest's
    decided_by: str = ""  # the rule that chose, in one sentence
    timing: dict = field(default_factory=dict)  # the rounds' rule, how many ran and why they stopped
    chosen_batch: int | None = None  # the batch the chosen file was chosen at (throughput: its best within the budget)
    gates: list[dict] = field(default_factory=list)  # {id, title, table}: each made file's parity gate (report.md)

    def to_dict(self) -> dict:
        return {"settings": self.settings, "machine": self.machine, "reference_top1": self.reference_top1,
                "images": self.images, "candidates": [asdict(row) for row in self.candidates],
                "not_chosen": self.not_chosen, "chosen": self.chosen, "chosen_batch": self.chosen_batch,
                "tie": list(self.tie), "decided_by": self.decided_by, "timing": self.timing, "bench": self.bench}


COLUMNS = ("file", "format", "precision", "MB", "top-1", "drop (pp)", "lost", "p50 ms [95% interval]", "gate",
           "within budget", "Pareto")


def _cells(row: Row, chosen: str | None) -> tuple[str, ...]:
    mark = " (chosen)" if chosen is not None and Path(chosen).name == row.file else ""
    kept = f" ({','.join(row.float_layers)} in float)" if row.float_layers else ""
    return (row.file + mark, row.format, row.precision + kept, f"{row.bytes / 1e6:.1f}", f"{row.top1:.2%}",
            f"{row.top1_drop:+.2f}", str(row.answers_lost), _p50(row), row.gate, "yes" if row.within_budget else "no",
            {True: "yes", False: "no", None: "-"}[row.pareto])


def _p50(row: Row | BatchTiming) -> str:
    if row.p50_ms is None:
        return "-"
    interval = f" [{row.p50_ci_ms[0]:.2f}, {row.p50_ci_ms[1]:.2f}]" if row.p50_ci_ms else ""
    return f"{row.p50_ms:.2f}{interval}"


def _summary(report: Report) -> list[str]:
    settings, machine = report.settings, report.machine
    lines = [f"{report.images} labelled images; FP32 reference (eager PyTorch) top-1 {report.reference_top1:.2%};"
             f" budget {settings['max_top1_drop']:g} pp; objective {settings['objective']}; {_batches(settings)},"
             f" {settings['threads']} threads",
             f"CPU: {machine.get('cpu')} ({machine.get('cores')} cores; {', '.join(machine.get('cpu_flags') or [])});"
             f" load average {_load(machine.get('load_average'))}"]
    at = f" at batch {report.chosen_batch}" if report.chosen and len(settings.get("batches", ())) > 1 else ""
    lines.append(f"chosen: {report.chosen}{at}" if report.chosen else "chosen: none (no candidate is within the budget)")
    if report.tie:
        lines.append(f"tie (95% intervals overlapping the best's): {', '.join(report.tie)}")
    if report.decided_by:
        lines.append(f"decided by: {report.decided_by}")
    if report.timing:
        lines.append(f"timing: {report.timing['rounds']} interleaved rounds ({report.timing['stopped']}); rule:"
                     f" {report.timing['rule']}")
    return lines


def _batches(settings: dict) -> str:
    batches = settings.get("batches") or [settings["batch_size"]]
    if len(batches) == 1:
        return f"batch {batches[0]}"
    budget = settings.get("max_latency_ms")
    return f"batches {', '.join(map(str, batches))}" + (f", p95 within {budget:g} ms" if budget is not None else "")


def _load(load) -> str:
    return f"{load[0]} before the timing, {load[1]} after" if load else "not measured"


def _not_chosen(report: Report, kinds: tuple[str, ...] | None = None) -> list[str]:
    return [f"{entry['id']}: {entry['kind']}: {entry['reason']}" for entry in report.not_chosen
            if kinds is None or entry["kind"] in kinds]


BATCH_COLUMNS = ("file", "batch", "p50 ms [95% interval]", "p95 ms", "images/s")


def _batch_rows(report: Report) -> list[tuple[str, ...]]:
    return [(row.file, str(t.batch), _p50(t), f"{t.p95_ms:.2f}", f"{t.images_per_s:.1f}")
            for row in report.candidates for t in row.by_batch]


def to_text(report: Report) -> str:
    """The terminal's summary: the table, the choice, and the candidates that have no row (not made
    or failed their gate); report.md has every reason."""
    parts = [text_table(COLUMNS, [_cells(row, report.chosen) for row in report.candidates])]
    if len(report.settings.get("batches", ())) > 1:
        parts.append(text_table(BATCH_COLUMNS, _batch_rows(report)))
    return "\n".join([*parts, *_summary(report), *_not_chosen(report, ("not made", "failed its gate"))])


def to_markdown(report: Report) -> str:
    parts = [markdown_table(COLUMNS, [_cells(row, report.chosen) for row in report.candidates])]
    if len(report.settings.get("batches", ())) > 1:
        parts.append(markdown_table(BATCH_COLUMNS, _batch_rows(report)))
    parts.append("\n".join(f"- {line}" for line in _summary(report)))
    if report.not_chosen:
        parts.append("Not chosen:\n\n" + "\n".join(f"- {line}" for line in _not_chosen(report)))
    gates = [f"{entry['title']}:\n\n```\n{entry['table']}\n```" for entry in report.gates]
    if gates:
        parts.append("Parity gates of the files made in this folder:\n\n" + "\n\n".join(gates))
    return "\n\n".join(parts) + "\n"


def write_report(folder: Path, report: Report) -> list[Path]:
    """report.json, report.md, and report.png when matplotlib is installed; the paths written."""
    written = [folder / REPORT_JSON, folder / REPORT_MD]
    write_text(written[0], json.dumps(report.to_dict(), indent=2) + "\n")
    write_text(written[1], to_markdown(report))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return written
    from alexnet_export.optimize.plot import plot

    plot(folder / REPORT_PLOT, report)
    return [*written, folder / REPORT_PLOT]
