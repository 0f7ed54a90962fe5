"""Files that take uint8 RGB pixels (`--input-format uint8`): the graph normalises, the app resizes and crops."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from alexnet_export.errors import InputError
from alexnet_export.models.spec import INPUT_KEY, PREPROCESSING_KEY, Preprocessing, precision_file_name
from alexnet_export.runtimes.preprocess import load_image, preprocess, resize_and_crop


def test_pixel_file_matches_the_float_file_on_the_test_photos(pixel_runtime, onnx_runtime, photos):
    spec = onnx_runtime.metadata.preprocessing
    images = [load_image(path) for path in photos]
    expected = onnx_runtime.predict(np.stack([preprocess(image, spec) for image in images]))
    actual = pixel_runtime.predict(np.stack([resize_and_crop(image, spec) for image in images]))
    # The same float32 operations in the same order as the Python preprocessing: measured identical.
    assert np.abs(actual - expected).max() <= 1e-5 * np.abs(expected).max()
    assert (actual.argmax(1) == expected.argmax(1)).all()
    assert pixel_runtime.classify(photos[:3], top_k=3) == onnx_runtime.classify(photos[:3], top_k=3)


def test_pixel_file_says_what_it_takes(pixel_onnx, pixel_runtime, small_onnx):
    (graph_input,) = pixel_runtime.session.get_inputs()
    assert graph_input.type == "tensor(uint8)" and graph_input.shape[1:] == [224, 224, 3]
    assert pixel_runtime.metadata.preprocessing.takes_pixels and pixel_runtime.bounds.maximum is None
    props = {p.key: p.value for p in onnx.load(str(pixel_onnx), load_external_data=False).metadata_props}
    assert props[INPUT_KEY].startswith("images: uint8 [batch, 224, 224, 3]")
    # Float files keep the record they always had, so releases without input_format still read them.
    float_props = {p.key: p.value for p in onnx.load(str(small_onnx), load_external_data=False).metadata_props}
    assert "input_format" not in float_props[PREPROCESSING_KEY] and '"input_format": "uint8"' in props[PREPROCESSING_KEY]
    assert Preprocessing.from_json(props[PREPROCESSING_KEY]).takes_pixels
    assert precision_file_name("alexnet", "fp16", input_format="uint8") == "alexnet.fp16.uint8.onnx"


def test_the_wrong_dtype_is_one_line_saying_which_is_expected(pixel_runtime, onnx_runtime):
    with pytest.raises(InputError, match=r"^input dtype is float32; this model takes uint8 RGB pixels \(batch, 224, 224, 3\)"):
        pixel_runtime.predict(np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(InputError, match=r"^input dtype is uint8; expected float32 .*--input-format uint8"):
        onnx_runtime.predict(np.zeros((1, 3, 224, 224), np.uint8))
    with pytest.raises(InputError, match=r"looks like NCHW: use batch.transpose\(0, 2, 3, 1\)"):
        pixel_runtime.predict(np.zeros((1, 3, 224, 224), np.uint8))


def test_verify_compares_a_pixel_file_with_its_float_file(cli, pixel_onnx, small_onnx, calib_dir):
    result = cli("verify", pixel_onnx, "--images", calib_dir, "--reference", small_onnx, "--min-agreement", 100,
                 "--json")
    assert result.returncode == 0, result.stderr
    agreement = json.loads(result.stdout)["agreement"]
    assert agreement["samples"] == 90 and agreement["top1_agreement"] == 1.0 and agreement["max_abs"] <= 1e-4


def test_cli_exports_an_fp16_pixel_file_named_by_format(cli, tmp_path):
    result = cli("onnx", "--num-classes", 10, "--seed", 3, "--precision", "fp16", "--input-format", "uint8",
                 "--no-verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from alexnet_export.runtimes import OnnxRuntime

    runtime = OnnxRuntime(tmp_path / "alexnet.fp16.uint8.onnx", providers=["CPUExecutionProvider"])
    assert runtime.precision == "fp16" and runtime.metadata.preprocessing.takes_pixels
    assert "uint8 pixel file" in result.stdout + result.stderr
    assert runtime.predict(np.zeros((2, 224, 224, 3), np.uint8)).shape == (2, 10)


def test_trt_pipeline_makes_the_pixel_onnx_the_engine_is_built_from(tmp_path, small_onnx):
    from alexnet_export.exporter.pipeline import build_tensorrt_engine
    from alexnet_export.runtimes import OnnxRuntime
    from alexnet_export.runtimes.tensorrt.support import TensorRTUnavailable, import_tensorrt

    try:
        import_tensorrt()
        pytest.skip("an engine builder is installed here: tests/cli/test_tensorrt_cli.py builds the pixel engine")
    except TensorRTUnavailable:
        pass
    with pytest.raises(TensorRTUnavailable, match=rf"verified fp32 ONNX is at {tmp_path / 'm.uint8.onnx'}"):
        build_tensorrt_engine(tmp_path / "m.engine", fp32_onnx=small_onnx, input_format="uint8")
    runtime = OnnxRuntime(tmp_path / "m.uint8.onnx", providers=["CPUExecutionProvider"])
    assert runtime.metadata.preprocessing.takes_pixels and runtime.session.get_inputs()[0].type == "tensor(uint8)"
