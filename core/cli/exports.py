"""The export commands declared as data by the backends' exporter packages (exporter/commands.py): one
click command each, made here from the backend table's rows, so a file kind that exports from the
checkpoint adds no module to the CLI."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli.options import TerminalReporter, calibration_image_options, sign_key_option, source_options
from alexnet_export.exporter.commands import ExportCommand
from alexnet_export.runtimes.table import backend_named


def export_command(spec: ExportCommand) -> click.Command:
    """`alexnet-export <spec.name>`: -o, --precision, where the model comes from, the calibration images,
    the spec's own size options and --sign-key; it calls the spec's export and prints its summary."""
    precisions = backend_named(spec.name).command_words()  # the command's words -> the library's

    def run(output, precision, weights, num_classes, seed, labels, calib_dir, calib_count, sign_key, **sizes):
        from alexnet_export.exporter.pipeline import CalibrationOptions, ModelSource

        result = spec.export_call()(output, ModelSource(weights, num_classes, seed, labels),
                                    precision=precisions[precision],
                                    calibration=CalibrationOptions(calib_dir, calib_count),
                                    sign_key=sign_key, on_event=TerminalReporter(), **sizes)
        for line in spec.summary_lines(result, precision):
            click.echo(line)

    command = sign_key_option(run)
    for option in reversed(spec.options):
        command = click.option(option.flag, option.argument, type=click.IntRange(min=1), default=option.default,
                               show_default=True, help=option.help)(command)
    command = source_options(calibration_image_options(command))
    command = click.option("--precision", type=click.Choice(list(precisions)), default="fp32", show_default=True,
                           help=spec.precision_help)(command)
    command = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                           help=spec.output_help)(command)
    return click.command(spec.name, help=spec.help)(command)
