"""INT8 layers in float and per-layer error from the command line, on the hard case of tests/conftest.py."""

import json

from alexnet_export.exporter.calibration.ranges import calibration_ranges, load_calibration_set
from alexnet_export.exporter.onnx.quantize import to_int8_tensorrt
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes import OnnxRuntime


def test_help_names_the_layers_and_usage_errors_exit_2_before_any_work(cli, tmp_path, calib_dir):
    cases = [(("onnx", "--keep-float", "conv4"), "apply to INT8 files; precision 'fp32' has no INT8 layers (--keep-float)"),
             (("trt", "--auto-keep-float"), "apply to INT8 files; precision 'fp32' has no INT8 layers (--auto-keep-float)"),
             (("onnx", "--precision", "int8", "--calib-dir", calib_dir, "--keep-float", "conv4,norm1"),
              "layer 'norm1' has no weights to keep in float; expected some of conv1, conv2"),
             (("verify", calib_dir / "class_0" / "img_000.jpg", "--images", calib_dir, "--per-layer"),
              "--per-layer needs --reference")]
    for args, message in cases:
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert list(tmp_path.iterdir()) == []
    # --help teaches the names (trt shares the option group).
    assert "conv4 (features.10)" in cli("onnx", "--help").stdout


def test_failed_gate_names_the_layer_and_keep_float_passes(cli, tmp_path, hard_fp32_onnx, calib_dir, calibration_cache):
    common = ["trt", "--int8", "--onnx", hard_fp32_onnx, "--calib-dir", calib_dir, "--calib-count", "64",
              "--cache-dir", calibration_cache, "-o", tmp_path / "hard.engine"]
    failed = cli(*common)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert ("fails the int8 parity gate" in failed.stderr and "most noise enters at conv3 (features.8)" in failed.stderr
            and "try --keep-float conv4" in failed.stderr), failed.stderr
    assert list(tmp_path.iterdir()) == []
    kept = cli(*common, "--keep-float", "conv4")
    # Without a builder the command stops after the verified ONNX; with TensorRT for RTX it builds the engine
    # too. Either way the verified ONNX keeps conv4 in float.
    assert "note: kept in float: conv4 (features.10)" in kept.stderr, kept.stderr
    assert OnnxRuntime(tmp_path / "hard.int8-tensorrt.onnx").precision == "int8-tensorrt"


def test_verify_per_layer_names_the_layer_where_noise_enters(cli, tmp_path, hard_fp32_onnx, calib_dir,
                                                             calibration_cache):
    # A file that fails its gate is never written by the exporter: quantize one directly.
    calibration = load_calibration_set(calib_dir, 64, Preprocessing())
    all_int8 = tmp_path / "hard.int8-tensorrt.onnx"
    to_int8_tensorrt(hard_fp32_onnx, calibration_ranges(hard_fp32_onnx, calibration, "percentile", calibration_cache),
                     all_int8)
    result = cli("verify", all_int8, "--per-layer", "--reference", hard_fp32_onnx, "--images", calib_dir / "class_1",
                 "--json")
    assert result.returncode == 0, result.stderr
    layers = json.loads(result.stdout)["per_layer"]
    assert layers["worst"] == "conv3" and layers["images"] == 18
    by_name = {row["layer"]: row for row in layers["layers"]}
    assert list(by_name)[:3] == ["conv1", "pool1", "norm1"] and list(by_name)[-1] == "fc8"
    assert by_name["conv3"]["sqnr_db"] < 20 < by_name["norm2"]["sqnr_db"]
