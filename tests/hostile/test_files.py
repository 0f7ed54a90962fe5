"""Hostile model files: each gives a clean one-line error, exit 1 from the CLI, and no output."""

import os
import re

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from alexnet_export.errors import ModelLoadError
from alexnet_export.runtimes import OnnxRuntime
from alexnet_export.runtimes.untrusted import CLEAN_ERROR, probe


def one_line_failure(result):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


class _WritesSentinel:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_code_running_checkpoint_is_refused_by_the_cli(cli, tmp_path, small_model, one_line_failure):
    sentinel = tmp_path / "pwned"
    torch.save({**small_model.state_dict(), "x": _WritesSentinel(sentinel)}, tmp_path / "evil.pt")
    line = one_line_failure(cli("onnx", "--weights", "evil.pt", "-o", "out.onnx", cwd=tmp_path))
    assert re.match(r"Error: refused to load evil.pt: loading it could run code \(.*posix.system", line)
    assert not sentinel.exists() and not (tmp_path / "out.onnx").exists()
    line = one_line_failure(cli("predict", "evil.pt", "x.jpg", cwd=tmp_path))
    assert "refused to load" in line and not sentinel.exists()


@pytest.mark.parametrize("suffix", [".onnx", ".engine", ".pt", ".safetensors"])
@pytest.mark.parametrize("kind", ["empty", "random", "truncated"])
def test_broken_model_files(cli, tmp_path, small_onnx, suffix, kind, one_line_failure):
    rng = np.random.default_rng(0)
    content = {"empty": b"", "random": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
               "truncated": small_onnx.read_bytes()[:100_000]}[kind]
    (tmp_path / f"model{suffix}").write_bytes(content)
    (tmp_path / "cat.png").write_bytes(b"")  # never reached
    line = one_line_failure(cli("predict", f"model{suffix}", "cat.png", cwd=tmp_path))
    assert line.startswith("Error: ") and f"model{suffix}" in line


def _external_data_model(folder, location):
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16], data_location=TensorProto.EXTERNAL)
    for key, value in {"location": location, "offset": "0", "length": "64"}.items():
        weight.external_data.add(key=key, value=value)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [16])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], initializer=[weight])
    path = folder / "model.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8).SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "ABSOLUTE", "link.bin"], ids=["dotdot", "absolute", "symlink"])
def test_external_data_outside_the_model_folder_is_refused(tmp_path, location):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(16, dtype=np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "link.bin").symlink_to(secret)
    path = _external_data_model(folder, str(secret) if location == "ABSOLUTE" else location)
    with pytest.raises(ModelLoadError, match="escapes model directory|Absolute path not allowed"):
        OnnxRuntime(path)
    assert probe(path).outcome == CLEAN_ERROR


def _graph_model(tmp_path, node, opset=18, domain=""):
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 224, 224])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])
    graph = helper.make_graph([node], "g", [x], [y])
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=imports, ir_version=8).SerializeToString())
    return path


@pytest.mark.parametrize(
    "node, opset, domain",
    [
        (helper.make_node("TotallyUnknownOp", ["images"], ["logits"]), 18, ""),
        (helper.make_node("Evil", ["images"], ["logits"], domain="com.example.custom"), 18, "com.example.custom"),
        (helper.make_node("Identity", ["images"], ["logits"]), 99, ""),
    ],
    ids=["unknown-op", "custom-domain", "future-opset"],
)
def test_unsupported_graphs_fail_at_load_not_first_request(tmp_path, node, opset, domain):
    with pytest.raises(ModelLoadError, match="ONNX Runtime cannot load"):
        OnnxRuntime(_graph_model(tmp_path, node, opset, domain))


def test_graph_that_fails_at_run_time_is_a_clean_inference_error(tmp_path, cli, one_line_failure):
    from alexnet_export.errors import InferenceError

    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 10])  # 3*224*224 is not a multiple of 10
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 224, 224])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])
    graph = helper.make_graph([helper.make_node("Reshape", ["images", "shape"], ["logits"])], "g", [x], [y],
                              initializer=[shape])
    path = tmp_path / "bad-reshape.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8).SerializeToString())
    with pytest.raises(InferenceError, match="ONNX Runtime failed on a batch of 1"):
        OnnxRuntime(path).predict(np.zeros((1, 3, 224, 224), np.float32))
    assert probe(path).outcome == CLEAN_ERROR
    from PIL import Image

    Image.new("RGB", (40, 30)).save(tmp_path / "x.png")
    line = one_line_failure(cli("predict", path, tmp_path / "x.png"))
    assert line.startswith("Error: ONNX Runtime failed on a batch of 1")
