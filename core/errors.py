"""Errors whose message is meant for the user.

The CLI prints any `AlexNetExportError` as one line and exits 1 (2 for an `ArgumentError`, with
the flag that sets the argument); anything else is a bug. Each class but `ParityError` also
derives from the builtin a Python caller would expect to catch.
"""


class AlexNetExportError(Exception):
    """Base class: the message says what was wrong and what was expected.

    Library messages speak in API terms; `argument` names the function argument at fault, if
    one is, so that the CLI can name its own flag for it (core/cli/main.py).
    """

    def __init__(self, *args, argument: str | None = None):
        super().__init__(*args)
        self.argument = argument


class ArgumentError(AlexNetExportError, ValueError):
    """Arguments that cannot work, found before any work: `argument` names the one at fault."""


class WeightsError(AlexNetExportError, ValueError):
    """A checkpoint could not be read or does not fit the model."""


class ModelLoadError(AlexNetExportError, ValueError):
    """A model file of any kind the backend table (runtimes/table.py) opens could not be loaded."""


class WeightsArgumentError(ArgumentError, WeightsError):
    """A checkpoint the arguments name is missing, has a suffix no loader reads, or contradicts another
    argument (its class count): known before it is read, a usage error (exit 2). A file that is read
    and is no checkpoint, or not an AlexNet's, stays a WeightsError (exit 1)."""


class ModelArgumentError(ArgumentError, ModelLoadError):
    """A model file the arguments name is missing, or of a kind no backend runs (by its name): known before
    it is read, a usage error (exit 2). A file that is read and cannot be loaded stays a ModelLoadError."""


class ProviderError(AlexNetExportError, RuntimeError):
    """An execution provider that was asked for is missing or failed to load."""


class OptionError(AlexNetExportError, TypeError):
    """A keyword option that the backend opening a file does not take."""


class InputError(AlexNetExportError, ValueError):
    """An array or image handed to a runtime does not fit the model's input."""


class InferenceError(AlexNetExportError, RuntimeError):
    """The backend failed on an input that passed the checks: the model file is inconsistent."""


class ExportError(AlexNetExportError, RuntimeError):
    """The exporter failed or produced a graph that is not what we promise."""


class ParityError(AlexNetExportError):
    """An exported model does not match its reference within the gate.

    `report` holds the measured figures. No builtin fits: the file is well formed, its numbers
    are not good enough.
    """

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


def one_line(exc: BaseException, limit: int = 400) -> str:
    """An exception's message on one line, for embedding in ours (libraries write paragraphs)."""
    text = " ".join(str(exc).split())
    return text[:limit] if text else type(exc).__name__


class MissingDependencyError(AlexNetExportError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""
