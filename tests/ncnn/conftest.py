"""ncnn pairs of the 10-class model, exported once per session through the library call."""

from pathlib import Path

import pytest

pytest.importorskip("ncnn", reason="ncnn is not installed (pip install '.[ncnn]')")
SMALL_CLASSES = 10  # tests/conftest.py's small model


def _export(folder: Path, name: str, **options):
    from alexnet_export.exporter.pipeline import ModelSource, export_ncnn

    return export_ncnn(folder / name, ModelSource(num_classes=SMALL_CLASSES, seed=3), threads=2, **options)


@pytest.fixture(scope="session")
def fp32_ncnn(tmp_path_factory):
    """The exporter's FP32 pair of the 10-class model, with its sidecar."""
    return _export(tmp_path_factory.mktemp("ncnn"), "small.ncnn.param")


@pytest.fixture(scope="session")
def fp16_ncnn(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("ncnn16"), "small.fp16.ncnn.param", precision="fp16")


@pytest.fixture(scope="session")
def int8_ncnn(tmp_path_factory, calib_dir, calibration_cache):
    """The exporter's INT8 pair, calibrated on 64 images of calib_dir (ranges in the session's cache)."""
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    return _export(tmp_path_factory.mktemp("ncnn8"), "small.int8.ncnn.param", precision="int8-ncnn",
                   calibration=CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache))
