"""`alexnet-export optimize`: a thin client of alexnet_export.optimize.optimize."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from alexnet_export.cli.options import (
    TerminalReporter,
    batch_sizes_option,
    calibration_from,
    calibration_options,
    say,
)
from alexnet_export.cli.status_line import StatusLine


def _words(ctx, param, value: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else None


@click.command("optimize")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint (.pt/.pth weights-only, or .safetensors). Without it: seeded random weights.")
@click.option("--num-classes", type=click.IntRange(min=1), help="Class count (else read from --weights).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights (no --weights).")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Class names, one per line (default: ImageNet's 1000 names); the folders of --images name them.")
@click.option("--images", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Labelled images, DIR/<label>/<image> (ImageFolder layout), at least 20: top-1 is measured on them.")
@click.option("--labels-from-folders", is_flag=True,
              help="Label each image by its class folder (required: optimize measures top-1 accuracy).")
@calibration_options
@click.option("--max-top1-drop", type=float, required=True, metavar="PCT",
              help="Top-1 percentage points the chosen file may lose against the FP32 model (0..100); 0 keeps "
                   "every answer the FP32 model got right.")
@click.option("--objective", default="latency", show_default=True, metavar="latency|throughput|size",
              help="latency: the fastest file within the budget (p50 at --batch-size); throughput: the (file, batch)"
                   " with the most images/s at --batch-sizes whose p95 keeps --max-latency-ms; size: the smallest.")
@click.option("--batch-size", type=int, default=1, show_default=True, help="The batch the files are timed at.")
@click.option("--batch-sizes", metavar="LIST", callback=lambda ctx, param, value: value and batch_sizes_option(value),
              help="--objective throughput: the batches every file is timed at, comma-separated [default: 1,8,32].")
@click.option("--max-latency-ms", type=float, metavar="MS",
              help="--objective throughput: the p95 latency a batch must keep [default: none, the most images/s].")
@click.option("--threads", type=int, default=2, show_default=True, help="Threads each runtime is timed with.")
@click.option("--candidates", callback=_words, metavar="LIST",
              help="Only these formats (onnx, ort, openvino, executorch, litert, ncnn) or ids (onnx:int8-cpu, openvino:bf16, ...), "
                   "comma-separated [default: every file the installed extras can make].")
@click.option("--bench-rounds", type=click.IntRange(min=1), metavar="N",
              help="Time exactly N interleaved rounds [default: until every file's median is stable, at most 200"
                   " rounds or 60 s; docs/optimize.md].")
@click.option("--keep-all", is_flag=True, help="Keep every candidate file in OUTDIR, not only the chosen one.")
@click.option("--verbose", is_flag=True, help="Show every export's steps and parity tables (report.md has the tables"
                                             " either way).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), metavar="OUTDIR",
              help="Folder for the chosen file and report.json / report.md / report.png (created; a rerun resumes).")
def optimize_command(weights, num_classes, seed, labels, images, labels_from_folders, calib_dir, calib_count,
                     calib_method, cache_dir, max_top1_drop, objective, batch_size, batch_sizes, max_latency_ms, threads,
                     candidates, bench_rounds, keep_all, verbose, output):
    """Make every file the installed extras can make, measure each on your labelled images (top-1,
    as `verify`) and in one interleaved bench (p50, as `bench`), and keep the fastest within a top-1
    budget (--objective size: the smallest; --objective throughput: the most images/s at
    --batch-sizes whose p95 keeps --max-latency-ms). Files whose 95% intervals overlap the best's
    are a tie, broken by the fewest bytes, then the fewest extras, then the id (report.json: tie,
    decided_by).

    Every candidate is gated like its export command's file; an INT8 CPU file outside the budget
    brings a keep-float variant (the fewest layers in float that bring it within). One line per
    candidate and the summary (--verbose: every step and parity table); Ctrl-C or a crash loses no finished candidate: the same command resumes
    (by the checkpoint's sha256 and the settings). OUTDIR gets the chosen file (with its
    companions), report.json, report.md and report.png (with matplotlib).

    \b
    Examples:
      alexnet-export optimize --weights model.pt --images val/ --labels-from-folders \\
          --calib-dir photos/ --max-top1-drop 1 -o best/
      alexnet-export optimize --weights model.pt --images val/ --labels-from-folders \\
          --calib-dir photos/ --max-top1-drop 0 --objective size --candidates onnx,openvino -o small/
      alexnet-export optimize --weights model.pt --images val/ --labels-from-folders \\
          --calib-dir photos/ --max-top1-drop 1 --objective throughput --batch-sizes 1,8,32 \\
          --max-latency-ms 50 -o server/
    """
    from alexnet_export.optimize import optimize

    if not labels_from_folders:
        raise click.UsageError("optimize measures top-1 on labelled images: pass --labels-from-folders"
                               " (--images DIR/<label>/<image>)")
    reporter = TerminalReporter() if verbose else StatusLine()
    try:
        result = optimize(weights, images, output, max_top1_drop=max_top1_drop,
                          calibration=calibration_from(calib_dir, calib_count, calib_method, cache_dir),
                          objective=objective, batch_size=batch_size, batch_sizes=batch_sizes,
                          max_latency_ms=max_latency_ms, threads=threads, num_classes=num_classes, seed=seed,
                          labels=labels, candidates=candidates, keep_all=keep_all, bench_rounds=bench_rounds,
                          on_event=reporter, on_detail=reporter if verbose else reporter.detail)
    except KeyboardInterrupt:
        say(f"interrupted: the candidates already measured are kept in {output}; the same command resumes")
        sys.exit(130)
    from alexnet_export.optimize.report import to_text

    click.echo(to_text(result.report))
    click.echo(f"wrote {', '.join(str(path) for path in result.written)}")
    if result.chosen is None:
        raise click.ClickException(f"no candidate is within --max-top1-drop {max_top1_drop:g}; the report"
                                   f" lists each file's top-1 drop")
