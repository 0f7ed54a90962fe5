"""`pip install alexnet-export` with no extra runs model files and nothing needs torch (README, Set-up)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from alexnet_export.extras import EXPORT_MODULES
from alexnet_export.runtimes import open_runtime


def run(bin_folder, *args, timeout=300):
    return subprocess.run([str(bin_folder / "alexnet-export"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_light_install_has_nothing_of_the_export_extra(light_venv):
    found = subprocess.run(
        [str(light_venv / "python"), "-c",
         f"import importlib.util as u; print(','.join(m for m in {EXPORT_MODULES!r} if u.find_spec(m)))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert found == ""
    assert not list(light_venv.parent.glob("lib/python*/site-packages/torch"))


def test_predict_on_the_light_install_gives_the_full_install_answer(light_venv, small_onnx, photos):
    result = run(light_venv, "predict", small_onnx, photos[0], "--top-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    light = json.loads(result.stdout)
    expected = open_runtime(small_onnx).classify(str(photos[0]), top_k=3)[0]
    got = light[0]["predictions"]
    assert [row["label"] for row in got] == [label for label, _ in expected]
    np.testing.assert_allclose([row["probability"] for row in got], [p for _, p in expected], atol=1e-6)


def test_verify_on_the_light_install(light_venv, small_onnx, photos, tmp_path):
    for photo in photos[:3]:
        (tmp_path / photo.name).write_bytes(photo.read_bytes())
    result = run(light_venv, "verify", small_onnx, "--images", tmp_path, "--reference", small_onnx)
    assert result.returncode == 0, result.stderr
    assert "top-1 agreement" in result.stdout and "100.0%" in result.stdout


def test_serve_on_the_light_install(light_venv, small_onnx, server_process):
    server = server_process(str(light_venv / "alexnet-export"), small_onnx)
    try:
        batch = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        body = {"inputs": [{"name": "images", "shape": list(batch.shape), "datatype": "FP32",
                            "data": batch.ravel().tolist()}]}
        status, _, answer = server.request("POST", "/v2/models/alexnet/infer", json.dumps(body).encode())
        assert status == 200, answer
        logits = np.array(json.loads(answer)["outputs"][0]["data"], np.float32)
        np.testing.assert_allclose(logits, open_runtime(small_onnx).predict(batch).ravel(), atol=1e-4)
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("command", [["onnx", "-o", "alexnet.onnx"], ["openvino", "-o", "alexnet.xml"],
                                     ["trt", "-o", "alexnet.engine"]])
def test_export_commands_name_the_extra_they_need(light_venv, tmp_path, command, one_line_error):
    result = subprocess.run([str(light_venv / "alexnet-export"), *command], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    one_line_error(result, r"^Error: exporting a model needs torch, which is not installed here:"
                           r" pip install 'alexnet-export\[export\]'$")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_needs_the_export_extra(light_venv, tmp_path, photos, one_line_error):
    (tmp_path / "model.pt").write_bytes(b"not opened")
    result = run(light_venv, "predict", tmp_path / "model.pt", photos[0])
    one_line_error(result, r"TorchRuntime \(a PyTorch checkpoint\) needs torch, which is not installed here:"
                           r" pip install 'alexnet-export\[export\]'$")


def test_an_ort_file_runs_on_the_light_install(light_venv, small_onnx, photos, tmp_path):
    from alexnet_export.exporter.pipeline import export_ort_file

    ort_file = export_ort_file(small_onnx, tmp_path / "small.ort").path
    light = run(light_venv, "predict", ort_file, photos[1], "--top-k", "2", "--json")
    assert light.returncode == 0, light.stderr
    expected = open_runtime(small_onnx).classify(str(photos[1]), top_k=2)[0]
    assert [row["label"] for row in json.loads(light.stdout)[0]["predictions"]] == [label for label, _ in expected]


def test_classify_on_the_light_install(light_venv, small_onnx, photos, tmp_path):
    from alexnet_export.batch import Classifier

    output = tmp_path / "results.jsonl"
    result = run(light_venv, "classify", small_onnx, *photos[:3], "-o", output, "--top-k", "2")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]  # -o NAME.jsonl: that one file
    assert sorted(row["path"] for row in rows) == sorted(str(photo.resolve()) for photo in photos[:3])
    expected = Classifier(small_onnx, top_k=2)({"path": np.array([row["path"] for row in rows], dtype=object)})
    assert [row["labels"] for row in rows] == [list(labels) for labels in expected["labels"]]
