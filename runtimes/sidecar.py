"""The JSON sidecar beside a model file that carries no metadata of ours (an ExecuTorch `.pte`, a
LiteRT `.tflite`): `<name>.json` with the toolkit's metadata props, the precision, the batch range
and the model file's byte count. One reader for both formats, so their checks cannot drift; the
backend table (runtimes/table.py) names the sidecar as the file's companion, so signing covers it.

No numpy, no torch: apps read sidecars on the light install.
"""

from __future__ import annotations

import json
from pathlib import Path

from alexnet_export.errors import AlexNetExportError, ModelLoadError, one_line
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.runtimes.checks import BatchBounds

SIDECAR_FORMAT = 1


def sidecar_path(model_path: str | Path) -> Path:
    return Path(str(model_path) + ".json")


def new_sidecar(*, precision: str, batch: tuple[int, int], bytes_key: str, size: int, sha256: str,
                metadata: dict[str, str], **extra) -> dict:
    """A new model file's sidecar, as JSON-ready data: `bytes_key` ("pte_bytes") holds its size, the
    hash goes under the same stem ("pte_sha256"), `extra` adds format-specific fields."""
    stem = bytes_key.removesuffix("_bytes")
    return {"format": SIDECAR_FORMAT, "precision": precision, "batch": {"min": batch[0], "max": batch[1]},
            bytes_key: size, f"{stem}_sha256": sha256, **extra, "metadata": dict(metadata)}


def write_sidecar(model_path: str | Path, sidecar: dict) -> Path:
    path = sidecar_path(model_path)
    path.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_sidecar(model_path: str | Path, *, fmt: str, bytes_key: str, command: str) -> dict:
    """The sidecar beside `model_path`, checked for what a runtime needs and that it belongs to this
    file (its byte count), with its batch range as "bounds" (a BatchBounds). fmt: the precision table's
    format the precision must belong to; command: the export command, for the hint."""
    path, hint = sidecar_path(model_path), f"export it again with `alexnet-export {command}`"
    suffix = Path(model_path).suffix
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; a {suffix} carries no labels or preprocessing of ours, and loads"
                             f" only with the sidecar written beside it: {hint}")
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON ({exc}); {hint}") from None
    required = ("format", "precision", "batch", bytes_key, "metadata")
    missing = [key for key in required if key not in sidecar] if isinstance(sidecar, dict) else required
    if missing:
        raise ModelLoadError(f"{path} lacks {', '.join(missing)}; {hint}")
    if sidecar["format"] != SIDECAR_FORMAT:
        raise ModelLoadError(f"{path} is sidecar format {sidecar['format']}; this release reads {SIDECAR_FORMAT}")
    metadata = sidecar["metadata"]
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise ModelLoadError(f"{path} metadata must be an object of strings; {hint}")
    size = Path(model_path).stat().st_size
    if sidecar[bytes_key] != size:  # a cheap check that the pair was written together
        raise ModelLoadError(f"{path} describes a {suffix} of {sidecar[bytes_key]} bytes but {Path(model_path).name}"
                             f" has {size}; the two are not one export: {hint}")
    try:
        precision_row(sidecar["precision"], fmt)
        batch = BatchBounds(int(sidecar["batch"]["min"]), int(sidecar["batch"]["max"]))
    except (KeyError, TypeError, ValueError, AlexNetExportError) as exc:
        raise ModelLoadError(f"{path} has no readable precision or batch range ({one_line(exc)}); {hint}") from None
    sidecar["bounds"] = batch
    return sidecar
