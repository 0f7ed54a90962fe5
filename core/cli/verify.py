"""`alexnet-export verify`: accuracy on the user's labelled images, agreement with a reference."""

from __future__ import annotations

import json
from pathlib import Path

import click

from alexnet_export.cli.options import (ProgressLine, checkpoint_labels, checkpoint_labels_option, lists_model_files,
                                        say, trusted_key_option)
from alexnet_export.errors import InputError
from alexnet_export.runtimes.verification.layer_errors import describe_layer
from alexnet_export.runtimes.verification.layers import LAYERS


@click.command("verify")
@click.argument("model", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--images", "folder", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of images, searched recursively.")
@click.option("--labels-from-folders", is_flag=True,
              help="Label each image by its class folder (DIR/<label>/...; ImageFolder layout) and report accuracy. "
                   "Folder names must be the model's labels.")
@click.option("--reference", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Another form of the same model (e.g. the checkpoint, or the FP32 .onnx): report agreement with it.")
@checkpoint_labels_option
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--min-accuracy", type=click.FloatRange(0, 100),
              help="Exit 1 when top-1 accuracy (percent) is below this.")
@click.option("--min-agreement", type=click.FloatRange(0, 100),
              help="Exit 1 when top-1 agreement with --reference (percent) is below this.")
@click.option("--per-layer", is_flag=True,
              help=f"Also compare every layer's output with --reference (both .onnx): SQNR, cosine, max abs error "
                   f"and the noise each layer adds, for {', '.join(layer.name for layer in LAYERS)}; names the "
                   f"layer that adds the most.")
@click.option("--on", "platform", type=click.Choice(["aarch64"]),
              help="Also run MODEL (an .onnx or .ort on ONNX Runtime's kernels, a .tflite on LiteRT's, a .pte on "
                   "ExecuTorch's) for this CPU architecture, under qemu "
                   "emulation on an x86_64 Linux machine with apt-get (the sandbox is built from Debian's and "
                   "PyPI's packages once, cached in $ALEXNET_EXPORT_AARCH64_DIR or ~/.cache/alexnet-export/aarch64), "
                   "and compare its logits with this machine's CPU's by the gate of the file's precision; exit 1 "
                   "when they fail it. About 10 s to start and 0.5 s per image under emulation; a .pte about 50 s to "
                   "start, and its first check downloads torch's aarch64 wheels (2.9 GB).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@trusted_key_option
@lists_model_files
def verify_command(model, folder, labels_from_folders, reference, labels_file, batch_size, min_accuracy,
                   min_agreement, per_layer, platform, as_json, trusted_key):
    """Measure MODEL on your own images: top-1/top-5 accuracy when the folders name the classes,
    and agreement with a reference model (top-1 agreement, top-5 overlap, cosine, max error).

    MODEL and --reference are any files a runtime loads: MODEL_FILES; with
    --trusted-key both must carry signatures that verify with it. With
    --min-accuracy / --min-agreement it is a gate for release scripts: the report is printed,
    then the exit code says whether the model passed.

    \b
    Examples:
      alexnet-export verify alexnet.int8-cpu.onnx --images val/ --labels-from-folders --reference checkpoint.pt
      alexnet-export verify alexnet.fp16.onnx --images photos/ --reference alexnet.onnx --min-agreement 99
      alexnet-export verify checkpoint.pt --labels classes.txt --images val/ --labels-from-folders
      alexnet-export verify alexnet.int8-cpu.onnx --per-layer --reference alexnet.onnx --images photos/
      alexnet-export verify alexnet.int8-cpu.onnx --images photos/ --on aarch64
    """
    from alexnet_export.bench.accuracy import evaluate, image_set
    from alexnet_export.runtimes.table import backend_for
    from alexnet_export.runtimes.registry import open_runtime

    if per_layer and reference is None:
        raise click.UsageError("--per-layer needs --reference FP32.onnx (the file to compare each layer with)")
    if not labels_from_folders and reference is None and platform is None:
        raise click.UsageError("nothing to measure: pass --labels-from-folders (accuracy), --reference MODEL"
                               " (agreement), --on aarch64 (another platform's kernels), or several")
    if min_accuracy is not None and not labels_from_folders:
        raise click.UsageError("--min-accuracy needs --labels-from-folders")
    if min_agreement is not None and reference is None:
        raise click.UsageError("--min-agreement needs --reference")
    if per_layer:
        from alexnet_export.bench.layers import check_layer_files

        check_layer_files(model, reference)
    if platform is not None and not labels_from_folders and reference is None:
        return _check_platform(model, folder, trusted_key, as_json, None)
    backend = backend_for(model)
    labels = checkpoint_labels(model, labels_file)
    # Verification measures the file, not the GPU's fast math: strict FP32 (TF32 off) where a backend has the switch.
    runtime = open_runtime(model, trusted_key=trusted_key, **backend.taken(tf32=False), **labels)
    reference_runtime = None
    if reference is not None:
        reference_runtime = open_runtime(reference, trusted_key=trusted_key, **backend_for(reference).taken(tf32=False))
    try:
        images = image_set(folder, runtime.metadata.labels if labels_from_folders else None)
    except InputError as exc:
        if exc.argument != "class_names":
            raise
        raise InputError(f"{exc} (`onnx --labels` when exporting; `verify --labels` for a checkpoint)") from None
    say(f"{len(images.paths)} images under {folder}" + (f", {images.classes_seen} class folders" if labels_from_folders else ""))
    result = evaluate(runtime, images, reference_runtime, batch_size, tick=ProgressLine("evaluating", len(images.paths)))
    layers = None
    if per_layer:
        from alexnet_export.bench.layers import per_layer_errors

        layers = per_layer_errors(model, reference, images.paths, runtime.metadata.preprocessing, batch_size,
                                  tick=ProgressLine("comparing layers", len(images.paths)))
    report = {"model": str(model), "reference": str(reference) if reference else None,
              "images_folder": str(folder), **result.to_dict(), **({"per_layer": layers.to_dict()} if layers else {})}
    if as_json and platform is None:
        click.echo(json.dumps(report, indent=2))
    elif not as_json:
        click.echo(_report(model, runtime, reference, result))
        if layers:
            click.echo(f"per layer, {model} against {reference} on {layers.images} images"
                       f" (the noise each layer adds is a share of its output's power):")
            click.echo(layers.table())
            click.echo(f"most noise enters at {describe_layer(layers.worst)}")
    if platform is not None:  # its figures are printed before either gate can fail the command
        return _check_platform(model, folder, trusted_key, as_json, report,
                               lambda: _gate(result, min_accuracy, min_agreement))
    _gate(result, min_accuracy, min_agreement)


def _check_platform(model: Path, folder: Path, trusted_key, as_json: bool, report: dict | None, gate=lambda: None):
    """--on aarch64: the file on that platform's kernels against this machine's, printed with (or
    after) the rest of the report; the command fails when either gate does."""
    from alexnet_export.bench.aarch64 import check_on_aarch64
    from alexnet_export.cli.options import TerminalReporter
    from alexnet_export.runtimes.preprocess import find_images

    check = check_on_aarch64(model, find_images(folder), trusted_key=trusted_key, on_event=TerminalReporter())
    if as_json:
        click.echo(json.dumps({**(report or {"model": str(model), "images_folder": str(folder)}),
                               "platform": check.to_dict()}, indent=2))
    else:
        click.echo(f"{model} on {check.platform} ({check.there}) against this machine ({check.here}),"
                   f" {check.report.samples} image{'s' if check.report.samples != 1 else ''}, in {check.seconds:.0f} s:")
        click.echo(check.report.table())
        if check.passed:
            click.echo(f"passed the {check.gate.name} gate on {check.platform}")
    gate()
    if not check.passed:
        raise click.ClickException(f"{model} on {check.platform} fails the {check.gate.name} gate against this"
                                   f" machine: {'; '.join(check.failures)}")


def _report(model: Path, runtime, reference: Path | None, result) -> str:
    lines = [f"{model} ({runtime.device}) on {result.images} images"]
    if result.skipped:
        lines.append(f"  skipped {len(result.skipped)} unreadable images, e.g. {result.skipped[0]}")
    if result.top1 is not None:
        lines.append(f"  top-1 accuracy  {result.top1:.2%}")
        lines.append(f"  top-{result.top_k} accuracy  {result.topk:.2%}")
    if result.agreement is not None:
        if result.reference_top1 is not None:
            lines.append(f"reference {reference}: top-1 accuracy {result.reference_top1:.2%}, "
                         f"top-{result.top_k} {result.reference_topk:.2%}")
        lines.append(f"agreement with {reference}:")
        lines.append(result.agreement.table())
    return "\n".join(lines)


def _gate(result, min_accuracy: float | None, min_agreement: float | None) -> None:
    if min_accuracy is None and min_agreement is None:
        return
    problems = []
    if result.skipped:  # a gate over the images that happened to load would pass a broken folder
        problems.append(f"{len(result.skipped)} images could not be read (e.g. {result.skipped[0]}); "
                        "a gate needs every image")
    if min_accuracy is not None and below(result.top1, min_accuracy):
        problems.append(f"top-1 accuracy {result.top1:.2%} is below --min-accuracy {min_accuracy:g}%")
    if min_agreement is not None and below(result.agreement.top1_agreement, min_agreement):
        problems.append(f"top-1 agreement {result.agreement.top1_agreement:.2%} is below --min-agreement {min_agreement:g}%")
    if problems:
        raise click.ClickException("; ".join(problems))


def below(fraction: float, percent: float) -> bool:
    """fraction < percent / 100, without 974/1000 counting as below 97.4 through rounding."""
    return fraction * 100 < percent - 1e-9
