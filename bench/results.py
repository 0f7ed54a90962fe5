"""What a benchmark run is asked (Settings) and what it returns: typed rows, and `to_dict()` for the JSON that
`bench --json` writes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from alexnet_export.runtimes.verification.timing import Settle

if TYPE_CHECKING:
    from alexnet_export.bench.recommend import GateCheck, Pick


@dataclass(frozen=True)
class Row:
    """One model at one batch size."""

    model: str  # file name
    precision: str  # the runtime's, models/spec.py's words
    device: str
    file_mb: float
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    images_per_s: float
    roofline_fraction: float | None  # CPU: FP32 rows only; CUDA: the GPU's rate in the row's math, where measured
    rounds: int
    roofline_basis: str | None = None  # "cpu fp32", "cuda tf32", "cuda fp16", ...: which rate the fraction is of
    # CUDA rows: mean per call from CUDA's activity trace (bench/device.py); None on the CPU or where unmeasured.
    device_ms: float | None = None  # device busy time: the three below
    h2d_ms: float | None = None
    compute_ms: float | None = None
    d2h_ms: float | None = None
    # The 95% interval of p50 by order statistics (runtimes/verification/timing.py median_interval).
    p50_ci_ms: tuple[float, float] | None = None
    stopped: str | None = None  # why its batch's rounds ended: "stable", a maximum, or the rounds or seconds asked
    p95_ms: float | None = None  # the tail a latency budget is kept at (optimize --objective throughput)


RESULT_FIELDS = tuple(f.name for f in fields(Row))


@dataclass(frozen=True)
class Settings:
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    threads: int = 2
    warmup: int = 3
    iterations: int | None = 20  # rounds per batch size, or
    seconds: float | None = None  # a time budget per batch size, or
    cold_start: bool = True
    trusted_key: Path | None = None  # every model's signature must verify with it (runtimes/signing/sign.py)
    settle: Settle | None = None  # rounds until every model's median is stable (timing.py's rule)
    classify: bool = True  # also time classify() end to end (optimize does not: it would double its timing)

    def __post_init__(self):
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"batch sizes {self.batch_sizes} must be positive integers")
        if sum(option is not None for option in (self.iterations, self.seconds, self.settle)) != 1:
            raise ValueError("give either iterations or seconds (or settle), one of them")


@dataclass(frozen=True)
class ClassifyRow:
    """`classify()` end to end (decode, preprocess, infer) at batch 1."""

    model: str
    precision: str
    p50_ms: float
    p90_ms: float


@dataclass(frozen=True)
class ColdStart:
    """Import, load and first inference in a fresh process, and its peak memory; or why the child failed."""

    seconds: float | None = None
    peak_rss_mb: float | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"error": self.error}
        return {"cold_start_s": self.seconds, "peak_rss_mb": self.peak_rss_mb}


@dataclass(frozen=True)
class ModelInfo:
    model: str
    path: str
    precision: str
    device: str
    file_mb: float
    cold: ColdStart | None = None  # None: not measured

    def to_dict(self) -> dict:
        facts = {"model": self.model, "path": self.path, "precision": self.precision, "device": self.device,
                 "file_mb": self.file_mb}
        return {**facts, **(self.cold.to_dict() if self.cold is not None else {})}


@dataclass(frozen=True)
class Roofline:
    matmul_gflops: float  # the machine's FP32 matrix-multiply rate at the benchmark's threads
    gflop_per_image: float
    device_gflops: dict = field(default_factory=dict)  # the GPU's matmul rate per math (bench/device.py); {} without CUDA

    @property
    def images_per_s(self) -> float:
        return self.matmul_gflops / self.gflop_per_image


@dataclass(frozen=True)
class BenchResult:
    machine: dict  # describe_machine's, which the scripts in benchmarks/ share
    settings: Settings
    roofline: Roofline
    models: list[ModelInfo] = field(default_factory=list)
    results: list[Row] = field(default_factory=list)
    classify: list[ClassifyRow] = field(default_factory=list)
    gates: list[GateCheck] = field(default_factory=list)  # each model against the run's FP32 model
    recommendation: list[Pick] = field(default_factory=list)  # per batch, the fastest that passed

    def to_dict(self) -> dict:
        settings = self.settings
        return {
            "machine": self.machine,
            "settings": {"batch_sizes": list(settings.batch_sizes), "threads": settings.threads,
                         "warmup": settings.warmup, "iterations": settings.iterations, "seconds": settings.seconds,
                         "settle": asdict(settings.settle) if settings.settle else None, "classify": settings.classify,
                         "onnxruntime_spinning": False},
            "roofline": {**asdict(self.roofline), "images_per_s": self.roofline.images_per_s},
            "models": [model.to_dict() for model in self.models],
            "results": [asdict(row) for row in self.results],
            "classify": [asdict(row) for row in self.classify],
            "gates": [{**asdict(check), "report": asdict(check.report) if check.report else None}
                      for check in self.gates],
            "recommendation": [asdict(pick) for pick in self.recommendation],
        }
