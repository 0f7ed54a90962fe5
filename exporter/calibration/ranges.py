"""Calibration: images -> preprocessed batches -> activation ranges, cached.

The ranges are computed once per (FP32 graph and weights, calibration set, method) with ONNX Runtime's
calibrators over every float tensor, and saved in ONNX Runtime's own calibration-cache format,
so the TensorRT INT8 file and the CPU INT8 file quantize from the same ranges and a re-run
skips the minutes of inference.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from alexnet_export.errors import AlexNetExportError
from alexnet_export.models.spec import INPUT_NAME, Preprocessing
from alexnet_export.hashing import file_sha256
from alexnet_export.runtimes.preprocess import IMAGE_SUFFIXES, find_images, preprocess_readable

MIN_IMAGES = 64
RECOMMENDED_IMAGES = 256
DEFAULT_METHOD = "percentile"
# Of |x|: ignores the rarest largest activations, keeps the rest of the range. On a trained model
# (benchmarks/accuracy.py: AlexNet trained on real digits) 99.999 kept both INT8 files within
# 0.25 points of FP32's test accuracy (min cosine 0.9999); 99.9 clipped the rare large activations
# that carry the class: the INT8 gate refused the CPU file (min cosine 0.979 on held-out images).
# The entropy search clipped more (0.75 to 1.75 points lost). 99.9 had looked better on random
# weights only.
PERCENTILE = 99.999
METHODS = ("minmax", "entropy", "percentile")
# ONNX Runtime's calibrator options per method. Entropy: ONNX Runtime's defaults (128 histogram
# bins searched for a 128-bin range) leave one candidate, the full range, so its "entropy" is
# min/max; 2048 bins searched down to 128, as TensorRT's entropy calibrator does, make it a search.
METHOD_OPTIONS = {"minmax": {}, "entropy": {"num_bins": 2048, "num_quantized_bins": 128},
                  "percentile": {"percentile": PERCENTILE}}
VERIFY_HOLDOUT = 64  # images kept out of calibration to verify on, when the folder has them
SELECTION_SEED = 0

Tick = Callable[[int], None]  # called with the number of images just processed


class CalibrationError(AlexNetExportError, ValueError):
    """The calibration images cannot be used."""


@dataclass(frozen=True)
class CalibrationSet:
    images: np.ndarray  # (N, 3, H, W) float32, preprocessed
    holdout: np.ndarray  # images not used for calibration, for verification (may be empty)
    digest: str  # sha256 over the used files' contents and the preprocessing
    skipped: tuple[str, ...]  # one line per unreadable file


@dataclass(frozen=True)
class Ranges:
    path: Path  # ONNX Runtime calibration cache (JSON)
    method: str
    cache_hit: bool


def load_calibration_set(
    folder: str | Path, count: int, preprocessing: Preprocessing,
    progress: Callable[[int], Tick] = lambda total: (lambda n: None), *, paths: Sequence[Path] | None = None,
) -> CalibrationSet:
    """Pick `count` images (a seeded sample when there are more), decode and preprocess them;
    up to VERIFY_HOLDOUT further images are kept out of calibration to verify on.
    progress(total) gives the tick called as images are read, once the folder is listed.
    paths: the folder's images as find_images lists them, when the caller has listed it.

    Fails fast, before any inference, when fewer than MIN_IMAGES images can be read.
    """
    if count < MIN_IMAGES:
        raise CalibrationError(f"asked to calibrate on {count} images; calibration needs at least {MIN_IMAGES}")
    paths = list(paths) if paths is not None else find_images(folder, "calibration folder")
    if len(paths) < MIN_IMAGES:
        raise CalibrationError(too_few_files(len(paths), folder))
    wanted = wanted_paths(paths, count)
    images, kept, skipped = preprocess_readable(wanted, preprocessing, progress(len(wanted)))
    used = [wanted[i] for i in kept]
    # Hold images out for verification even when the folder has fewer than count + holdout,
    # as long as calibration keeps its minimum.
    calibration_count = min(count, max(MIN_IMAGES, len(images) - VERIFY_HOLDOUT), len(images))
    if calibration_count < MIN_IMAGES:
        raise CalibrationError(
            f"only {len(images)} of {len(wanted)} images under {folder} could be read; calibration needs at least"
            f" {MIN_IMAGES} (first problem: {skipped[0] if skipped else 'none'})"
        )
    digest = hashlib.sha256(preprocessing.to_json().encode())
    for path in used[:calibration_count]:
        digest.update(bytes.fromhex(file_sha256(path)))
    return CalibrationSet(images[:calibration_count], images[calibration_count:], digest.hexdigest(), tuple(skipped))


def too_few_files(found: int, folder: str | Path) -> str:
    return (f"found {found} image files under {folder} ({', '.join(IMAGE_SUFFIXES)}); calibration needs at least"
            f" {MIN_IMAGES}")


def wanted_paths(paths: Sequence[Path], count: int) -> list[Path]:
    """The images read for a calibration set of `count`: a seeded sample of count + VERIFY_HOLDOUT."""
    order = np.random.default_rng(SELECTION_SEED).permutation(len(paths))
    return [paths[i] for i in order[: count + VERIFY_HOLDOUT]]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "alexnet-export" / "calibration"


def calibration_ranges(
    fp32_onnx: str | Path,
    calibration: CalibrationSet,
    method: str = DEFAULT_METHOD,
    cache_dir: str | Path | None = None,
    tick: Tick = lambda n: None,
) -> Ranges:
    """The activation ranges of `fp32_onnx` on `calibration`, from the cache when it has them."""
    if method not in METHODS:
        raise CalibrationError(f"calibration method {method!r} is unknown; expected one of {', '.join(METHODS)}")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalibrationError(f"cannot create the calibration cache folder {folder}: {exc.strerror or exc}") from None
    path = folder / cache_name(fp32_onnx, calibration, method)
    if path.is_file():
        return Ranges(path, method, cache_hit=True)
    _calibrate(Path(fp32_onnx), calibration.images, method, path, tick)
    return Ranges(path, method, cache_hit=False)


def cache_name(fp32_onnx: str | Path, calibration: CalibrationSet, method: str) -> str:
    """The cache entry of the ranges of `fp32_onnx` on `calibration` by `method`: what they depend on and
    nothing else. The method's options are in it: ranges computed with other settings are other ranges."""
    settings = "-".join([method, *(str(value) for value in METHOD_OPTIONS[method].values())])
    return f"{graph_digest(fp32_onnx)[:16]}-{calibration.digest[:16]}-{settings}.json"


def graph_digest(onnx_file: str | Path) -> str:
    """sha256 of what a model's activation ranges depend on: its graph, weights and opsets, without the
    file's metadata (labels, weights' source, tool versions, description), so that exporting again with
    only other labels or another file name reuses the cached ranges. External data is read in."""
    import onnx

    model = onnx.load(str(onnx_file))
    del model.metadata_props[:]
    model.doc_string = model.producer_name = model.producer_version = ""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[method]


def _calibrate(fp32_onnx: Path, images: np.ndarray, method: str, cache_path: Path, tick: Tick) -> None:
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    with tempfile.TemporaryDirectory(prefix="alexnet-export-calib-") as scratch, quiet_onnxruntime_quantization():
        calibrator = create_calibrator(
            fp32_onnx,
            None,  # every float tensor, so both INT8 flavours find the ranges they need
            augmented_model_path=str(Path(scratch) / "augmented.onnx"),
            calibrate_method=ort_method(method),
            providers=["CPUExecutionProvider"],
            extra_options=METHOD_OPTIONS[method],
        )
        calibrator.collect_data(_image_reader(images, tick))
        # save_tensors_data writes to a temporary file and renames it: a crash leaves no cache.
        save_tensors_data(calibrator.compute_data(), cache_path)


def _image_reader(images: np.ndarray, tick: Tick):
    """ONNX Runtime's CalibrationDataReader over `images`, one image per step.

    Equal-sized steps: the histogram calibrators fail on a ragged last batch.
    """
    from onnxruntime.quantization import CalibrationDataReader

    class ImageReader(CalibrationDataReader):
        def __init__(self):
            self._next = 0

        def get_next(self):
            if self._next >= len(images):
                return None
            batch = images[self._next : self._next + 1]
            self._next += 1
            tick(1)
            return {INPUT_NAME: batch}

        def __len__(self):
            return len(images)

    return ImageReader()


@contextlib.contextmanager
def quiet_onnxruntime_quantization():
    """ONNX Runtime's quantization tools print progress and pre-processing advice; hide it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
