"""One FP32 and one INT8 ExecuTorch export of the 10-class seed model, shared by every test here.

Each export lowers a ~180 MB (FP32) or ~45 MB (INT8) program, so they are made once per session;
the batch range is kept small (MAX_BATCH) since ExecuTorch plans memory for the largest batch.
"""

import time

import pytest

MAX_BATCH = 8
EXPORT_SECONDS = {}  # how long each shared export took, printed at the end of the session (-rA)


def needs_executorch():
    return pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed (pip install '.[executorch]')")


@pytest.fixture(scope="session")
def fp32_pte(tmp_path_factory):
    needs_executorch()
    from alexnet_export.exporter.pipeline import ModelSource, export_executorch

    started = time.perf_counter()
    result = export_executorch(tmp_path_factory.mktemp("pte") / "small.pte", ModelSource(num_classes=10, seed=3),
                               max_batch=MAX_BATCH)
    EXPORT_SECONDS["fp32"] = time.perf_counter() - started
    return result


@pytest.fixture(scope="session")
def int8_pte(tmp_path_factory, calib_dir):
    needs_executorch()
    from alexnet_export.exporter.pipeline import CalibrationOptions, ModelSource, export_executorch

    started = time.perf_counter()
    result = export_executorch(tmp_path_factory.mktemp("pte8") / "small.int8.pte", ModelSource(num_classes=10, seed=3),
                               precision="int8-executorch", calibration=CalibrationOptions(calib_dir, 64),
                               max_batch=MAX_BATCH)
    EXPORT_SECONDS["int8"] = time.perf_counter() - started
    return result


def pytest_terminal_summary(terminalreporter):
    if EXPORT_SECONDS:
        terminalreporter.write_line("ExecuTorch shared exports: " + ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in EXPORT_SECONDS.items()))
