"""What to classify: INPUT... (image files, folders, glob patterns, manifests) -> one ordered list of
unique absolute paths.

- a folder is searched recursively for image files (runtimes/preprocess.find_images: by suffix,
  files only, so a folder named `photo.jpg/` is searched, never read as an image);
- a glob pattern (`photos/**/*.png`) keeps the image files and folders it matches;
- a manifest (`.txt`: one path a line, blank lines and `#` comments skipped; `.csv` or `.parquet`:
  the `path_column` column) lists images as they are: an entry that is missing or unreadable
  becomes a row with an error, since one bad line must not stop a million-image job. Relative
  entries are relative to the manifest's folder, so a manifest travels with its images;
- any other existing file is an image.

An INPUT that names nothing is an error before any work: it is a typo, not data. Paths are
absolute (a job resumed from another folder, or run by Ray workers elsewhere, means the same
files) and each appears once, at its first place.
"""

from __future__ import annotations

import csv
import glob
import os
from pathlib import Path
from typing import Iterable, Sequence

from alexnet_export.batch.schema import require_pyarrow
from alexnet_export.errors import ArgumentError, InputError
from alexnet_export.runtimes.preprocess import IMAGE_SUFFIXES, find_images

TEXT_MANIFEST, CSV_MANIFEST, PARQUET_MANIFEST = ".txt", ".csv", ".parquet"
MANIFEST_SUFFIXES = (TEXT_MANIFEST, CSV_MANIFEST, PARQUET_MANIFEST)
DEFAULT_PATH_COLUMN = "path"


def collect_paths(inputs: str | Path | Sequence[str | Path], *, path_column: str = DEFAULT_PATH_COLUMN) -> list[str]:
    """The images `inputs` name, as unique absolute paths in the order given (module docstring);
    ArgumentError (argument="inputs") for an input that names nothing, or when no image is found."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise ArgumentError("no inputs given; expected image files, folders, glob patterns or manifests "
                            f"({', '.join(MANIFEST_SUFFIXES)})", argument="inputs")
    paths: dict[str, None] = {}  # insertion-ordered set
    for item in inputs:
        for path in _expand(str(item), path_column):
            paths.setdefault(os.path.abspath(path))
    if not paths:
        raise ArgumentError(f"no images found in {_describe(inputs)}; expected files with one of the suffixes "
                            f"{', '.join(IMAGE_SUFFIXES)} (folders are searched recursively)", argument="inputs")
    return list(paths)


def _expand(item: str, path_column: str) -> Iterable[str]:
    path = Path(item)
    if path.is_dir():
        return map(str, find_images(path))
    if path.is_file():
        return read_manifest(path, path_column) if path.suffix.lower() in MANIFEST_SUFFIXES else [item]
    if glob.has_magic(item):
        return _glob_images(item)
    raise ArgumentError(f"input {item} does not exist; expected an image file, a folder, a glob pattern or a "
                        f"manifest ({', '.join(MANIFEST_SUFFIXES)})", argument="inputs")


def _glob_images(pattern: str) -> list[str]:
    found = []
    for match in sorted(glob.glob(pattern, recursive=True)):
        if os.path.isdir(match):
            found.extend(map(str, find_images(match)))
        elif Path(match).suffix.lower() in IMAGE_SUFFIXES:
            found.append(match)
    if not found:
        raise ArgumentError(f"pattern {pattern} matches no images; expected files with one of the suffixes "
                            f"{', '.join(IMAGE_SUFFIXES)}, or folders", argument="inputs")
    return found


def read_manifest(path: str | Path, path_column: str = DEFAULT_PATH_COLUMN) -> list[str]:
    """The image paths a manifest lists, relative entries joined to the manifest's folder."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == TEXT_MANIFEST:
            entries = _text_entries(path)
        elif suffix == CSV_MANIFEST:
            entries = _csv_entries(path, path_column)
        elif suffix == PARQUET_MANIFEST:
            entries = _parquet_entries(path, path_column)
        else:
            raise ArgumentError(f"manifest {path} has suffix {path.suffix!r}; expected one of "
                                f"{', '.join(MANIFEST_SUFFIXES)}", argument="inputs")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from None
    return [os.path.join(path.parent, entry) for entry in entries if entry]


def _text_entries(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _csv_entries(path: Path, path_column: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _check_column(path, path_column, reader.fieldnames or [])
        return [(row[path_column] or "").strip() for row in reader]


def _parquet_entries(path: Path, path_column: str) -> list[str]:
    require_pyarrow("reading a Parquet manifest", "inputs")
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow's own error types for a file that is no Parquet
        raise InputError(f"cannot read manifest {path} as Parquet: {exc}") from None
    _check_column(path, path_column, schema.names)
    column = pq.read_table(path, columns=[path_column]).column(0)
    values = column.to_pylist()
    if any(value is not None and not isinstance(value, str) for value in values):
        raise InputError(f"manifest {path}: column {path_column!r} is {column.type}; expected strings (paths)")
    return [value.strip() for value in values if value]


def _check_column(path: Path, path_column: str, columns: Sequence[str]) -> None:
    if path_column not in columns:
        raise ArgumentError(f"manifest {path} has no column {path_column!r}; its columns are "
                            f"{', '.join(map(repr, columns)) or 'none'}", argument="path_column")


def _describe(inputs: list) -> str:
    shown = ", ".join(map(str, inputs[:3]))
    return shown + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else "")
