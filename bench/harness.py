"""Time several models through the runtime interface, interleaved round by round.

Every round runs each model once (in a rotating order), so a noisy neighbour slows all of them
alike; medians and percentiles come from the rounds after the warm-up. ONNX Runtime's worker
threads spin after each run by default, which steals the cores from the next model in the
round: spinning is turned off for every session here.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from alexnet_export.bench import device as gpu
from alexnet_export.bench.coldstart import cold_start
from alexnet_export.bench.recommend import check_gates, recommend
from alexnet_export.bench.machine import ALEXNET_GFLOP_PER_IMAGE, describe_machine, matmul_gflops
from alexnet_export.bench.results import RESULT_FIELDS, BenchResult, ClassifyRow, ModelInfo, Roofline, Row, Settings  # noqa: F401 (Settings: re-exported)
from alexnet_export.errors import ModelArgumentError
from alexnet_export.events import Advance, Listener, Step, ignore
from alexnet_export.models.precisions import FP16, FP32, is_int8
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.table import backend_for
from alexnet_export.runtimes.registry import open_runtime
from alexnet_export.runtimes.verification.timing import Rounds, interleaved_rounds, median_interval

__all__ = ["RESULT_FIELDS", "Settings", "run_benchmark"]


@dataclass
class Subject:
    path: Path
    runtime: Runtime
    options: dict = field(default_factory=dict)  # what it was opened with, for the cold start's fresh process
    splits: dict = field(default_factory=dict)  # batch -> its device-time split (bench/device.py), CUDA only

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def on_cuda(self) -> bool:
        return getattr(self.runtime, "cuda_device", None) is not None  # runtimes set it where CUDA runs them

    @cached_property
    def file_mb(self) -> float:
        """With the files that belong to it: external ONNX weights, an IR's .bin."""
        return sum(path.stat().st_size for path in backend_for(self.path).files(self.path)) / 1e6


def check_models(paths: list[Path]) -> None:
    """Refuse missing files and unknown suffixes before any timing starts."""
    for path in paths:
        if not path.is_file():
            raise ModelArgumentError(f"model {path} does not exist or is not a file", argument="models")
        backend_for(path)


def open_subject(path: Path, threads: int, trusted_key: Path | None = None) -> Subject:
    backend = backend_for(path)
    options = backend.taken(threads=threads, spinning=False)
    if trusted_key is not None:  # the cold start's fresh process verifies too
        options["trusted_key"] = str(trusted_key)
    return Subject(path, open_runtime(path, **options), options)


def run_benchmark(paths: list[Path], settings: Settings, on_event: Listener = ignore) -> BenchResult:
    paths = [Path(p) for p in paths]
    check_models(paths)
    # Opened first: a file that cannot be loaded fails before any measurement, its error the only line.
    subjects = [open_subject(path, settings.threads, settings.trusted_key) for path in paths]
    on_event(Step(f"measuring the FP32 matrix-multiply rate at {settings.threads} threads"))
    gflops_before = matmul_gflops(settings.threads)
    device_gflops = {}
    if any(s.on_cuda for s in subjects):
        on_event(Step("measuring the GPU's matrix-multiply rate in each precision"))
        device_gflops = {math: rate for math in sorted({_math(s.runtime) for s in subjects if s.on_cuda})
                         if (rate := gpu.matmul_gflops(math)) is not None}
    on_event(Step("checking each model against the run's FP32 model, with its precision's gate"))
    checks = check_gates([(s.name, s.runtime) for s in subjects])
    rng = np.random.default_rng(0)
    timed = []
    for size in settings.batch_sizes:
        runnable = [s for s in subjects if _fits(s, size)]
        # One random batch per input kind (normalised floats, or pixels for a pixel-input file), shared by the round.
        batches = {kind: _random_batch(kind, size, rng) for kind in {_input_kind(s.runtime) for s in runnable}}
        inputs = {s.name: batches[_input_kind(s.runtime)] for s in runnable}
        timings = _interleave({s.name: (lambda s=s: s.runtime.predict(inputs[s.name])) for s in runnable},
                              settings, on_event, f"batch {size}")
        timed.extend((subject, size, timings[subject.name], timings.stopped) for subject in runnable)
        for subject in (s for s in runnable if s.on_cuda):  # traced apart from the timing: tracing slows calls
            on_event(Step(f"tracing {subject.name}'s device work at batch {size}"))
            subject.splits[size] = gpu.transfer_split(lambda s=subject: s.runtime.predict(inputs[s.name]), rounds=5)
    classify_rows = []
    if settings.classify:
        on_event(Step("timing classify() end to end (decode + preprocess + infer) at batch 1"))
        classify_rows = _classify_rows(subjects, settings, on_event)
    # Measured again after the timing, and the better of the two kept: a busy moment at the
    # start would otherwise lower the roofline and flatter every result.
    roofline = Roofline(max(gflops_before, matmul_gflops(settings.threads)), ALEXNET_GFLOP_PER_IMAGE, device_gflops)
    cold = {}
    if settings.cold_start:
        for subject in subjects:
            on_event(Step(f"cold start of {subject.name} in a fresh process"))
            cold[subject.name] = cold_start(subject.path, subject.options, list(settings.batch_sizes))
    return BenchResult(
        machine=describe_machine(settings.threads),
        settings=settings,
        roofline=roofline,
        models=[ModelInfo(s.name, str(s.path), s.runtime.precision, s.runtime.device, s.file_mb, cold.get(s.name))
                for s in subjects],
        results=(rows := [_row(subject, size, seconds, roofline, stopped) for subject, size, seconds, stopped in timed]),
        classify=classify_rows,
        gates=checks,
        recommendation=recommend(rows, checks),
    )


def _input_kind(runtime: Runtime) -> tuple[tuple[int, ...], str]:
    spec = runtime.metadata.preprocessing
    return tuple(spec.input_dims), spec.input_dtype


def _random_batch(kind: tuple[tuple[int, ...], str], size: int, rng: np.random.Generator) -> np.ndarray:
    dims, dtype = kind
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, size=(size, *dims), dtype=np.uint8)
    return rng.normal(size=(size, *dims)).astype(dtype)


def _fits(subject: Subject, size: int) -> bool:
    return subject.runtime.bounds.admits(size)


def _interleave(calls: dict[str, Callable[[], object]], settings: Settings, on_event: Listener, task: str) -> Rounds:
    """Per name, the seconds of each timed round; reports each round as an Advance of `task`."""
    return interleaved_rounds(calls, warmup=settings.warmup, rounds=settings.iterations, seconds=settings.seconds,
                              settle=settings.settle,
                              on_round=lambda done: on_event(Advance(task, done, settings.iterations)))


def _row(subject: Subject, size: int, seconds: list[float], roofline: Roofline, stopped: str) -> Row:
    p50, p90, p95, p99 = (float(np.percentile(seconds, q)) for q in (50, 90, 95, 99))
    interval = tuple(value * 1e3 for value in median_interval(seconds))
    precision = subject.runtime.precision
    images_per_s = size / p50
    if subject.on_cuda:  # never the CPU's rate on a GPU row: the GPU's, in the row's math, where measured
        math = _math(subject.runtime)
        rate = roofline.device_gflops.get(math)
        fraction, basis = (images_per_s * roofline.gflop_per_image / rate, f"cuda {math}") if rate else (None, None)
    else:  # only FP32 results: the CPU roofline is the FP32 rate
        fraction, basis = (images_per_s / roofline.images_per_s, "cpu fp32") if precision == FP32 else (None, None)
    return Row(model=subject.name, precision=precision, device=subject.runtime.device,
               file_mb=round(subject.file_mb, 1), batch=size, p50_ms=p50 * 1e3, p90_ms=p90 * 1e3, p99_ms=p99 * 1e3,
               images_per_s=images_per_s, roofline_fraction=fraction, rounds=len(seconds), roofline_basis=basis,
               p50_ci_ms=interval, stopped=stopped, p95_ms=p95 * 1e3, **(subject.splits.get(size) or {}))


def _math(runtime: Runtime) -> str:
    """The matmul precision that bounds a CUDA runtime: its file's, and TF32 for FP32 unless it runs strict."""
    if runtime.precision == FP16:
        return "fp16"
    if is_int8(runtime.precision):
        return "int8"
    return "fp32" if getattr(runtime, "tf32", None) is False else "tf32"  # None: TensorRT's default allows TF32


def _classify_rows(subjects: list[Subject], settings: Settings, on_event: Listener) -> list[ClassifyRow]:
    from PIL import Image

    from alexnet_export.runtimes.verification.samples import synthetic_images

    runnable = [s for s in subjects if _fits(s, 1)]
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "photo.jpg"
        Image.fromarray(synthetic_images(1, seed=5)[0]).resize((640, 480)).save(photo, quality=90)
        timings = _interleave({s.name: (lambda s=s: s.runtime.classify(photo)) for s in runnable}, settings,
                              on_event, "classify")
    return [ClassifyRow(s.name, s.runtime.precision, float(np.median(timings[s.name])) * 1e3,
                        float(np.percentile(timings[s.name], 90)) * 1e3) for s in runnable]
