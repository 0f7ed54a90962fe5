"""`alexnet-export bench`."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli.options import TerminalReporter, batch_sizes_option, lists_model_files, say, trusted_key_option


@click.command("bench")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--batch-sizes", default="1,8,32", show_default=True, callback=lambda ctx, param, value: batch_sizes_option(value), help="Comma-separated.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Threads per runtime.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed rounds first.")
@click.option("--iterations", type=click.IntRange(min=1), help="Timed rounds per batch size [default: 20].")
@click.option("--seconds", type=click.FloatRange(min=0.1), help="Time budget per batch size instead of --iterations.")
@click.option("--until-stable", is_flag=True,
              help="Time until every model's median is stable (optimize's rule: docs/optimize.md; at most 200 rounds"
                   " or 60 s per batch size) instead of --iterations.")
@click.option("--no-cold-start", is_flag=True, help="Skip the fresh-process cold start and memory measurement.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the full result as JSON.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Write the tables as markdown.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG of latency and throughput vs batch.")
@trusted_key_option
@lists_model_files
def bench_command(models, batch_sizes, threads, warmup, iterations, seconds, until_stable, no_cold_start, json_path,
                  markdown, plot, trusted_key):
    """Time models through the same runtime interface, interleaved, and report medians.

    MODEL is any file a runtime loads: MODEL_FILES. For each model and batch size: p50/p90/p99 latency, images/s and, for FP32,
    the fraction of the FP32 roofline (the matrix-multiply rate measured in the same run over
    AlexNet's 1.286 GFLOP per image), and the 95% interval of each p50 (order statistics; --json
    also has p95 and why the rounds stopped). Also the end-to-end classify() time at batch 1, and
    the cold start (import + load + first inference) and peak memory in a fresh process.

    \b
    Examples:
      alexnet-export bench alexnet.onnx alexnet.int8-cpu.onnx alexnet.int8.xml checkpoint.pt
      alexnet-export bench alexnet.onnx --batch-sizes 1,16 --seconds 10 --json bench.json --plot bench.png
      alexnet-export bench alexnet.int8-cpu.onnx alexnet.int8.xml --batch-sizes 1 --until-stable
    """
    from alexnet_export.atomic import check_output_path
    from alexnet_export.bench.harness import Settings, run_benchmark
    from alexnet_export.bench.report import format_table, plot as write_plot, to_markdown, write_json, write_text

    from alexnet_export.runtimes.verification.timing import Settle

    if sum((iterations is not None, seconds is not None, until_stable)) > 1:
        raise click.UsageError("give one of --iterations, --seconds and --until-stable, not several")
    for argument, path in (("json_path", json_path), ("markdown", markdown), ("plot", plot)):
        if path is not None:  # before the measurement, not after it
            check_output_path(path, argument=argument)
    settings = Settings(batch_sizes, threads, warmup, None if seconds or until_stable else (iterations or 20), seconds,
                        not no_cold_start, trusted_key, settle=Settle() if until_stable else None)
    result = run_benchmark(list(models), settings, on_event=TerminalReporter())
    click.echo(format_table(result))
    if json_path:
        write_json(json_path, result)
    if markdown:
        write_text(markdown, to_markdown(result))
    if plot:
        write_plot(plot, result)
    for path in filter(None, (json_path, markdown, plot)):
        say(f"wrote {path}")

