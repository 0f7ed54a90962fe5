"""`alexnet-export triton`."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli_options import batch_sizes_option, say


@click.command("triton")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model repository folder.")
@click.option("--onnx", "onnx_files", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="An .onnx to serve with Triton's ONNX Runtime backend (repeatable).")
@click.option("--engine", "engines", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A TensorRT .engine (with its sidecar) to serve as a tensorrt_plan (repeatable).")
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True, help="Model instances per device kind.")
@click.option("--kind", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--preferred-batch", default="8,16", show_default=True, callback=lambda ctx, param, value: batch_sizes_option(value), help="Dynamic batching's preferred sizes.")
@click.option("--max-queue-delay-us", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--onnx-tensorrt", is_flag=True, help="With --kind gpu: let the ONNX model use Triton's TensorRT accelerator.")
@click.option("--force", is_flag=True, help="Replace models that already exist in the repository.")
def triton_command(repo, onnx_files, engines, max_batch, instances, kind, preferred_batch, max_queue_delay_us,
                   onnx_tensorrt, force):
    """Write a Triton Inference Server model repository: one model per file, each with a full
    config.pbtxt (batching, instance groups, labels) and labels.txt.

    \b
    Examples:
      alexnet-export triton --repo models/ --onnx alexnet.onnx --onnx alexnet.int8.onnx
      alexnet-export triton --repo models/ --engine alexnet.engine --kind gpu --max-batch 32
    """
    from alexnet_export.serving.triton_repo import ServingOptions, add_engine, add_onnx

    if not onnx_files and not engines:
        raise click.UsageError("give at least one --onnx or --engine")
    options = ServingOptions(max_batch, instances, kind, preferred_batch, max_queue_delay_us, onnx_tensorrt)
    entries = [add_onnx(repo, path, options, force=force) for path in onnx_files]
    entries += [add_engine(repo, path, options, force=force) for path in engines]
    for entry in entries:
        say(f"wrote {entry.folder} ({entry.platform})")
    click.echo(f"repository {repo}: {', '.join(e.name for e in entries)}")
