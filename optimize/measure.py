"""What `optimize` measures, with the code `verify` and `bench` measure with: top-1 on the labelled
images (bench/accuracy.py, each file with its own preprocessing, as `verify` runs it) and p50
latency at each batch size asked in one interleaved run of every candidate (bench/harness.py, as `bench`
times them, with its gate check of each file against the run's FP32 model), its rounds going on
until every file's median is stable (runtimes/verification/timing.py's rule)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.bench.accuracy import Evaluation, ImageSet, evaluate
from alexnet_export.bench.harness import Settings, run_benchmark
from alexnet_export.bench.results import BenchResult
from alexnet_export.events import Listener, counter, ignore
from alexnet_export.runtimes.table import backend_for
from alexnet_export.runtimes.registry import open_runtime
from alexnet_export.runtimes.verification.timing import Settle

# verify's default batch size: the same batches give the same logits.
EVALUATION_BATCH = 32
BENCH_WARMUP = 3


@dataclass(frozen=True)
class Accuracy:
    """A file's top-1 on the labelled images, against the FP32 reference's."""

    top1: float  # 0..1
    correct: frozenset[int]  # which images it got right
    images: int

    def drop_points(self, reference: "Accuracy") -> float:
        """The drop from the reference in percentage points (negative: better)."""
        return (reference.top1 - self.top1) * 100

    def lost(self, reference: "Accuracy") -> int:
        """Images the reference got right and this file gets wrong."""
        return len(reference.correct - self.correct)

    def within(self, reference: "Accuracy", budget: float) -> bool:
        """Within `budget` percentage points of the reference; with a budget of 0, every answer the
        reference got right kept (a file that trades one right answer for another is not lossless)."""
        if budget == 0:
            return self.lost(reference) == 0
        return self.drop_points(reference) <= budget + 1e-9

    def to_dict(self) -> dict:
        return {"top1": self.top1, "images": self.images, "correct": sorted(self.correct)}

    @classmethod
    def from_dict(cls, data: dict) -> "Accuracy":
        return cls(float(data["top1"]), frozenset(int(i) for i in data["correct"]), int(data["images"]))


def from_evaluation(result: Evaluation) -> Accuracy:
    return Accuracy(float(result.top1), result.correct, result.images)


def file_bytes(path: Path) -> int:
    """The file with the companions that belong to it (an IR's .bin, a .pte's sidecar), as bench counts."""
    return sum(part.stat().st_size for part in backend_for(path).files(path))


def top1_of_file(path: Path, images: ImageSet, on_event: Listener = ignore, backend=None) -> Accuracy:
    """`verify FILE --images DIR --labels-from-folders`'s top-1, as a library call: the file opened
    as verify opens it (strict FP32 where a backend has the switch, its default threads).
    backend: for a file whose name does not say (the exporter's staged .partial files)."""
    backend = backend or backend_for(path)
    runtime = open_runtime(path, backend=backend, **backend.taken(tf32=False))
    tick = counter(on_event, f"top-1 of {path.name}", len(images.paths))
    return from_evaluation(evaluate(runtime, images, batch_size=EVALUATION_BATCH, tick=tick))


def top1_of_model(runtime, images: ImageSet, on_event: Listener = ignore) -> Accuracy:
    """The top-1 of a runtime already open (the eager FP32 reference)."""
    tick = counter(on_event, "top-1 of the FP32 reference (eager PyTorch)", len(images.paths))
    return from_evaluation(evaluate(runtime, images, batch_size=EVALUATION_BATCH, tick=tick))


def time_files(paths: Sequence[Path], batches: Sequence[int], threads: int, rounds: int | None = None,
               on_event: Listener = ignore) -> BenchResult:
    """One `bench` run of every file at each of `batches`: interleaved rounds, medians and their
    intervals, after warm-up; `rounds` rounds, or (None) until every file's median is stable by the
    settling rule. A file that cannot run a batch (a .tflite's is fixed) is left out at that batch."""
    settings = Settings(batch_sizes=tuple(batches), threads=threads, warmup=BENCH_WARMUP, iterations=rounds,
                        cold_start=False, settle=None if rounds else Settle(), classify=False)
    return run_benchmark(list(paths), settings, on_event=on_event)
