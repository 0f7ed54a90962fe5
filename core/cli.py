"""The `alexnet-export` command: a thin client of the exporter and runtime functions."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from alexnet_export import __version__
from alexnet_export.errors import AlexNetExportError

DEBUG_ENV = "ALEXNET_EXPORT_DEBUG"


class _Group(click.Group):
    """Turns every failure into one line on stderr and an exit code: 1 failure, 2 usage, 130 ^C."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except AlexNetExportError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing was written.", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            message = " ".join(str(exc).split())[:300]
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {message} (set {DEBUG_ENV}=1 for the traceback)"
            ) from None


def _say(message: str) -> None:
    click.echo(message, err=True)


class _BatchType(click.ParamType):
    name = "dynamic|N"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int) or value == "dynamic":
            return value
        try:
            size = int(value)
        except ValueError:
            size = 0
        if size < 1:
            self.fail(f"{value!r} is neither 'dynamic' nor a positive integer", param, ctx)
        return size


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="alexnet-export")
def main():
    """Export the seed AlexNet to ONNX, verified against PyTorch, and run it.

    \b
    alexnet-export onnx --weights model.pt -o alexnet.onnx
    alexnet-export predict alexnet.onnx cat.jpg dog.png
    """


@main.command("onnx")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="alexnet.onnx",
              show_default=True, help="Where to write the .onnx file (replaced atomically).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="State dict to export: .pt/.pth (loaded weights-only) or .safetensors. "
                   "Without it: seeded random weights.")
@click.option("--num-classes", type=click.IntRange(min=1),
              help="Class count. Read from --weights when not given; 1000 for random weights.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights (no --weights).")
@click.option("--opset", type=click.IntRange(18, 23), default=18, show_default=True, help="ONNX opset to target.")
@click.option("--batch", type=_BatchType(), default="dynamic", show_default=True,
              help="'dynamic' batch dimension, or a fixed batch size N.")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Class names, one per line, stored in the file (default: ImageNet's 1000 names).")
@click.option("--no-verify", is_flag=True, help="Skip the eager-vs-ONNX Runtime parity check.")
def onnx_command(output, weights, num_classes, seed, opset, batch, labels, no_verify):
    """Export the seed AlexNet to one self-contained, self-describing ONNX file.

    The file has input `images` (float32, N x 3 x 224 x 224, normalised RGB) and output
    `logits`, each LRN as one native ONNX node, and carries its preprocessing, labels, weights
    hash and tool versions. Unless --no-verify, ONNX Runtime's logits are compared with eager
    PyTorch's before the file is put in place; a failed check leaves no file.

    \b
    Examples:
      alexnet-export onnx --weights checkpoint.pt -o alexnet.onnx
      alexnet-export onnx --weights model.safetensors --labels classes.txt --batch 8
      alexnet-export onnx --num-classes 10 --seed 3 -o random10.onnx
    """
    from alexnet_export.exporter.onnx import export_onnx, tool_versions
    from alexnet_export.models.labels import read_labels_file
    from alexnet_export.models.spec import ArtifactMetadata, default_labels
    from alexnet_export.models.weights import load_alexnet

    started = time.perf_counter()
    _say(f"loading {'weights from ' + str(weights) if weights else 'random weights'}")
    loaded = load_alexnet(weights, num_classes=num_classes, seed=seed)
    if loaded.random_init:
        click.secho(f"warning: no --weights given: this AlexNet has random weights (seed {seed}); "
                    "its predictions are meaningless.", fg="yellow", err=True)
    classes = loaded.model.num_classes
    try:
        class_names = read_labels_file(labels, classes) if labels else default_labels(classes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from None
    metadata = ArtifactMetadata(classes, class_names, loaded.source, tool_versions=tool_versions())
    result = export_onnx(loaded.model, output, metadata, opset=opset,
                         batch=None if batch == "dynamic" else batch, verify=not no_verify, progress=_say)
    if result.report is not None:
        click.echo("parity, eager PyTorch vs ONNX Runtime (CPU):")
        click.echo(result.report.table())
    else:
        click.secho("warning: --no-verify: the file was not compared with PyTorch.", fg="yellow", err=True)
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, {len(result.operators)} nodes, "
               f"{classes} classes) in {time.perf_counter() - started:.1f}s")


@main.command("predict")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Labels to print per image.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--num-classes", type=click.IntRange(min=1), help="For a checkpoint MODEL: its class count (else read from it).")
def predict_command(model, images, top_k, as_json, num_classes):
    """Classify images with an exported .onnx file or a checkpoint (run eagerly).

    Preprocessing and labels come from the .onnx file's metadata; a checkpoint uses the
    ImageNet defaults.

    \b
    Examples:
      alexnet-export predict alexnet.onnx cat.jpg dog.png
      alexnet-export predict alexnet.onnx photos/*.jpg --top-k 1 --json
      alexnet-export predict checkpoint.pt cat.jpg
    """
    from alexnet_export.runtimes.registry import CHECKPOINT_SUFFIXES, open_runtime

    options = {}
    if num_classes is not None:
        if model.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise click.BadParameter("only applies to a checkpoint MODEL", param_hint="--num-classes")
        options["num_classes"] = num_classes
    runtime = open_runtime(model, **options)
    if top_k > runtime.metadata.num_classes:
        raise click.BadParameter(f"{top_k} is more than the model's {runtime.metadata.num_classes} classes",
                                 param_hint="--top-k")
    results = [(image, runtime.classify([image], top_k=top_k)[0]) for image in images]
    if as_json:
        click.echo(json.dumps([
            {"image": str(image), "predictions": [{"label": label, "probability": p} for label, p in preds]}
            for image, preds in results
        ], indent=2))
        return
    for image, predictions in results:
        click.echo(f"{image}:")
        for label, probability in predictions:
            click.echo(f"  {probability:7.2%}  {label}")
