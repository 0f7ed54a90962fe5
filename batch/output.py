"""Where results go: a folder of numbered Parquet parts, each renamed into place whole, or one JSON
Lines file appended to in whole lines (batch/formats.py).

`-o results.parquet` is a folder of `part-00000.parquet`, `part-00001.parquet`, ... (pyarrow,
pandas, Spark and Ray read such a folder as one table, DuckDB and polars its `*.parquet`; Ray's
`write_parquet` writes the same shape). Every part is written under a hidden temporary name and
renamed in (core/atomic.py), so a reader, and a resumed run, sees whole parts or none; the hidden
temporaries a killed run leaves are skipped by those readers and removed by the next run.
`-o results.jsonl` is one file: each batch of rows is appended in one write and synced, and a last
line a killed run left without its newline is cut off by the next run, which redoes its image.
The paths in the output are what is done: a resumed run skips them, and the writer drops any row
whose path the output already holds, so nothing is written twice. One run writes an output at a
time (an advisory lock on the folder or file, POSIX).

Ray's Parquet writer (batch/ray_job.py) writes its files in place, not renamed, so it writes into a
hidden staging folder of the output (`.staging-*`, skipped by readers) and `PartWriter.adopt` takes
each file once it reads back whole as the next part, by rename; a staging folder a killed run left
is swept the same way by the next run, local or Ray, and what does not read back whole is deleted.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from alexnet_export.atomic import atomic_output, move_into_place
from alexnet_export.batch.formats import PARQUET, Format, jsonl_bytes, output_format, whole_parquet, write_table
from alexnet_export.batch.schema import MODEL_SHA256, NAMES, PATH
from alexnet_export.errors import ArgumentError, ExportError, InputError, one_line

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per folder is then the user's rule
    fcntl = None

PART_NAME = re.compile(r"^part-(\d+)\.")
STAGING_PREFIX = ".staging-"  # a folder of the output where another writer (Ray's) puts files to adopt


@dataclass
class ExistingOutput:
    """What an output holds already (nothing, for one that does not exist yet)."""

    folder: Path  # the output: a folder of parts, or the one file (JSON Lines)
    format: Format
    paths: set[str] = field(default_factory=set)
    model_sha256s: Counter = field(default_factory=Counter)  # rows per model file
    parts: list[Path] = field(default_factory=list)

    @property
    def next_index(self) -> int:
        numbers = [int(match.group(1)) for part in self.parts if (match := PART_NAME.match(part.name))]
        return max(numbers, default=-1) + 1


def read_existing(output: str | Path, format: Format | None = None) -> ExistingOutput:
    """The parts in `output` (or its one file) and the paths and model hashes they hold. ArgumentError for
    an output that cannot be a classify output (its folder missing, a file for a folder and a folder for a
    file, a folder with other files)."""
    output = Path(output)
    format = format or output_format(output)
    if not output.parent.is_dir():
        raise ArgumentError(f"output folder {output.parent} does not exist; create it first", argument="output")
    if format.one_file:
        return _read_one_file(output, format)
    if output.exists() and not output.is_dir():
        raise ArgumentError(f"output {output} is a file; classify writes a folder of {format.name} parts there "
                            f"(choose a new name, or move the file away)", argument="output")
    existing = ExistingOutput(output, format)
    if not output.is_dir():
        return existing
    for entry in sorted(output.iterdir()):
        if entry.name.startswith((".", "_")):  # temporaries, markers: what dataset readers skip too
            continue
        if not (entry.is_file() and entry.suffix == format.suffix):
            raise ArgumentError(f"output folder {output} holds {entry.name}, which is not a {format.name} part; "
                                f"expected a folder written by classify (choose a new output)", argument="output")
        existing.parts.append(entry)
    for part in existing.parts:
        columns = _read_part(part, format)
        existing.paths.update(columns[PATH.name])
        existing.model_sha256s.update(columns[MODEL_SHA256.name])
    return existing


def _read_one_file(output: Path, format: Format) -> ExistingOutput:
    if output.is_dir():
        raise ArgumentError(f"output {output} is a folder; classify writes {format.shape} there (an earlier release"
                            f" wrote a folder of parts: cat {output}/part-*{format.suffix} > one{format.suffix});"
                            " choose a file name", argument="output")
    existing = ExistingOutput(output, format)
    if output.is_file():
        columns = format.read(output, (PATH.name, MODEL_SHA256.name))
        existing.paths.update(columns[PATH.name])
        existing.model_sha256s.update(columns[MODEL_SHA256.name])
    return existing


def _read_part(part: Path, format: Format) -> dict[str, list]:
    try:
        return format.read(part, (PATH.name, MODEL_SHA256.name))
    except Exception as exc:  # pyarrow's, json's and the disk's errors alike: the part is not what we wrote
        raise InputError(f"cannot read {part} ({one_line(exc, 200)}); expected a part written by classify: move it "
                         "away and run again to redo its images") from None


class PartWriter:
    """Buffers result columns and writes them as the next numbered part every `rows_per_part` rows (to
    a one-file output: appends them, synced).

    The output is created, locked and cleared of stale temporaries (a cut-off last line) at the first
    part, or at once when it exists, so a run that fails before any result leaves nothing behind.
    """

    def __init__(self, existing: ExistingOutput, rows_per_part: int):
        self.folder, self.format, self.rows_per_part = existing.folder, existing.format, rows_per_part
        self.done = set(existing.paths)
        self.parts_written = 0
        self.rows_written = 0
        self._next_index = existing.next_index
        self._pending: list[Mapping[str, np.ndarray]] = []
        self._pending_rows = 0
        self._taken = False
        self._lock: int | None = None
        if self.folder.exists():
            self._take_folder()

    def add(self, columns: Mapping[str, np.ndarray]) -> None:
        """Queue one batch's columns; rows whose path is already written are dropped."""
        keep = np.fromiter((path not in self.done for path in columns[PATH.name]), bool, len(columns[PATH.name]))
        if not keep.all():
            columns = {name: np.asarray(columns[name], dtype=object)[keep] for name in NAMES}
        if len(columns[PATH.name]):
            self._pending.append(columns)
            self._pending_rows += len(columns[PATH.name])
        if self._pending_rows >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows as one part, renamed into place."""
        if not self._pending_rows:
            return
        if not self._taken:
            self._take_folder()
        columns = {name: np.concatenate([np.asarray(batch[name], dtype=object) for batch in self._pending])
                   for name in NAMES}
        fresh = np.fromiter((path not in self.done for path in columns[PATH.name]), bool, len(columns[PATH.name]))
        columns = {name: values[fresh] for name, values in columns.items()}
        part = self.folder / f"part-{self._next_index:05d}{self.format.suffix}"
        if len(columns[PATH.name]) and self.format.one_file:
            data = memoryview(jsonl_bytes(columns))  # O_APPEND: whole lines, in one write where the OS allows
            while data:
                data = data[os.write(self._lock, data):]
            os.fsync(self._lock)
        elif len(columns[PATH.name]):
            with atomic_output(part) as temporary:
                self.format.write(columns, temporary)
        if len(columns[PATH.name]):
            self._next_index += 1
            self.parts_written += 1
            self.rows_written += len(columns[PATH.name])
            self.done.update(columns[PATH.name])
        self._pending, self._pending_rows = [], 0

    def adopt(self, finished: Path):
        """Take a Parquet file another writer finished (Ray's, in a staging folder of this output on the
        same file system) as the next part: renamed into place, or rewritten without the rows whose
        path is written already. Returns the rows it added (a pyarrow Table); None, and the file left
        as it is, when it does not read back whole with the output's columns (still being written, or
        cut off by a kill)."""
        table = whole_parquet(finished)
        if table is None:
            return None
        if not self._taken:
            self._take_folder()
        import pyarrow as pa

        fresh, seen = [], set(self.done)
        for path in table.column(PATH.name).to_pylist():
            fresh.append(path not in seen)
            seen.add(path)
        added = table.filter(pa.array(fresh, pa.bool_()))
        part = self.folder / f"part-{self._next_index:05d}{self.format.suffix}"
        if added.num_rows == table.num_rows > 0:
            move_into_place(finished, part)
        elif added.num_rows:
            with atomic_output(part) as temporary:
                write_table(added, temporary)
            finished.unlink()
        else:
            finished.unlink()
            return added
        self.done.update(added.column(PATH.name).to_pylist())
        self._next_index += 1
        self.parts_written += 1
        self.rows_written += added.num_rows
        return added

    def take(self) -> None:
        """Create and lock the folder now (a runner whose workers write into it needs it first)."""
        if not self._taken:
            self._take_folder()

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _take_folder(self) -> None:
        """Create and lock the folder; then read it again, since another run may have written parts
        between this run's start and now, and remove the temporaries of runs that were killed."""
        if self.format.one_file:
            return self._take_file()
        self.folder.mkdir(exist_ok=True)
        self._lock = _lock_folder(self.folder)
        self._taken = True
        existing = read_existing(self.folder, self.format)
        self.done |= existing.paths
        self._next_index = max(self._next_index, existing.next_index)
        for stale in self.folder.glob(f".part-*{self.format.suffix}.*.partial"):
            stale.unlink(missing_ok=True)
        for staging in sorted(self.folder.glob(f"{STAGING_PREFIX}*")):  # a killed Ray run's: keep what is whole
            if self.format is PARQUET and staging.is_dir():
                for finished in sorted(staging.rglob(f"*{self.format.suffix}")):
                    self.adopt(finished)
            shutil.rmtree(staging, ignore_errors=True)


    def _take_file(self) -> None:
        """Open (create) and lock the one file, read it again, and cut off a last line left without its
        newline by a run that was killed while appending it."""
        self._lock = os.open(self.folder, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        _lock(self._lock, self.folder)
        self._taken = True
        self.done |= read_existing(self.folder, self.format).paths
        size = os.fstat(self._lock).st_size
        if size:
            tail = os.pread(self._lock, min(size, 1 << 20), max(0, size - (1 << 20)))
            if not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                os.ftruncate(self._lock, size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail)))


def _lock_folder(folder: Path) -> int | None:
    if fcntl is None:
        return None
    descriptor = os.open(folder, os.O_RDONLY)
    _lock(descriptor, folder)
    return descriptor


def _lock(descriptor: int, output: Path) -> None:
    """An exclusive advisory lock on the open output; ExportError (closing it) when another run holds one."""
    if fcntl is None:
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise ExportError(f"{output} is being written by another classify run; wait for it to finish, or choose "
                          "another output") from None
