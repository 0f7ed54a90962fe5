"""ncnn pairs of the 10-class model, exported once per session through the library call (the INT8 pair,
int8_ncnn, is in tests/conftest.py: the aarch64 check shares it)."""

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
