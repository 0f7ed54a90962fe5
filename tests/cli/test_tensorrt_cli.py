"""`trt` and `inspect` through the installed console script, with TensorRT for RTX building on this
CPU; and `predict`, `bench`, `serve` refusing an engine where there is no GPU, in one line."""

import json
import re

import pytest

from alexnet_export.runtimes.tensorrt.sidecar import read_sidecar
from alexnet_export.runtimes.tensorrt.support import has_gpu


def test_trt_builds_a_pixel_engine_ahead_of_time(cli, rtx, tmp_path, small_onnx):
    result = cli("trt", "--onnx", small_onnx, "--input-format", "uint8", "--builder", "tensorrt-rtx",
                 "--compute-capability", "8.9,8.6", "--min-batch", "1", "--opt-batch", "1", "--max-batch", "2",
                 "-o", "m.engine", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^wrote m.engine \(fp32, batch 1..2, \d+\.\d MB\) for compute capability 8.6, 8.9, built ahead"
                     rf" of time by TensorRT for RTX {re.escape(rtx.__version__)} in", result.stdout, re.M), result.stdout
    assert "has no timing cache" in result.stderr  # and none is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json", "m.uint8.onnx"]
    sidecar = read_sidecar(tmp_path / "m.engine")
    assert sidecar["source_onnx"] == "m.uint8.onnx" and sidecar["input"]["dtype"] == "uint8"
    assert sidecar["targets"]["compute_capabilities"] == ["8.6", "8.9"]


def test_trt_refuses_the_other_builders_options_before_any_work(cli, rtx, tmp_path, small_onnx, one_line_error):
    cases = [(["--compute-capability", "6.1"], r"does not build for compute capability 6.1; it builds for .*"
                                               r" \(--compute-capability\)$"),
             (["--hardware-compatibility", "ampere+"], r"hardware compatibility is TensorRT's; TensorRT for RTX .*"
                                                       r" \(--hardware-compatibility\)$"),
             (["--version-compatible"], r"has no version-compatible engines.* \(--version-compatible\)$")]
    for flags, pattern in cases:
        one_line_error(cli("trt", "--onnx", small_onnx, "--builder", "tensorrt-rtx", *flags, "-o", "m.engine",
                           cwd=tmp_path), pattern, code=2)
    one_line_error(cli("trt", "--compute-capability", "9", cwd=tmp_path),
                   r"compute capability 9 is not a MAJOR.MINOR number like 8.6", code=2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(has_gpu(), reason="this machine has an NVIDIA GPU: the refusal without one cannot happen here")
@pytest.mark.parametrize("command", [["predict", "{engine}", "{image}"], ["bench", "{engine}", "--batch-sizes", "1"],
                                     ["serve", "{engine}"]])
def test_an_engine_is_refused_in_one_line_without_a_gpu(cli, trt_engines, photos, tmp_path, command, one_line_error):
    engine = trt_engines["fp16"].path
    args = [part.format(engine=engine, image=photos[0]) for part in command]
    one_line_error(cli(*args, cwd=tmp_path, timeout=120),
                    rf"^Error: no NVIDIA GPU here: the CUDA driver \(libcuda.so.1\) is not installed; {re.escape(str(engine))}"
                    r" runs on compute capability [\d., ]+ \(TensorRT for RTX [\d.]+, ahead of time without a GPU\)$")
    assert list(tmp_path.iterdir()) == []


def test_inspect_prints_layers_and_json(cli, rtx, trt_engines):
    engine = trt_engines["int8-kept"].path
    text = cli("inspect", engine)
    assert text.returncode == 0, text.stderr
    assert re.search(r"^  conv1\s+fp32 \(kept float\)\s+CONVOLUTION\s+\S+$", text.stdout, re.M), text.stdout
    assert re.search(r"^  norm1\s+fp32\s+LRN", text.stdout, re.M) and "(the engine's)" in text.stdout
    as_json = cli("inspect", engine, "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    layers = {layer["name"]: layer["precision"] for layer in report["layers"]}
    assert layers["conv2"] == "int8" and layers["fc8"] == "fp32" and report["batch"] == {"min": 1, "opt": 2, "max": 4}
    assert report["targets"]["compute_capabilities"] == list(trt_engines["int8-kept"].targets.compute_capabilities)


def test_inspect_failures_are_one_line(cli, tmp_path, one_line_error):
    (tmp_path / "m.engine").write_bytes(b"\x00" * 64)
    one_line_error(cli("inspect", "m.engine", cwd=tmp_path), r"^Error: .*m.engine.json is missing")
    one_line_error(cli("inspect", "absent.onnx", cwd=tmp_path), r"does not exist", code=2)
