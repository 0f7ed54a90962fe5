"""The commands as library calls (exporter/pipeline.py), run in-process."""

import importlib.util
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from alexnet_export.errors import ArgumentError, ExportError, ParityError
from alexnet_export.events import Advance, Note, Step, Verified
from alexnet_export.exporter.pipeline import (
    PipelineError,
    ModelSource,
    build_tensorrt_engine,
    export_onnx_file,
    make_precision_file,
)
from alexnet_export.exporter.tensorrt.convert import build_engine
from alexnet_export.exporter.calibration.images import CalibrationOptions
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime
from alexnet_export.runtimes.preprocess import find_images, preprocess_batch
from alexnet_export.runtimes.tensorrt.support import TensorRTUnavailable

HAS_TENSORRT = any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings"))


def test_failed_int8_gate_keeps_the_good_file_that_was_there(tmp_path, hard_int8_checkpoint, small_model,
                                                              calib_dir, calibration_cache, real_images):
    # The hard checkpoint computes the same function as the small model in FP32 ...
    batch = preprocess_batch(real_images[:4], Preprocessing())
    hard = TorchRuntime(hard_int8_checkpoint)
    np.testing.assert_allclose(hard.predict(batch), TorchRuntime(small_model).predict(batch), rtol=1e-4, atol=1e-4)
    # ... and a good INT8 file sits where its INT8 export will go.
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "model.int8-cpu.onnx"
    calibration = CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache)
    good = export_onnx_file(target, ModelSource(num_classes=10, seed=3), precision="int8-cpu", calibration=calibration)
    good_bytes = target.read_bytes()
    assert good.variant.report.min_cosine >= 0.98

    events = []
    with pytest.raises(ParityError, match=r"cosine [0-9.]+ < 0\.9") as failure:
        export_onnx_file(target, ModelSource(weights=hard_int8_checkpoint), precision="int8-cpu",
                         calibration=calibration, on_event=events.append)
    assert failure.value.report.min_cosine < 0.98  # the figures travel with the error
    # ... and the error says where the noise enters: conv3's output, conv4's input.
    assert "most noise enters at conv3 (features.8)" in str(failure.value) and "keep_float conv4" in str(failure.value)
    assert target.read_bytes() == good_bytes
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.int8-cpu.onnx"]  # nothing partial, no scratch
    assert any(isinstance(e, Step) and e.text.startswith("verifying") for e in events)


def test_export_onnx_file_names_files_by_format_and_reports_events(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    events = []
    result = export_onnx_file(source=ModelSource(num_classes=10, seed=3), precision="fp16", on_event=events.append)
    assert result.path.name == "alexnet.fp16.onnx" and [p.name for p in tmp_path.iterdir()] == ["alexnet.fp16.onnx"]
    assert result.fp32.report.max_abs < 1e-4 and result.variant.report.min_cosine >= 0.999
    assert result.size_bytes == (tmp_path / "alexnet.fp16.onnx").stat().st_size and result.num_classes == 10
    assert OnnxRuntime(result.path).precision == "fp16"
    warnings = [e.text for e in events if isinstance(e, Note) and e.warning]
    assert any("random weights (seed 3)" in text for text in warnings)
    assert any(isinstance(e, Step) and "FP16" in e.text for e in events)
    checks = [e for e in events if isinstance(e, Verified)]  # both gates, in order, with their figures
    assert [c.report for c in checks] == [result.fp32.report, result.variant.report] and "fp16" in checks[1].title
    assert "  9 (1 + 8: batch 1 and batch 8)\n" in checks[0].report.table()  # what "inputs 9" were


def test_model_source_labels_may_be_a_list(tmp_path):
    labels = [f"kind {i}" for i in range(10)]
    result = export_onnx_file(tmp_path / "m.onnx", ModelSource(num_classes=10, seed=3, labels=labels), verify=False)
    assert OnnxRuntime(result.path).metadata.labels == tuple(labels) and result.fp32.report is None


def test_pipeline_arguments_are_checked_before_any_work(tmp_path, small_onnx, calib_dir):
    def refused(argument, message, call, *args, **kwargs):
        with pytest.raises(ArgumentError, match=message) as caught:
            call(*args, **kwargs)
        assert caught.value.argument == argument

    refused("calibration", "int8-cpu needs calibration images", export_onnx_file, tmp_path / "m.onnx", precision="int8-cpu")
    refused("lrn", "applies to FP32 only", export_onnx_file, tmp_path / "m.onnx", precision="fp16", lrn="pooled")
    refused("precision", "precision 'int8' is unknown for onnx files; expected one of fp32, fp16, int8-cpu, int8-tensorrt",
            export_onnx_file, tmp_path / "m.onnx", precision="int8")
    refused("output", "output folder .*absent does not exist", export_onnx_file, tmp_path / "absent" / "m.onnx")
    refused("fp32_onnx", "not both", build_tensorrt_engine, tmp_path / "m.engine", ModelSource(), fp32_onnx=small_onnx)
    refused("fp32_onnx", "does not exist", build_tensorrt_engine, tmp_path / "m.engine", fp32_onnx=tmp_path / "no.onnx")
    refused("precision", "precision 'int8-cpu' is unknown for engine files; expected one of fp32, fp16, int8-tensorrt",
            build_tensorrt_engine, tmp_path / "m.engine", fp32_onnx=small_onnx, precision="int8-cpu",
            calibration=CalibrationOptions(calib_dir))
    refused("keep_float", "apply to INT8 files", make_precision_file, small_onnx, "fp16", tmp_path / "m.onnx",
            keep_float=["conv4"])
    assert list(tmp_path.iterdir()) == []


def test_calibration_images_output_folder_and_batch_are_checked_before_any_work(tmp_path, small_onnx, calib_dir):
    """The Python API runs the CLI's checks (exporter/arguments.py), in milliseconds: nothing is loaded or written."""
    from alexnet_export.exporter.calibration.checks import CalibrationArgumentError

    few = tmp_path / "few"
    few.mkdir()
    for path in find_images(calib_dir)[:26]:
        os.link(path, few / path.name)
    events, started = [], time.perf_counter()
    with pytest.raises(CalibrationArgumentError, match=r"^found 26 image files under .*few \(.*\); calibration needs at"
                                                       r" least 64$") as caught:
        export_onnx_file(tmp_path / "m.onnx", precision="int8-cpu", calibration=CalibrationOptions(few),
                         on_event=events.append)
    assert caught.value.argument == "calibration" and isinstance(caught.value, ArgumentError)
    with pytest.raises(CalibrationArgumentError, match="found 26 image files"):  # FP16 verifies on the folder's images
        make_precision_file(small_onnx, "fp16", tmp_path / "m.onnx", calibration=CalibrationOptions(few))
    with pytest.raises(PipelineError, match=r"^batch 0 is invalid; expected a positive integer") as caught:
        export_onnx_file(tmp_path / "m.onnx", batch=0, on_event=events.append)
    assert caught.value.argument == "batch"
    if Path("/sys").is_dir():  # sysfs: no file can be made there, even by root
        with pytest.raises(PipelineError, match=r"^cannot write in the output folder /sys: ") as caught:
            export_onnx_file(Path("/sys/m.onnx"), on_event=events.append)
        assert caught.value.argument == "output"
    assert time.perf_counter() - started < 2 and events == [] and list(tmp_path.iterdir()) == [few]


def test_make_precision_file_from_an_fp32_onnx(tmp_path, small_onnx, real_images):
    fp32 = tmp_path / "small.onnx"
    shutil.copy(small_onnx, fp32)
    result = make_precision_file(fp32, "fp16")
    assert result.path == tmp_path / "small.fp16.onnx" and result.report.min_cosine >= 0.999
    fp16 = OnnxRuntime(result.path)
    assert fp16.precision == "fp16" and fp16.metadata.labels == OnnxRuntime(fp32).metadata.labels
    with pytest.raises(ArgumentError, match="small.fp16.onnx is a fp16 file; give the FP32 export"):
        make_precision_file(result.path, "fp16", tmp_path / "again.onnx")
    assert not (tmp_path / "again.onnx").exists()


def test_engine_build_refuses_a_fixed_batch_fp32(tmp_path, small_model, small_metadata):
    from alexnet_export.exporter.onnx.convert import export_onnx

    fixed = export_onnx(small_model, tmp_path / "b4.onnx", small_metadata, batch=4, verify=False).path
    with pytest.raises(PipelineError, match="fixed batch of 4"):
        build_tensorrt_engine(tmp_path / "m.engine", fp32_onnx=fixed, precision="fp16")


def test_engine_build_reads_the_precision_from_the_onnx(tmp_path, small_onnx, calib_dir, calibration_cache):
    cpu_int8 = make_precision_file(small_onnx, "int8-cpu", tmp_path / "m.int8-cpu.onnx",
                                   calibration=CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache)).path
    with pytest.raises(ExportError, match="m.int8-cpu.onnx is a int8-cpu file, which TensorRT does not build"):
        build_engine(cpu_int8, tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.skipif(HAS_TENSORRT, reason="an engine builder is installed here")
def test_engine_pipeline_without_tensorrt_keeps_the_verified_onnx(tmp_path, small_onnx):
    fp32 = tmp_path / "model.onnx"
    shutil.copy(small_onnx, fp32)
    events = []
    with pytest.raises(TensorRTUnavailable, match=rf"verified fp16 ONNX is at {tmp_path / 'm.fp16.onnx'}"):
        build_tensorrt_engine(tmp_path / "m.engine", fp32_onnx=fp32, precision="fp16", on_event=events.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fp16.onnx", "model.onnx"]
    assert OnnxRuntime(tmp_path / "m.fp16.onnx").precision == "fp16"
    assert not any(isinstance(e, Advance) for e in events)  # no calibration was asked for
