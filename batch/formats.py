"""The two output formats of `classify`, named by the output's suffix: Parquet (`.parquet`, a folder of
numbered parts: the dataset shape pyarrow, pandas, Spark and Ray read as one table) and JSON Lines
(`.jsonl`, one file of one row a line, appended to in whole lines). batch/output.py writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from alexnet_export.batch.schema import NAMES, arrow_schema, require_pyarrow, to_arrow_table, to_rows
from alexnet_export.errors import ArgumentError, InputError, one_line


@dataclass(frozen=True)
class Format:
    name: str  # "Parquet", "JSON Lines"
    suffix: str  # of the output, and of its parts
    needs_pyarrow: bool
    write: Callable[[Mapping[str, np.ndarray], Path], None]
    read: Callable[[Path, tuple[str, ...]], dict[str, list]]  # the named columns of one part (or the one file)
    one_file: bool = False  # the output is one file, appended to; else a folder of parts

    @property
    def shape(self) -> str:
        """What the output is, for messages: "a folder of Parquet parts", "one JSON Lines file"."""
        return f"one {self.name} file" if self.one_file else f"a folder of {self.name} parts"


def write_table(table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def whole_parquet(path: Path):
    """`path` read back whole as a Table of the output's columns, or None (a file that is cut off has no
    footer; every page is decoded, so a file whose data never reached the disk fails too)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).select(list(NAMES)).cast(arrow_schema())
    except Exception:  # pyarrow's errors for a truncated file, a missing column or another type; OSError
        return None


def _write_parquet(columns, path: Path) -> None:
    write_table(to_arrow_table(columns), path)


def _read_parquet(path: Path, names) -> dict[str, list]:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=list(names)).to_pydict()


def jsonl_bytes(columns) -> bytes:
    """A batch's rows as JSON Lines, each line whole (ending in a newline)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in to_rows(columns)).encode("utf-8")


def _write_jsonl(columns, path: Path) -> None:
    Path(path).write_bytes(jsonl_bytes(columns))


ROW_START = b'{"path": '  # how every line classify writes begins (to_rows keeps the schema's column order)


def _read_jsonl(path: Path, names) -> dict[str, list]:
    """The named columns of a JSON Lines output. A last line without its newline that begins as a row does
    (a run killed while appending it) is not a row: the next run cuts it off and redoes its image."""
    values: dict[str, list] = {name: [] for name in names}
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n") and (line.startswith(ROW_START) or ROW_START.startswith(line)):
                break
            try:
                row = json.loads(line)
                picked = [row[name] for name in names]
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"line {number} of {path} is not a classify result ({one_line(exc, 80)}); expected"
                                 " a file written by classify: choose a new output, or move it away") from None
            for name, value in zip(names, picked):
                values[name].append(value)
    return values


PARQUET = Format("Parquet", ".parquet", True, _write_parquet, _read_parquet)
JSONL = Format("JSON Lines", ".jsonl", False, _write_jsonl, _read_jsonl, one_file=True)
FORMATS = (PARQUET, JSONL)


def output_format(output: str | Path) -> Format:
    """The format `output`'s suffix names; ArgumentError for another suffix or a missing pyarrow."""
    suffix = Path(output).suffix.lower()
    for candidate in FORMATS:
        if suffix == candidate.suffix:
            if candidate.needs_pyarrow:
                require_pyarrow(f"writing {candidate.name}", "output")
            return candidate
    raise ArgumentError(f"output {output} has suffix {Path(output).suffix or '(none)'!r}; expected "
                        + " or ".join(f"{f.suffix} ({f.shape})" for f in FORMATS), argument="output")
