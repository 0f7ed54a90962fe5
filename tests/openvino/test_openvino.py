"""OpenVINO IRs: made from the toolkit's ONNX files, verified, and run through the common interface."""

import numpy as np
import pytest

ov = pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install '.[openvino]')")

from alexnet_export.errors import ProviderError  # noqa: E402
from alexnet_export.exporter.openvino.convert import staged_ir, write_ir  # noqa: E402
from alexnet_export.errors import ArgumentError  # noqa: E402
from alexnet_export.exporter.pipeline import PipelineError, export_openvino_ir  # noqa: E402
from alexnet_export.exporter.onnx.variants import CalibrationOptions  # noqa: E402
from alexnet_export.runtimes import OnnxRuntime  # noqa: E402
from alexnet_export.runtimes.openvino.runtime import OpenVinoRuntime, OpenVinoUnavailable  # noqa: E402
from alexnet_export.runtimes.preprocess import preprocess_batch  # noqa: E402
from alexnet_export.runtimes.registry import open_runtime  # noqa: E402

HAS_BF16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no BF16 (OpenVINO lists no BF16 capability)")


@pytest.fixture(scope="module")
def fp32_ir(small_onnx, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ir")
    return export_openvino_ir(folder / "small.xml", fp32_onnx=small_onnx)


def _compiled_precisions(runtime: OpenVinoRuntime) -> dict[str, set[str]]:
    """Layer type -> the precisions OpenVINO's CPU plugin runs it in, read from the compiled graph."""
    found = {}
    for op in runtime._compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        found.setdefault(info["layerType"].astype(str), set()).add(info["runtimePrecision"].astype(str))
    return found


def test_fp32_ir_matches_onnx_runtime_and_carries_the_metadata(fp32_ir, small_onnx, real_images):
    assert sorted(p.name for p in fp32_ir.path.parent.iterdir()) == ["small.bin", "small.xml"]
    assert fp32_ir.report.max_abs <= 1e-4 and fp32_ir.precision == "fp32"
    runtime, reference = open_runtime(fp32_ir.path, threads=2), OnnxRuntime(small_onnx)
    assert isinstance(runtime, OpenVinoRuntime) and runtime.precision == "fp32" and "f32" in runtime.device
    assert runtime.metadata == reference.metadata  # labels, preprocessing, source hash, tool versions
    batch = preprocess_batch(real_images[:6], reference.metadata.preprocessing)
    np.testing.assert_allclose(runtime.predict(batch), reference.predict(batch), atol=1e-4)
    assert [label for label, _ in runtime.classify(real_images[0], top_k=3)[0]] == \
           [label for label, _ in reference.classify(real_images[0], top_k=3)[0]]
    assert _compiled_precisions(runtime)["Convolution"] == {"f32"}  # never BF16 behind the FP32 label


def test_int8_ir_runs_as_int8_and_passes_the_int8_gate(small_onnx, fp32_ir, tmp_path, calib_dir, calibration_cache):
    result = export_openvino_ir(tmp_path / "small.int8.xml", fp32_onnx=small_onnx, precision="int8-openvino",
                                calibration=CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache))
    assert result.variant.precision == "int8-tensorrt" and result.report.min_cosine >= 0.98
    runtime = OpenVinoRuntime(result.path)
    assert runtime.precision == "int8-openvino"
    precisions = _compiled_precisions(runtime)
    assert precisions["Convolution"] <= {"u8", "i8"}, precisions  # every convolution runs in 8 bits
    int8_weights, fp32_weights = (p.with_suffix(".bin").stat().st_size for p in (result.path, fp32_ir.path))
    assert int8_weights < 0.3 * fp32_weights  # the weights are stored as INT8


def test_a_failed_write_keeps_the_ir_that_was_there(fp32_ir, tmp_path):
    import shutil

    target = tmp_path / "m.xml"
    shutil.copy(fp32_ir.path, target)
    shutil.copy(fp32_ir.path.with_suffix(".bin"), tmp_path / "m.bin")
    before = (target.read_bytes(), (tmp_path / "m.bin").read_bytes())
    with pytest.raises(RuntimeError, match="gate failed"):
        with staged_ir(target) as staged:
            staged.write_text("half an IR")
            raise RuntimeError("gate failed")
    assert (target.read_bytes(), (tmp_path / "m.bin").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]  # no hidden staging folder left


@pytest.mark.skipif(HAS_BF16, reason="this CPU has BF16: the refusal is for CPUs without it")
def test_bf16_is_refused_where_the_cpu_lacks_it(small_onnx, tmp_path):
    with pytest.raises(OpenVinoUnavailable, match="this CPU has no BF16 instructions"):
        export_openvino_ir(tmp_path / "m.bf16.xml", fp32_onnx=small_onnx, precision="bf16")
    assert list(tmp_path.iterdir()) == []
    write_ir(small_onnx, tmp_path / "labelled.xml", "bf16")  # a BF16 IR made elsewhere
    with pytest.raises(ProviderError, match=r"labelled.xml is a BF16 model and this CPU \(.*\) has no BF16"):
        OpenVinoRuntime(tmp_path / "labelled.xml")


@needs_bf16
def test_bf16_ir_runs_in_bf16_within_its_gate(small_onnx, tmp_path, calib_dir):
    result = export_openvino_ir(tmp_path / "m.bf16.xml", fp32_onnx=small_onnx, precision="bf16",
                                calibration=CalibrationOptions(calib_dir, 64))
    assert result.report.min_cosine >= 0.9999
    runtime = OpenVinoRuntime(result.path)
    assert runtime.precision == "bf16" and "bf16" in runtime.device
    assert "bf16" in _compiled_precisions(runtime)["Convolution"]


def test_arguments_are_checked_before_any_work(small_onnx, tmp_path):
    with pytest.raises(PipelineError, match="int8-openvino needs calibration images"):
        export_openvino_ir(tmp_path / "m.xml", fp32_onnx=small_onnx, precision="int8-openvino")
    with pytest.raises(ArgumentError, match="precision 'fp16' is unknown for openvino files; expected one of fp32, bf16, int8-openvino"):
        export_openvino_ir(tmp_path / "m.xml", fp32_onnx=small_onnx, precision="fp16")
    assert list(tmp_path.iterdir()) == []


def test_cli_makes_an_ir_that_predict_runs(cli, tmp_path, small_onnx, photos):
    result = cli("openvino", "--onnx", small_onnx, "-o", "m.xml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote m.xml and its .bin (fp32" in result.stdout and "parity, reference vs fp32 OpenVINO IR" in result.stdout
    prediction = cli("predict", tmp_path / "m.xml", photos[0], "--top-k", "2", cwd=tmp_path)
    assert prediction.returncode == 0 and prediction.stdout.count("%") == 2, prediction.stderr
    refused = cli("openvino", "--precision", "int8", "-o", "x.xml", cwd=tmp_path)
    assert refused.returncode == 2 and "int8-openvino needs calibration images: a folder of 64 or more (--calib-dir)" in refused.stderr


def test_logits_are_the_callers_and_a_closed_runtime_says_so(fp32_ir, real_images):
    """The request reads the batch in place and its output tensor is shared (share_inputs, share_outputs);
    the logits returned are a copy, so the next call on the same request does not change them."""
    from alexnet_export.errors import InferenceError

    runtime = OpenVinoRuntime(fp32_ir.path)
    inputs = preprocess_batch(real_images[:2], runtime.metadata.preprocessing)
    first = runtime.predict(inputs[:1])
    kept = first.copy()
    assert not np.array_equal(runtime.predict(inputs[1:2]), kept)
    assert np.array_equal(first, kept) and first.flags.owndata and first.dtype == np.float32
    runtime.close()
    with pytest.raises(InferenceError, match=r"^the OpenVINO runtime for small.xml is closed$"):
        runtime.predict(inputs[:1])
