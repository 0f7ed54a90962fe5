"""`alexnet-export verify`, run as a user would."""

import json
import re

import numpy as np
import torch

from alexnet_export.runtimes.preprocess import find_images, preprocess_batch


def _last_line(result) -> str:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


def _truth_and_eager(calib_dir, torch_runtime, small_metadata):
    paths = find_images(calib_dir)
    logits = torch_runtime.predict(preprocess_batch(paths, small_metadata.preprocessing))
    return np.array([int(p.parent.name.split("_")[1]) for p in paths]), logits


def test_json_report_matches_eager_pytorch(cli, small_onnx, calib_dir, torch_runtime, small_metadata):
    result = cli("verify", small_onnx, "--images", calib_dir, "--labels-from-folders", "--reference", small_onnx,
                 "--json", "--min-agreement", "100")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    truth, eager = _truth_and_eager(calib_dir, torch_runtime, small_metadata)
    assert report["images"] == 90 and report["top_k"] == 5
    assert report["top1"] == report["reference_top1"] == float(np.mean(eager.argmax(1) == truth))
    assert report["agreement"]["top1_agreement"] == 1.0 and report["agreement"]["max_abs"] == 0.0
    assert "evaluating: 90/90" in result.stderr


def test_checkpoint_with_labels_file_and_text_report(cli, small_model, small_onnx, calib_dir, tmp_path, torch_runtime,
                                                     small_metadata):
    checkpoint = tmp_path / "small.pt"
    torch.save(small_model.state_dict(), checkpoint)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(small_metadata.labels))
    result = cli("verify", checkpoint, "--labels", labels, "--images", calib_dir, "--labels-from-folders",
                 "--reference", small_onnx)
    assert result.returncode == 0, result.stderr
    truth, eager = _truth_and_eager(calib_dir, torch_runtime, small_metadata)
    accuracy = float(np.mean(eager.argmax(1) == truth))
    assert f"top-1 accuracy  {accuracy:.2%}" in result.stdout
    assert re.search(r"top-1 agreement \(all\)\s+100\.0%", result.stdout)


def test_gates_fail_after_printing_the_report(cli, small_onnx, calib_dir, torch_runtime, small_metadata):
    truth, eager = _truth_and_eager(calib_dir, torch_runtime, small_metadata)
    accuracy = float(np.mean(eager.argmax(1) == truth))
    assert accuracy < 1.0  # random weights: the 100% gate below must fail
    result = cli("verify", small_onnx, "--images", calib_dir, "--labels-from-folders", "--min-accuracy", "100")
    assert result.returncode == 1
    assert "top-1 accuracy" in result.stdout
    assert _last_line(result) == f"Error: top-1 accuracy {accuracy:.2%} is below --min-accuracy 100%"


def test_usage_and_input_errors_are_one_line(cli, small_onnx, calib_dir, tmp_path):
    result = cli("verify", small_onnx, "--images", calib_dir)
    assert result.returncode == 2 and "nothing to measure" in result.stderr
    result = cli("verify", small_onnx, "--images", calib_dir, "--labels", small_onnx, "--reference", small_onnx)
    assert result.returncode == 2 and "only applies to a checkpoint MODEL" in result.stderr
    result = cli("verify", small_onnx, "--images", calib_dir, "--min-agreement", "99", "--labels-from-folders")
    assert result.returncode == 2 and "--min-agreement needs --reference" in result.stderr
    renamed = tmp_path / "photos" / "cats"
    renamed.mkdir(parents=True)
    for path in find_images(calib_dir)[:3]:
        (renamed / path.name).write_bytes(path.read_bytes())
    result = cli("verify", small_onnx, "--images", tmp_path / "photos", "--labels-from-folders")
    assert result.returncode == 1
    assert re.match(r"Error: class folder 'cats' is not one of the model's 10 labels", _last_line(result))
