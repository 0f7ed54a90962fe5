"""report.png: p50 latency against top-1 drop, one point per file (matplotlib, where installed)."""

from __future__ import annotations

from pathlib import Path

from alexnet_export.atomic import atomic_output


def plot(path: Path, report) -> None:
    """p50 latency (with its 95% interval) against top-1 drop, one point per file, the Pareto front's
    ringed, the budget as a line. report: optimize/report.py's Report (which imports this module)."""
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
