"""The `alexnet-export` command: a thin client of the exporter and runtime functions."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from alexnet_export import __version__
from alexnet_export.cli.options import checkpoint_labels, checkpoint_labels_option, trusted_key_option
from alexnet_export.errors import AlexNetExportError, ArgumentError, one_line
from alexnet_export.extras import missing_message

DEBUG_ENV = "ALEXNET_EXPORT_DEBUG"
# Library arguments whose option has another name; every other argument is its option's name.
ARGUMENT_OPTIONS = {"calibration": "calib_dir", "address": "ray", "onnx_path": "onnx_files", "engine_path": "engines"}


class _Group(click.Group):
    """Turns every failure into one line on stderr and an exit code: 1 failure, 2 usage, 130 ^C."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # one line, as every error: the message, which names the flag, without the
            raise click.UsageError(exc.format_message()) from None  # synopsis and help hint above it (--help has them)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ArgumentError as exc:  # found before any work: a usage error, with the flag that sets it
            raise click.UsageError(str(exc) + _flag_hint(self, ctx, exc.argument)) from None
        except AlexNetExportError as exc:
            raise click.ClickException(str(exc) + _flag_hint(self, ctx, exc.argument)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing was written.", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            missing = isinstance(exc, ModuleNotFoundError) and missing_message(
                exc.name or "", f"alexnet-export {ctx.invoked_subcommand}")
            if missing:  # an extra's module, imported deep below: name the extra
                raise click.ClickException(missing) from None
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {one_line(exc, 300)} (set {DEBUG_ENV}=1 for the traceback)"
            ) from None


def _flag_hint(group: click.Group, ctx: click.Context, argument: str | None) -> str:
    """" (--flag)" for the option of the running command that sets `argument`, which the library's
    error names in API terms; "" when it has none."""
    command = group.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
    name = ARGUMENT_OPTIONS.get(argument, argument)
    flag = f"--{name.replace('_', '-')}" if name else None
    flags = [max(param.opts, key=len) for param in getattr(command, "params", ())  # --output, not -o
             if (param.name == name or flag in param.opts) and isinstance(param, click.Option)]
    return f" ({flags[0]})" if flags else ""


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="alexnet-export")
def main():
    """Export the seed AlexNet to ONNX, verified against PyTorch, and run it.

    \b
    alexnet-export onnx --weights model.pt --labels classes.txt -o alexnet.onnx
    alexnet-export onnx --weights model.pt --precision int8 --calib-dir photos/     # alexnet.int8-cpu.onnx
    alexnet-export trt --int8 --weights model.pt --calib-dir photos/ -o alexnet.engine
    alexnet-export inspect alexnet.engine                                           # each layer's precision
    alexnet-export openvino --weights model.pt --precision int8 --calib-dir photos/ # alexnet.int8.xml
    alexnet-export executorch --weights model.pt --precision int8 --calib-dir photos/   # alexnet.int8.pte
    alexnet-export litert --weights model.pt --precision int8 --calib-dir photos/       # alexnet.int8.tflite
    alexnet-export predict alexnet.onnx cat.jpg dog.png
    alexnet-export classify alexnet.onnx photos/ -o results.jsonl                   # resumable batch job
    alexnet-export bench alexnet.onnx alexnet.int8-cpu.onnx alexnet.xml model.pt --json bench.json
    alexnet-export verify alexnet.int8-cpu.onnx --images val/ --labels-from-folders --reference model.pt
    alexnet-export optimize --weights model.pt --images val/ --labels-from-folders --calib-dir photos/ \\
        --max-top1-drop 1 -o best/                                    # the fastest file within 1 point
    alexnet-export sign alexnet.onnx --key private.pem                              # alexnet.onnx.sig
    alexnet-export verify-signature models/ --trusted-key public.pem
    """


def _register_commands():
    from alexnet_export.cli.bench import bench_command
    from alexnet_export.cli.classify import classify_command
    from alexnet_export.cli.export import onnx_command, ort_command, trt_command
    from alexnet_export.cli.exports import export_command
    from alexnet_export.exporter.commands import declared_commands
    from alexnet_export.cli.inspect import inspect_command
    from alexnet_export.cli.openvino import openvino_command
    from alexnet_export.cli.optimize import optimize_command
    from alexnet_export.cli.serve import serve_command, triton_command
    from alexnet_export.cli.sign import sign_command, verify_signature_command
    from alexnet_export.cli.verify import verify_command

    main.add_command(onnx_command)
    main.add_command(trt_command)
    main.add_command(ort_command)
    main.add_command(inspect_command)
    main.add_command(openvino_command)
    for spec in declared_commands():  # executorch, litert, ...: declared by their exporter packages
        main.add_command(export_command(spec))
    main.add_command(bench_command)
    main.add_command(triton_command)
    main.add_command(serve_command)
    main.add_command(verify_command)
    main.add_command(optimize_command)
    main.add_command(classify_command)
    main.add_command(sign_command)
    main.add_command(verify_signature_command)


@main.command("predict")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--top-k", type=click.IntRange(min=1),
              help="Labels to print per image.  [default: 5, or the model's class count when smaller]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--num-classes", type=click.IntRange(min=1), help="For a checkpoint MODEL: its class count (else read from it).")
@checkpoint_labels_option
@click.option("--sandbox", is_flag=True,
              help="For an .onnx from elsewhere: load and run it once in a child process with memory and time "
                   "limits first, so a file that crashes ONNX Runtime cannot take this process down.")
@trusted_key_option
def predict_command(model, images, top_k, as_json, num_classes, labels_file, sandbox, trusted_key):
    """Classify images with an exported .onnx file or a checkpoint (run eagerly).

    Preprocessing and labels come from the .onnx file's metadata (a .pte's or .tflite's sidecar, an
    engine's sidecar); a checkpoint uses the ImageNet preprocessing and the labels it carries (or
    --labels FILE).

    \b
    Examples:
      alexnet-export predict alexnet.onnx cat.jpg dog.png
      alexnet-export predict alexnet.onnx photos/*.jpg --top-k 1 --json
      alexnet-export predict checkpoint.pt cat.jpg --labels classes.txt
      alexnet-export predict downloaded.onnx cat.jpg --sandbox
      alexnet-export predict alexnet.onnx cat.jpg --trusted-key public.pem   # refused unless signed with its key
      alexnet-export classify alexnet.onnx photos/ -o results.jsonl          # many images: a resumable batch job
    """
    from alexnet_export.runtimes.table import ONNX, backend_for, backends_taking
    from alexnet_export.runtimes.registry import open_runtime

    backend = backend_for(model)
    options = {}
    if num_classes is not None:
        if not backend.takes("num_classes"):
            raise click.BadParameter(f"only applies to {backends_taking('num_classes')}", param_hint="--num-classes")
        options["num_classes"] = num_classes
    options.update(checkpoint_labels(model, labels_file))
    if sandbox:
        if backend is not ONNX:  # the sandbox probes ONNX Runtime's native code
            raise click.BadParameter(f"applies to {ONNX.kind}",
                                     param_hint="--sandbox")
        from alexnet_export.runtimes.untrusted import load_untrusted

        runtime = load_untrusted(model, trusted_key=trusted_key)
    else:
        runtime = open_runtime(model, trusted_key=trusted_key, **options)
    if top_k is None:
        top_k = min(5, runtime.metadata.num_classes)
    elif top_k > runtime.metadata.num_classes:
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


_register_commands()
