"""The benchmark's result as a terminal table, markdown, JSON and a plot."""

from __future__ import annotations

import json
from pathlib import Path

from alexnet_export.bench.results import BenchResult, ClassifyRow, ModelInfo, Row
from alexnet_export.extras import require
from alexnet_export.atomic import atomic_output

COLUMNS = ("model", "precision", "batch", "p50 ms", "p50 95% interval", "p90 ms", "p99 ms", "img/s", "roofline")
# Added where a row ran on CUDA: the device's share of the call, as trtexec splits it.
DEVICE_COLUMNS = ("device ms", "H2D ms", "compute ms", "D2H ms")


def _cells(row: Row, device: bool = False) -> tuple[str, ...]:
    roofline = f"{row.roofline_fraction:.0%} {row.roofline_basis}" if row.roofline_fraction is not None else "-"
    interval = f"[{row.p50_ci_ms[0]:.2f}, {row.p50_ci_ms[1]:.2f}]" if row.p50_ci_ms else "-"
    cells = (row.model, row.precision, str(row.batch), f"{row.p50_ms:.2f}", interval, f"{row.p90_ms:.1f}",
             f"{row.p99_ms:.1f}", f"{row.images_per_s:.1f}", roofline)
    if not device:
        return cells
    split = (row.device_ms, row.h2d_ms, row.compute_ms, row.d2h_ms)
    return cells + tuple(f"{value:.2f}" if value is not None else "-" for value in split)


def _result_table(result: BenchResult, table) -> str:
    device = any(row.device_ms is not None for row in result.results)
    return table(COLUMNS + (DEVICE_COLUMNS if device else ()), [_cells(r, device) for r in result.results])


def _model_cells(model: ModelInfo) -> tuple[str, ...]:
    cold, rss = "-", "-"
    if model.cold is not None and model.cold.error is not None:
        cold = model.cold.error
    elif model.cold is not None:
        cold, rss = f"{model.cold.seconds:.2f}", f"{model.cold.peak_rss_mb:.0f}"
    return (model.model, model.precision, model.device, f"{model.file_mb:.1f}", cold, rss)


MODEL_COLUMNS = ("model", "precision", "device", "file MB", "cold start s", "peak RSS MB")
CLASSIFY_COLUMNS = ("model", "precision", "classify p50 ms", "p90 ms")


def _classify_cells(row: ClassifyRow) -> tuple[str, ...]:
    return (row.model, row.precision, f"{row.p50_ms:.1f}", f"{row.p90_ms:.1f}")


def _header(result: BenchResult) -> str:
    machine, roofline = result.machine, result.roofline
    libraries = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items())
    return (f"{machine['cpu']}, {machine['cores']} cores ({', '.join(machine['cpu_flags']) or 'no SIMD flags read'}),"
            f" {machine['threads']} threads; {libraries}\n"
            f"FP32 matmul {roofline.matmul_gflops:.0f} GFLOP/s -> roofline {roofline.images_per_s:.0f} images/s"
            f" at {roofline.gflop_per_image} GFLOP/image; threads do not spin between runs; runtimes interleaved per round"
            + _gpu_header(machine.get("gpu"), roofline.device_gflops))


def _gpu_header(card: dict | None, rates: dict) -> str:
    if card is None:
        return ""
    measured = ", ".join(f"{math} {rate / 1e3:.0f} TFLOP/s" for math, rate in rates.items()) or "not measured"
    return (f"\nGPU: {card['name']} (sm {card['compute_capability']}), driver {card['driver'] or 'unknown'},"
            f" CUDA {card['cuda']}; matmul {measured}")


def format_table(result: BenchResult) -> str:
    parts = [_header(result),
             _result_table(result, text_table),
             text_table(MODEL_COLUMNS, [_model_cells(m) for m in result.models]),
             text_table(CLASSIFY_COLUMNS, [_classify_cells(r) for r in result.classify]),
             _recommendation(result)]
    return "\n\n".join(parts)


def _recommendation(result: BenchResult) -> str:
    """The fastest model per batch that passed its precision's gate, then the models that did not pass."""
    lines = ["on this machine, the fastest that passes its precision's gate:"]
    lines += [f"  {pick.describe()}" for pick in result.recommendation] or ["  none (see below)"]
    lines += [f"  not recommended: {check.model}: {check.detail}" for check in result.gates if not check.passed]
    return "\n".join(lines)


def to_markdown(result: BenchResult) -> str:
    parts = [_header(result).replace("\n", "  \n"),
             _result_table(result, markdown_table),
             markdown_table(MODEL_COLUMNS, [_model_cells(m) for m in result.models]),
             markdown_table(CLASSIFY_COLUMNS, [_classify_cells(r) for r in result.classify]),
             _recommendation(result).replace("\n  ", "\n- ")]
    return "\n\n".join(parts) + "\n"


def write_text(path: Path, text: str) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path, result: BenchResult) -> None:
    write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")


def plot(path: Path, result: BenchResult) -> None:
    """Latency and throughput against batch size, one line per model."""
    require("matplotlib", purpose="plotting")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(11, 4.2))
    for model in dict.fromkeys(r.model for r in result.results):
        rows = [r for r in result.results if r.model == model]
        sizes = [r.batch for r in rows]
        label = f"{model} ({rows[0].precision})"
        latency.plot(sizes, [r.p50_ms for r in rows], marker="o", label=label)
        throughput.plot(sizes, [r.images_per_s for r in rows], marker="o", label=label)
    throughput.axhline(result.roofline.images_per_s, color="grey", linestyle="--", label="FP32 roofline")
    sizes = sorted({r.batch for r in result.results})
    for axis, title in ((latency, "p50 latency (ms)"), (throughput, "throughput (images/s)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(sizes, [str(size) for size in sizes])
        axis.set_xlabel("batch size")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    throughput.legend(fontsize=7)
    figure.suptitle(f"{result.machine['cpu']}, {result.machine['threads']} threads", fontsize=9)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def text_table(columns, rows) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(columns, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)
    return "\n".join(lines)


def markdown_table(columns, rows) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)
