"""The JSON sidecar beside a model file whose own format cannot carry what the toolkit needs (an
engine, a `.pte`, a `.tflite`, ...): `<name>.json` with the toolkit's metadata props, the
precision, the batch range and the kind's own facts (an engine's builder and targets, a `.pte`'s
delegation, a `.tflite`'s layout).

One typed `Sidecar`, one reader (`read_sidecar`), one writer (`write_sidecar`) and one rule for its
path (`sidecar_path`) for every kind; what differs between kinds is a `SidecarRule` in the kind's
runtime package. The backend table (runtimes/table.py) names the sidecar as the file's companion
("{name}.json"), so staging and signing cover it.

No numpy, no torch: apps read sidecars on the light install.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from alexnet_export.atomic import atomic_output
from alexnet_export.errors import AlexNetExportError, ModelLoadError, one_line
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.runtimes.checks import BatchBounds
from alexnet_export.runtimes.table import backend_named

COMMON_KEYS = ("format", "precision", "batch", "metadata")


def sidecar_path(model_path: str | Path) -> Path:
    """Where a model file's sidecar lies: its full name plus ".json" (alexnet.pte -> alexnet.pte.json)."""
    return Path(str(model_path) + ".json")


@dataclass(frozen=True)
class SidecarRule:
    """What one kind's sidecar must hold, and how its reader explains a refusal.

    why: why the file needs it, for the message when it is missing ("an engine loads only with the
    sidecar of its build"); hint: how to get a good pair ("rebuild it with `alexnet-export trt`").
    size_key: where the model file's byte count is kept ("pte_bytes"), checked against the file so a
    sidecar from another export is refused; None where the kind has a check of its own. The hash
    goes under the same stem ("pte_sha256").
    precisions_of: the backend (the table's row name) whose precisions it must be one of (None: any known one).
    required: the kind's own keys; check: raises (KeyError, TypeError, ValueError, AlexNetExportError)
    when one is unreadable; upgrade: turns an older layout into this one, or returns it unchanged.
    """

    format: int
    why: str
    hint: str
    size_key: str | None = None
    precisions_of: str | None = None
    required: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], object] | None = None
    upgrade: Callable[[dict], dict] | None = None

    @property
    def hash_key(self) -> str | None:
        return None if self.size_key is None else self.size_key.removesuffix("_bytes") + "_sha256"


@dataclass(frozen=True)
class Sidecar:
    """A model file's sidecar as written (`data`), with the fields every kind has read once and typed;
    the kind's own fields by key (`sidecar["builder"]`, `sidecar.get("layout")`, an engine's
    `sidecar["batch"]` with its "opt")."""

    data: dict[str, Any]
    precision: str
    batch: BatchBounds
    metadata: dict[str, str]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Sidecar:
        """KeyError, TypeError or ValueError when a common field is missing or unreadable."""
        batch = value["batch"]
        most = None if batch["max"] is None else int(batch["max"])  # None: any batch (a runtime that runs image by image)
        return cls(dict(value), str(value["precision"]), BatchBounds(int(batch["min"]), most), dict(value["metadata"]))


def new_sidecar(rule: SidecarRule, *, precision: str, batch: tuple[int, int | None] | Mapping[str, int],
                metadata: Mapping[str, str], model_path: str | Path | None = None, **fields) -> Sidecar:
    """The sidecar of a new model file. `model_path`: the written file, whose byte count and hash go
    under the rule's size and hash keys; `batch`: (min, max) or an engine's {"min", "opt", "max"}."""
    from alexnet_export.hashing import file_sha256

    if rule.size_key is not None:
        fields = {rule.size_key: Path(model_path).stat().st_size, rule.hash_key: file_sha256(model_path), **fields}
    batch = dict(batch) if isinstance(batch, Mapping) else {"min": batch[0], "max": batch[1]}
    return Sidecar.from_json({"format": rule.format, "precision": precision, "batch": batch, **fields,
                              "metadata": dict(metadata)})


def write_sidecar(model_path: str | Path, sidecar: Sidecar | Mapping[str, Any]) -> Path:
    """Write the sidecar beside `model_path` through a temporary file (never half a sidecar)."""
    data = sidecar.to_json() if isinstance(sidecar, Sidecar) else dict(sidecar)
    path = sidecar_path(model_path)
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_sidecar(model_path: str | Path, rule: SidecarRule) -> Sidecar:
    """The sidecar beside `model_path`, checked for what a runtime needs and, where the rule keeps a
    byte count, that it belongs to this file. ModelLoadError, one line, for anything else."""
    path, hint = sidecar_path(model_path), rule.hint
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; {rule.why}: {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON ({exc}); {hint}") from None
    if isinstance(data, dict) and rule.upgrade is not None:
        data = rule.upgrade(data)
    keys = (*COMMON_KEYS, *((rule.size_key,) if rule.size_key else ()), *rule.required)
    missing = [key for key in keys if key not in data] if isinstance(data, dict) else list(keys)
    if missing:
        raise ModelLoadError(f"{path} lacks {', '.join(missing)}; {hint}")
    if data["format"] != rule.format:
        raise ModelLoadError(f"{path} is sidecar format {data['format']}; this release reads {rule.format}")
    metadata = data["metadata"]
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise ModelLoadError(f"{path} metadata must be an object of strings; {hint}")
    if rule.size_key is not None:  # a cheap check that the pair was written together
        size, name = Path(model_path).stat().st_size, Path(model_path).name
        if data[rule.size_key] != size:
            raise ModelLoadError(f"{path} describes a {Path(model_path).suffix} of {data[rule.size_key]} bytes but"
                                 f" {name} has {size}; the two are not one export: {hint}")
    unreadable = (KeyError, TypeError, ValueError, AttributeError, AlexNetExportError)
    try:
        sidecar = Sidecar.from_json(data)
        if rule.precisions_of is not None:
            backend_named(rule.precisions_of).precision(sidecar.precision)
        else:
            precision_row(sidecar.precision)
    except unreadable as exc:
        raise ModelLoadError(f"{path} has no readable precision or batch range ({one_line(exc)}); {hint}") from None
    try:
        if rule.check is not None:
            rule.check(sidecar.data)
    except unreadable as exc:
        raise ModelLoadError(f"{path} has no readable {' or '.join(rule.required)} ({one_line(exc)}); {hint}") from None
    return sidecar
