"""`optimize`'s report: OUTDIR/report.json (the figures), report.md (the same as tables) and
report.png (p50 latency against top-1 drop, where matplotlib is installed)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from alexnet_export.atomic import atomic_output
from alexnet_export.bench.report import markdown_table, text_table, write_text

REPORT_JSON, REPORT_MD, REPORT_PLOT = "report.json", "report.md", "report.png"


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
    pareto: bool | None = None  # on the front of p50, top-1 drop and bytes (optimize/choice.py); None: not timed


@dataclass(frozen=True)
class Report:
    settings: dict
    machine: dict  # bench's describe_machine: CPU, flags, load average
    reference_top1: float
    images: int
    candidates: list[Row]
    skipped: dict[str, str]  # candidate or kind of file -> why it was not made or measured
    chosen: str | None  # the chosen file's path (OUTDIR/<file>); None when no file is within the budget
    bench: dict = field(default_factory=dict)  # the whole bench run the p50 figures come from
    tie: tuple[str, ...] = ()  # ids of the files within the budget whose p50 interval overlaps the fastest's
    decided_by: str = ""  # the rule that chose, in one sentence
    timing: dict = field(default_factory=dict)  # the rounds' rule, how many ran and why they stopped

    def to_dict(self) -> dict:
        return {"settings": self.settings, "machine": self.machine, "reference_top1": self.reference_top1,
                "images": self.images, "candidates": [asdict(row) for row in self.candidates],
                "skipped": self.skipped, "chosen": self.chosen, "tie": list(self.tie), "decided_by": self.decided_by,
                "timing": self.timing, "bench": self.bench}


COLUMNS = ("file", "format", "precision", "MB", "top-1", "drop (pp)", "lost", "p50 ms [95% interval]", "gate",
           "within budget", "Pareto")


def _cells(row: Row, chosen: str | None) -> tuple[str, ...]:
    mark = " (chosen)" if chosen is not None and Path(chosen).name == row.file else ""
    kept = f" ({','.join(row.float_layers)} in float)" if row.float_layers else ""
    return (row.file + mark, row.format, row.precision + kept, f"{row.bytes / 1e6:.1f}", f"{row.top1:.2%}",
            f"{row.top1_drop:+.2f}", str(row.answers_lost), _p50(row), row.gate, "yes" if row.within_budget else "no",
            {True: "yes", False: "no", None: "-"}[row.pareto])


def _p50(row: Row) -> str:
    if row.p50_ms is None:
        return "-"
    interval = f" [{row.p50_ci_ms[0]:.2f}, {row.p50_ci_ms[1]:.2f}]" if row.p50_ci_ms else ""
    return f"{row.p50_ms:.2f}{interval}"


def _summary(report: Report) -> list[str]:
    settings, machine = report.settings, report.machine
    lines = [f"{report.images} labelled images; FP32 reference (eager PyTorch) top-1 {report.reference_top1:.2%};"
             f" budget {settings['max_top1_drop']:g} pp; objective {settings['objective']};"
             f" batch {settings['batch_size']}, {settings['threads']} threads",
             f"CPU: {machine.get('cpu')} ({machine.get('cores')} cores; {', '.join(machine.get('cpu_flags') or [])});"
             f" load average {_load(machine.get('load_average'))}"]
    lines.append(f"chosen: {report.chosen}" if report.chosen else "chosen: none (no candidate is within the budget)")
    if report.tie:
        lines.append(f"tie (95% intervals of p50 overlapping the fastest's): {', '.join(report.tie)}")
    if report.decided_by:
        lines.append(f"decided by: {report.decided_by}")
    if report.timing:
        lines.append(f"timing: {report.timing['rounds']} interleaved rounds ({report.timing['stopped']}); rule:"
                     f" {report.timing['rule']}")
    lines.extend(f"not measured: {what}: {why}" for what, why in report.skipped.items())
    return lines


def _load(load) -> str:
    return f"{load[0]} before the timing, {load[1]} after" if load else "not measured"


def to_text(report: Report) -> str:
    return "\n".join([text_table(COLUMNS, [_cells(row, report.chosen) for row in report.candidates]),
                      *_summary(report)])


def to_markdown(report: Report) -> str:
    table = markdown_table(COLUMNS, [_cells(row, report.chosen) for row in report.candidates])
    return "\n\n".join([table, "\n".join(f"- {line}" for line in _summary(report))]) + "\n"


def write_report(folder: Path, report: Report) -> list[Path]:
    """report.json, report.md, and report.png when matplotlib is installed; the paths written."""
    written = [folder / REPORT_JSON, folder / REPORT_MD]
    write_text(written[0], json.dumps(report.to_dict(), indent=2) + "\n")
    write_text(written[1], to_markdown(report))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return written
    plot(folder / REPORT_PLOT, report)
    return [*written, folder / REPORT_PLOT]


def plot(path: Path, report: Report) -> None:
    """p50 latency (with its 95% interval) against top-1 drop, one point per file, the Pareto front's
    ringed, the budget as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    for row in (r for r in report.candidates if r.p50_ms is not None):
        chosen = report.chosen is not None and Path(report.chosen).name == row.file
        color = "tab:green" if row.within_budget else "tab:red"
        if row.p50_ci_ms:
            low, high = row.p50_ci_ms
            axis.errorbar(row.top1_drop, row.p50_ms, yerr=[[row.p50_ms - low], [high - row.p50_ms]], color=color,
                          linewidth=1, capsize=2)
        axis.scatter(row.top1_drop, row.p50_ms, marker="*" if chosen else "o", s=140 if chosen else 40, color=color,
                     edgecolors="black" if row.pareto else "none", linewidths=1.2)
        axis.annotate(row.file, (row.top1_drop, row.p50_ms), fontsize=7, xytext=(4, 3), textcoords="offset points")
    axis.axvline(report.settings["max_top1_drop"], color="grey", linestyle="--", label="budget")
    axis.scatter([], [], color="white", edgecolors="black", label="Pareto front (p50, top-1 drop, bytes)")
    axis.set_xlabel("top-1 drop from the FP32 reference (percentage points)")
    axis.set_ylabel(f"p50 latency at batch {report.settings['batch_size']} (ms)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.suptitle(f"{report.machine.get('cpu')}, {report.settings['threads']} threads", fontsize=9)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
