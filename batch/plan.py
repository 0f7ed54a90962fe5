"""A batch job before it runs: every argument checked, the output read, the work left to do.

Shared by every runner (the local job in batch/local.py; a cluster runner takes the same plan),
so the checks, the resume rule and the refusal of another model's output exist once. Nothing
is written here, and the model is not loaded (only hashed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from alexnet_export.batch.classifier import Classifier
from alexnet_export.batch.inputs import DEFAULT_PATH_COLUMN, collect_paths
from alexnet_export.batch.formats import Format, output_format
from alexnet_export.batch.output import ExistingOutput, read_existing
from alexnet_export.errors import ArgumentError
from alexnet_export.runtimes.table import backend_for


@dataclass(frozen=True)
class JobPlan:
    classifier: Classifier  # not opened yet
    format: Format
    existing: ExistingOutput  # what the output holds already
    paths: list[str]  # every image the inputs name, in order, once
    todo: list[str]  # those the output does not hold yet

    @property
    def skipped(self) -> int:
        return len(self.paths) - len(self.todo)


def plan_job(model: str | Path, inputs: str | Path | Sequence[str | Path], output: str | Path, *, top_k: int = 5,
             path_column: str = DEFAULT_PATH_COLUMN, allow_model_change: bool = False,
             trusted_key: str | Path | None = None, **runtime_options: Any) -> JobPlan:
    """Check everything a job needs before any work (ArgumentError naming the argument at fault) and
    list what is left to do: the paths `inputs` name that `output` does not hold."""
    if not Path(model).is_file():
        raise ArgumentError(f"model {model} does not exist or is not a file", argument="model")
    threads = runtime_options.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ArgumentError(f"threads is {threads!r}; expected a positive integer", argument="threads")
    format = output_format(output)
    existing = read_existing(output, format)
    classifier = Classifier(model, top_k, trusted_key=trusted_key, **shared_core_defaults(model, runtime_options))
    paths = collect_paths(inputs, path_column=path_column)
    _check_same_model(existing, classifier.model_sha256, Path(model).name, allow_model_change)
    return JobPlan(classifier, format, existing, paths, [path for path in paths if path not in existing.paths])


def shared_core_defaults(model: str | Path, options: dict) -> dict:
    """ONNX Runtime's threads stop spinning between runs unless asked otherwise: image decoding
    shares the cores (docs/ARCHITECTURE.md, thread spinning; measured in docs/batch.md)."""
    if backend_for(model).takes("spinning") and "spinning" not in options:
        return {**options, "spinning": False}
    return options


def _check_same_model(existing: ExistingOutput, sha256: str, name: str, allow_model_change: bool) -> None:
    others = {other: rows for other, rows in existing.model_sha256s.items() if other != sha256}
    if others and not allow_model_change:
        other = max(others, key=others.get)  # the model of most of them
        raise ArgumentError(
            f"{existing.folder} holds {sum(others.values())} results of another model file (sha256 {other[:12]}...); "
            f"{name} is {sha256[:12]}...; set allow_model_change to add to it (every row names its model), "
            f"or choose a new output", argument="allow_model_change")
