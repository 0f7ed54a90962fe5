"""What an export command is, as data: the backend's exporter package declares it once (`COMMAND` in its
face), and the CLI (core/cli/exports.py) and `optimize` (optimize/candidates.py) are made from it, so a
new file kind that exports from the checkpoint adds no module of its own to either.

Plain data and strings only: the export call and its summary are named "module:function" and
imported when the command runs, so listing the commands imports no backend's library.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable


@dataclass(frozen=True)
class SizeOption:
    """An integer option the export call takes beyond the common ones (the file's batch, say)."""

    argument: str  # the export call's keyword: "batch", "max_batch"
    default: int
    maximum: int  # the largest value the file kind takes
    help: str  # the CLI's help text
    # What `optimize` passes for it, a field of its Work: "batch" (the batch it times at; a timed batch
    # above `maximum` skips the candidate with why) or "max_batch" (the largest batch it may time).
    optimize_value: str

    @property
    def flag(self) -> str:
        return "--" + self.argument.replace("_", "-")


@dataclass(frozen=True)
class ExportCommand:
    """`alexnet-export <name>`: the checkpoint -> a verified file of this kind, in one of its precisions.

    The export call takes (output, ModelSource, *, precision, calibration, <options>, threads, sign_key,
    on_event) and returns a result whose file is `result.path`; the summary turns (result, the
    command's precision word) into the lines the CLI prints after it."""

    name: str  # the command, the backend table's row name and models/precisions.py's format word
    extension: str  # the file's suffix without the dot, in default names: alexnet.int8.<extension>
    call: str  # "module:function", the export call
    summary: str  # "module:function"
    help: str  # the command's --help text (its first line is the summary in the command list)
    output_help: str
    precision_help: str
    options: tuple[SizeOption, ...] = ()
    needs: tuple[str, ...] = ()  # modules of core/extras.py's table the export needs beyond the export extra

    def export_call(self) -> Callable:
        return _resolve(self.call)

    def summary_lines(self, result, precision_word: str) -> list[str]:
        return _resolve(self.summary)(result, precision_word)


def declared_commands() -> list[ExportCommand]:
    """The export commands the backend table's exporter packages declare (`COMMAND` in the face), in table order."""
    from alexnet_export.runtimes.table import BACKENDS

    faces = (import_module(backend.exporter) for backend in BACKENDS if backend.exporter)
    return [face.COMMAND for face in faces if hasattr(face, "COMMAND")]


def _resolve(name: str) -> Callable:
    module, attribute = name.split(":")
    return getattr(import_module(module), attribute)
