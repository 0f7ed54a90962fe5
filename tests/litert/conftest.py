"""One FP32, one FP16 and one INT8 LiteRT export of the 10-class seed model, shared by every test here.

Each conversion takes seconds and writes 45 to 180 MB, so each is made once per session.
"""

import time

import pytest

EXPORT_SECONDS = {}  # how long each shared export took, printed at the end of the session (-rA)


def needs_litert():
    pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install '.[litert]')")
    return pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")


def _export(folder, name, **options):
    from alexnet_export.exporter.pipeline import ModelSource, export_litert

    needs_litert()
    started = time.perf_counter()
    result = export_litert(folder / name, ModelSource(num_classes=10, seed=3), **options)
    EXPORT_SECONDS[options.get("precision", "fp32")] = time.perf_counter() - started
    return result


@pytest.fixture(scope="session")
def fp32_tflite(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("tflite"), "small.tflite")


@pytest.fixture(scope="session")
def fp16_tflite(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("tflite16"), "small.fp16.tflite", precision="fp16")


@pytest.fixture(scope="session")
def int8_tflite(tmp_path_factory, calib_dir):
    from alexnet_export.exporter.pipeline import CalibrationOptions

    return _export(tmp_path_factory.mktemp("tflite8"), "small.int8.tflite", precision="int8-litert",
                   calibration=CalibrationOptions(calib_dir, 64))


def pytest_terminal_summary(terminalreporter):
    if EXPORT_SECONDS:
        terminalreporter.write_line("LiteRT shared exports: " + ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in EXPORT_SECONDS.items()))
