"""The installed console script, run in a subprocess as a user would."""

import importlib.util
import json

import numpy as np

import onnx
import pytest
import torch

from alexnet_export import __version__
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime
from alexnet_export.runtimes.preprocess import preprocess_batch


def test_version_and_help_teach(cli):
    assert cli("--version").stdout.strip() == f"alexnet-export, version {__version__}"
    for command in ("onnx", "predict"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "Examples:" in result.stdout and f"alexnet-export {command}" in result.stdout


def test_default_export_works_and_warns(cli_default_export):
    folder, result = cli_default_export
    assert result.returncode == 0, result.stderr
    assert "random weights (seed 0); its predictions are meaningless" in result.stderr
    assert "top-1 agreement" in result.stdout and "wrote alexnet.onnx" in result.stdout
    assert [p.name for p in folder.iterdir()] == ["alexnet.onnx"]
    proto = onnx.load(str(folder / "alexnet.onnx"))
    assert proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 1000
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["alexnet_export.labels"])[0] == "tench"
    assert props["alexnet_export.source_weights"] == "random init, seed 0"


def test_predict_prints_labels_and_json(cli, cli_default_export, photos):
    folder, _ = cli_default_export
    text = cli("predict", folder / "alexnet.onnx", photos[0], photos[1], "--top-k", "2")
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("%") == 4 and str(photos[1]) in text.stdout
    as_json = cli("predict", folder / "alexnet.onnx", photos[0], "--top-k", "3", "--json")
    (entry,) = json.loads(as_json.stdout)
    assert entry["image"] == str(photos[0]) and len(entry["predictions"]) == 3
    expected = OnnxRuntime(folder / "alexnet.onnx").classify(photos[0], top_k=3)[0]
    assert [(p["label"], p["probability"]) for p in entry["predictions"]] == [(l, pytest.approx(p)) for l, p in expected]


def test_export_from_checkpoint_matches_eager(cli, tmp_path, real_images, one_line_error):
    model = seeded_alexnet(7, seed=21)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "ckpt.pth")
    (tmp_path / "labels.txt").write_text("\n".join(f"animal {i}" for i in range(7)))
    result = cli("onnx", "--weights", "ckpt.pth", "--labels", "labels.txt", "-o", "out.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "meaningless" not in result.stderr
    runtime = OnnxRuntime(tmp_path / "out.onnx")
    assert runtime.metadata.labels[3] == "animal 3" and runtime.metadata.source_weights.startswith("sha256:")
    batch = preprocess_batch(real_images[:5], runtime.metadata.preprocessing)
    expected = TorchRuntime(model).predict(batch)
    assert abs(runtime.predict(batch) - expected).max() <= 1e-4
    bad_image = cli("predict", tmp_path / "ckpt.pth", tmp_path / "labels.txt", cwd=tmp_path)
    one_line_error(bad_image, r"cannot read .*labels.txt as an image")


def test_predict_with_a_checkpoint_runs_eagerly(cli, tmp_path, photos):
    model = seeded_alexnet(1000, seed=4)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    result = cli("predict", tmp_path / "m.pt", photos[2], "--top-k", "1", "--json")
    assert result.returncode == 0, result.stderr
    ((prediction,),) = [entry["predictions"] for entry in json.loads(result.stdout)]
    (expected,) = TorchRuntime(model).classify(photos[2], top_k=1)[0]
    assert prediction["label"] == expected[0] and prediction["probability"] == pytest.approx(expected[1], rel=1e-5)


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["onnx", "--weights", "absent.pt"], r"^Error: weights file absent.pt does not exist"),
        (["onnx", "--weights", "garbage.pt"], r"^Error: cannot read garbage.pt as a PyTorch checkpoint"),
        (["onnx", "--weights", "garbage.txt"], r"^Error: .*expected one of \.pt, \.pth, \.safetensors"),
        (["predict", "garbage.txt", "x.jpg"], r"^Error: don't know how to run garbage.txt"),
        (["predict", "garbage.onnx", "x.jpg"], r"^Error: ONNX Runtime cannot load garbage.onnx"),
    ],
)
def test_failures_are_one_line_exit_1_and_write_nothing(cli, tmp_path, args, pattern, one_line_error):
    for name in ("garbage.pt", "garbage.txt", "garbage.onnx"):
        (tmp_path / name).write_bytes(b"\x80\x04garbage" * 20)
    before = sorted(p.name for p in tmp_path.iterdir())
    one_line_error(cli(*args, cwd=tmp_path), pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["onnx", "--batch", "0"], r"'0' is neither 'dynamic' nor a positive integer"),
        (["onnx", "--opset", "12"], r"12 is not in the range 18<=x<=23"),
        (["onnx", "--num-classes", "0"], r"0 is not in the range x>=1"),
        (["predict", "m.onnx"], r"Missing argument 'IMAGES..."),
        (["nonsense"], r"No such command 'nonsense'"),
        # Checked by the library before any work; the CLI names the flag.
        (["onnx", "-o", "no/such/folder/m.onnx", "--num-classes", "2"],
         r"^Error: output folder no/such/folder does not exist; create it first \(--output\)$"),
        (["trt", "--onnx", "m.onnx", "--weights", "w.pt"], r"not both: the FP32 .onnx already holds the model \(--onnx\)$"),
    ],
)
def test_usage_errors_exit_2(cli, tmp_path, args, pattern, one_line_error):
    (tmp_path / "m.onnx").write_bytes(b"not read: the arguments are refused first")
    one_line_error(cli(*args, cwd=tmp_path), pattern, code=2)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_int8_needs_calibration_images(cli, tmp_path, one_line_error):
    one_line_error(cli("onnx", "--precision", "int8", cwd=tmp_path),
                    r"int8-cpu needs calibration images: a folder of 64 or more \(--calib-dir\)$", code=2)
    one_line_error(cli("trt", "--int8", cwd=tmp_path), r"int8-tensorrt needs calibration images.*\(--calib-dir\)$", code=2)
    one_line_error(cli("trt", "--min-batch", "8", "--opt-batch", "4", cwd=tmp_path), r"batch", code=2)
    one_line_error(cli("onnx", "--precision", "fp16", "--lrn", "pooled", cwd=tmp_path),
                    r"applies to FP32 only.*\(--lrn\)$", code=2)
    one_line_error(cli("onnx", "--precision", "fp16", "--keep-float", "conv4", cwd=tmp_path),
                    r"apply to INT8 files.*\(--keep-float\)$", code=2)
    assert list(tmp_path.iterdir()) == []


def test_cpu_int8_export(cli, tmp_path, calib_dir, calibration_cache):
    result = cli("onnx", "--num-classes", "10", "--precision", "int8", "--calib-dir", calib_dir,
                 "--calib-count", "64", "--cache-dir", calibration_cache, "-o", "m.int8.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "int8-cpu" in result.stdout and "held-out" in result.stdout and "calibrating (percentile):" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["m.int8.onnx"]  # the FP32 step leaves nothing
    assert OnnxRuntime(tmp_path / "m.int8.onnx").classify(np.zeros((50, 60, 3), np.uint8))
    again = cli("onnx", "--num-classes", "10", "--precision", "int8", "--calib-dir", calib_dir,
                "--calib-count", "64", "--cache-dir", calibration_cache, "-o", "m.int8.onnx", cwd=tmp_path)
    assert again.returncode == 0 and "reused from" in again.stderr and "calibrating (percentile):" not in again.stderr


@pytest.mark.skipif(any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")),
                    reason="an engine builder is installed here: tests/cli/test_tensorrt_cli.py builds engines")
@pytest.mark.parametrize("flag", ["--int8", "--fp16"])
def test_trt_without_tensorrt_leaves_the_verified_onnx(cli, tmp_path, calib_dir, calibration_cache, flag, one_line_error):
    (tmp_path / "out").mkdir()
    result = cli("trt", flag, "--num-classes", "10", "--calib-dir", calib_dir, "--calib-count", "64",
                 "--cache-dir", calibration_cache, "-o", "out/alexnet.engine", cwd=tmp_path)
    precision = {"--int8": "int8-tensorrt", "--fp16": "fp16"}[flag]
    precision_file = f"alexnet.{precision}.onnx"  # named by format: never confused with the CPU INT8 file
    one_line_error(result, rf"TensorRT is not installed.*pip install 'alexnet-export\[trt\]'.*"
                            rf"verified {precision} ONNX is at out/{precision_file}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["alexnet.onnx", precision_file])
    runtime = OnnxRuntime(tmp_path / "out" / precision_file)
    assert runtime.predict(np.zeros((2, 3, 224, 224), np.float32)).shape == (2, 10)
    assert "parity, FP32 reference vs" in result.stdout


def test_trt_from_an_existing_onnx_refuses_precision_files(cli, tmp_path, small_onnx, one_line_error):
    import shutil

    from alexnet_export.exporter.onnx.quantize import to_fp16

    shutil.copy(small_onnx, tmp_path / "model.onnx")
    to_fp16(tmp_path / "model.onnx", tmp_path / "model.fp16.onnx")
    result = cli("trt", "--fp16", "--onnx", "model.fp16.onnx", "-o", "x.engine", cwd=tmp_path)
    one_line_error(result, r"model.fp16.onnx is a fp16 file; give the FP32 export, the precision file is made from it \(--onnx\)$", code=2)
