"""Option groups and output helpers shared by the CLI's commands."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import click

from alexnet_export.events import Advance, Event, Note, Verified
from alexnet_export.exporter.calibration.ranges import DEFAULT_METHOD, METHODS, MIN_IMAGES, RECOMMENDED_IMAGES
from alexnet_export.runtimes.verification.layers import LAYERS, WEIGHTED
from alexnet_export.runtimes.signing import SIGNATURE_SUFFIX, TRUSTED_KEY_ENV


def say(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    """A warning line on stderr: "warning: ..." (in yellow on a terminal)."""
    click.secho(message if message.startswith("warning") else f"warning: {message}", fg="yellow", err=True)


def batch_sizes_option(value: str) -> tuple[int, ...]:
    """Click callback body: "1,8,32" -> (1, 8, 32), or a usage error that shows the form."""
    try:
        sizes = tuple(int(part) for part in value.split(",") if part)
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of positive integers, e.g. 1,8,32")
    return sizes


def lists_model_files(command):
    """Fills MODEL_FILES in a command's help with the kinds of file the backend registry opens
    (applied under @click.command, so the help is complete when Click reads it)."""
    from alexnet_export.runtimes.table import file_kinds

    command.__doc__ = command.__doc__.replace("MODEL_FILES", file_kinds())
    return command


def source_options(command):
    """Where the model comes from: --weights, --num-classes, --seed, --labels."""
    decorators = [
        click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
                     help="State dict to export: .pt/.pth (loaded weights-only) or .safetensors. "
                          "Without it: seeded random weights."),
        click.option("--num-classes", type=click.IntRange(min=1),
                     help="Class count. Read from --weights when not given; 1000 for random weights."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights (no --weights)."),
        click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="Class names, one per line, stored in the file (default: the names the checkpoint "
                          "carries, else ImageNet's at 1000 classes; other counts get class_N, with a warning)."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def checkpoint_labels_option(command):
    """--labels for a MODEL that is a checkpoint (predict, classify, serve, verify): one option, one help."""
    return click.option(
        "--labels", "labels_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="For a checkpoint MODEL: its class names, one per line (default: the names the checkpoint carries, "
             "else ImageNet's at 1000 classes and class_N otherwise). An exported file carries its own.",
    )(command)


def checkpoint_labels(model: Path, labels_file: Path | None) -> dict:
    """The runtime option --labels sets ({} without it); a usage error for a MODEL that carries its labels.
    Its count is checked against the model's classes when the runtime opens it (exit 2, naming --labels)."""
    if labels_file is None:
        return {}
    from alexnet_export.runtimes.table import backend_for, backends_taking

    backend = backend_for(model)
    if not backend.takes("labels"):
        raise click.BadParameter(f"only applies to {backends_taking('labels')}; {backend.description} carries its"
                                 " labels", param_hint="--labels")
    return {"labels": labels_file}


def model_options(command):
    """Where the model comes from, and the ONNX opset: shared by `onnx`, `trt` and `openvino`."""
    command = click.option("--opset", type=click.IntRange(18, 23), default=18, show_default=True,
                           help="ONNX opset to target.")(command)
    return source_options(command)


def model_source(weights, num_classes, seed, labels, fp32_onnx=None):
    """The pipeline's ModelSource for the model options; None with --onnx and none of them, since
    the file holds the model (the pipeline refuses both)."""
    from alexnet_export.exporter.pipeline import ModelSource

    if fp32_onnx is not None and weights is None and num_classes is None and labels is None:
        return None
    return ModelSource(weights, num_classes, seed, labels)


def calibration_from(calib_dir, calib_count, calib_method, cache_dir):
    """The pipeline's CalibrationOptions for the calibration options."""
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    return CalibrationOptions(calib_dir, calib_count, calib_method, cache_dir)


def calibration_image_options(command):
    """The calibration images: --calib-dir and --calib-count."""
    decorators = [
        click.option("--calib-dir", type=click.Path(file_okay=False, path_type=Path),
                     help=f"Folder of images (searched recursively; an ImageFolder tree works), at least {MIN_IMAGES}."),
        click.option("--calib-count", type=click.IntRange(min=MIN_IMAGES), default=RECOMMENDED_IMAGES, show_default=True,
                     help="Images to calibrate on (a seeded sample when the folder has more); up to 64 more are held out to verify on."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def calibration_options(command):
    """Images for INT8 calibration (and real-image verification of FP16), and how ONNX Runtime's
    calibrators turn them into ranges."""
    decorators = [
        click.option("--calib-method", type=click.Choice(METHODS), default=DEFAULT_METHOD, show_default=True,
                     help="How activation ranges are chosen."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Where calibration ranges are cached (default: ~/.cache/alexnet-export/calibration)."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return calibration_image_options(command)


def float_layer_options(command):
    """INT8 layers kept in float: shared by `onnx` and `trt`."""
    names = ", ".join(f"{layer.name} ({layer.module})" for layer in LAYERS if layer.name in WEIGHTED)
    decorators = [
        click.option("--keep-float", metavar="LAYERS", callback=_layer_names, default="",
                     help=f"INT8 only: comma-separated layers whose weights and input activations stay float, by the "
                          f"paper's names (the seed's modules): {names}. `verify --per-layer` shows where a file "
                          f"loses accuracy; a failed INT8 gate names the layer to keep."),
        click.option("--auto-keep-float", is_flag=True,
                     help="INT8 only: when the file fails its gate, keep the fewest layers in float that make it "
                          "pass (each try is a quantization and a gate run), and report them, the accuracy before "
                          "and after and the speed cost; or fail with the best it reached. Off by default: a failed "
                          "gate stops and says which layer to keep."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _layer_names(ctx, param, value: str) -> tuple[str, ...]:
    from alexnet_export.runtimes.verification.layers import LayerError, weighted_layers

    try:
        return weighted_layers(value)
    except LayerError as exc:
        raise click.BadParameter(str(exc)) from None


def trusted_key_option(command):
    """--trusted-key: the model's signature is verified before anything of it is read."""
    return click.option(
        "--trusted-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"PEM public key (or CA certificate) that the model's signature (MODEL{SIGNATURE_SUFFIX} beside it) must "
             "verify with, covering its companion files, before any of it is read: an unsigned or altered model, or "
             f"one signed by another key, is refused. Default: the file ${TRUSTED_KEY_ENV} names, when set.",
    )(command)


def sign_key_option(command):
    """--sign-key: the export signs each model file as it is put in place."""
    return click.option(
        "--sign-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"PEM elliptic-curve private key: sign each model file as it is put in place (FILE{SIGNATURE_SUFFIX} "
             "beside it, covering its companion files, in model-signing's format), so that a file is never there "
             "without its signature. Check with `alexnet-export verify-signature` or --trusted-key.",
    )(command)


@contextlib.contextmanager
def int8_gate_in_flags():
    """A failed INT8 gate's advice, in this CLI's flag names."""
    from alexnet_export.exporter.onnx.auto_keep import Int8GateError

    try:
        yield
    except Int8GateError as exc:
        raise click.ClickException(exc.message("--keep-float", "--auto-keep-float")) from None


def print_layer_search(variant) -> None:
    """After --auto-keep-float, the per-layer table it ranked the layers by (its summary is a note)."""
    if variant is not None and variant.search is not None:
        click.echo("per-layer error of the all-INT8 file, which --auto-keep-float ranked the layers by:")
        click.echo(variant.search.analysis.table())


class ProgressLine:
    """A one-line progress display on stderr (redrawn in place on a terminal); with a `unit`
    ("images"), also the rate and the time left."""

    def __init__(self, label: str, total: int | None, unit: str | None = None):
        self.label, self.total, self.unit, self.done = label, total, unit, 0
        self.started = time.perf_counter()
        self.interactive = sys.stderr.isatty()
        self._last_drawn = -1

    def __call__(self, count: int) -> None:
        self.show(self.done + count)

    def show(self, done: int) -> None:
        """Draw `done` units finished: every change on a terminal, each quarter in a log."""
        self.done = done
        elapsed = time.perf_counter() - self.started
        if self.total is None:  # open-ended (timed rounds): a counter, in place on a terminal only
            if self.interactive:
                click.echo(f"\r{self.label}: {done} ({elapsed:.0f}s)   ", err=True, nl=False)
            return
        finished = done >= self.total
        percent = int(100 * done / max(self.total, 1))
        if self.interactive or finished or percent // 25 != self._last_drawn // 25:
            end = "\n" if finished else ("\r" if self.interactive else "\n")
            line = f"{self.label}: {done}/{self.total}{self._rate(done, elapsed, finished)} ({elapsed:.0f}s)"
            pad = "  " if self.unit and self.interactive and not finished else ""  # blanks a longer ETA's tail
            click.echo(line + pad, err=True, nl=False)
            click.echo(end, err=True, nl=False)
            self._last_drawn = percent

    def _rate(self, done: int, elapsed: float, finished: bool) -> str:
        """" images, 41.2 images/s, ETA 1m05s" for a bar with a unit; "" without."""
        if self.unit is None:
            return ""
        if not done:  # no rate yet
            return f" {self.unit}"
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f" {self.unit}, {rate:.1f} {self.unit}/s"
        if rate > 0 and not finished:
            text += f", ETA {duration((self.total - done) / rate)}"
        return text

    def close(self) -> None:
        """End an open-ended line on a terminal, so the next message starts on its own line."""
        if self.total is None and self.interactive and self.done:
            click.echo("", err=True)


def duration(seconds: float) -> str:
    """42s, 3m05s, 2h07m: a time left, to the precision that matters."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class TerminalReporter:
    """Draws the library's progress events (alexnet_export.events) on stderr."""

    def __init__(self):
        self._bar: ProgressLine | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Advance):
            if self._bar is None or self._bar.label != event.task:
                self._end_bar()
                self._bar = ProgressLine(event.task, event.total, event.unit)
            self._bar.show(event.done)
            return
        self._end_bar()
        if isinstance(event, Verified):  # a result, not progress: stdout
            click.echo(f"{event.title}:")
            click.echo(event.report.table())
        elif isinstance(event, Note):
            warn(event.text) if event.warning else say(f"note: {event.text}")
        else:
            say(event.text)

    def _end_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
