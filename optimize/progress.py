"""Resuming `optimize`: each finished candidate is recorded in OUTDIR/.optimize-progress.json as
soon as it is measured (written atomically), keyed by the checkpoint's sha256 and the settings
that change a candidate or its top-1. A rerun with the same key reuses every recorded candidate
whose file is still there with the same sha256; Ctrl-C or a crash loses at most the candidate in
progress, whose file the exporter never put in place half-written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from alexnet_export.atomic import atomic_output
from alexnet_export.hashing import file_sha256
from alexnet_export.optimize.measure import Accuracy

PROGRESS_FILE = ".optimize-progress.json"
FORMAT = 1
MADE, FAILED = "made", "failed"
# Why a FAILED candidate has no file: its export failed (or could not start), or it was made and failed its gate.
NOT_MADE, GATE_FAILED = "not made", "failed its gate"


def settings_key(settings: dict) -> str:
    """A digest of the settings (JSON-able; the checkpoint's sha256 among them)."""
    return hashlib.sha256(json.dumps({"format": FORMAT, **settings}, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Record:
    """A finished candidate: its file and top-1, or why making it failed."""

    id: str
    status: str  # MADE or FAILED
    key: str  # settings_key of what it was made with (the run's, plus the candidate's own)
    file: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    accuracy: Accuracy | None = None
    float_layers: tuple[str, ...] = ()
    reason: str | None = None
    failure: str | None = None  # FAILED: NOT_MADE or GATE_FAILED
    gates: tuple[dict, ...] = ()  # MADE: {title, table} of each parity gate it passed (report.md shows them)

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "key": self.key, "file": self.file, "sha256": self.sha256,
                "bytes": self.bytes, "accuracy": self.accuracy.to_dict() if self.accuracy else None,
                "float_layers": list(self.float_layers), "reason": self.reason,
                "failure": self.failure, "gates": list(self.gates)}

    @classmethod
    def from_dict(cls, data: dict) -> "Record":
        accuracy = Accuracy.from_dict(data["accuracy"]) if data.get("accuracy") else None
        return cls(data["id"], data["status"], data["key"], data.get("file"), data.get("sha256"), data.get("bytes"),
                   accuracy, tuple(data.get("float_layers") or ()), data.get("reason"), data.get("failure"),
                   tuple(data.get("gates") or ()))


@dataclass
class Progress:
    folder: Path
    key: str  # the run's settings key
    records: dict[str, Record] = field(default_factory=dict)
    reference: Accuracy | None = None

    @classmethod
    def open(cls, folder: Path, key: str) -> "Progress":
        """The progress recorded in `folder` for `key`; empty when there is none, or it is another run's."""
        path = folder / PROGRESS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(folder, key)
        if not isinstance(data, dict) or data.get("key") != key:
            return cls(folder, key)
        try:
            records = {r["id"]: Record.from_dict(r) for r in data.get("candidates", [])}
            reference = Accuracy.from_dict(data["reference"]) if data.get("reference") else None
        except (KeyError, TypeError, ValueError):
            return cls(folder, key)
        return cls(folder, key, records, reference)

    def reusable(self, candidate_id: str, key: str) -> Record | None:
        """The record of `candidate_id` made with `key`, if its file is still the one measured."""
        record = self.records.get(candidate_id)
        if record is None or record.key != key:
            return None
        if record.status == MADE:
            path = self.folder / record.file
            if not path.is_file() or path.stat().st_size > record.bytes or file_sha256(path) != record.sha256:
                return None
        return record

    def save(self, record: Record | None = None) -> None:
        if record is not None:
            self.records[record.id] = record
        data = {"format": FORMAT, "key": self.key,
                "reference": self.reference.to_dict() if self.reference else None,
                "candidates": [r.to_dict() for r in self.records.values()]}
        with atomic_output(self.folder / PROGRESS_FILE) as temporary:
            temporary.write_text(json.dumps(data) + "\n", encoding="utf-8")

    def forget(self, candidate_id: str) -> None:
        if self.records.pop(candidate_id, None) is not None:
            self.save()
