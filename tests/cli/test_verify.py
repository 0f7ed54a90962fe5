"""`alexnet-export verify`, run as a user would."""

import json
import re

import numpy as np
import pytest
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


def test_agreement_with_a_different_model_is_measured_not_assumed(cli, small_onnx, calib_dir, tmp_path, torch_runtime,
                                                                  small_metadata):
    from alexnet_export.runtimes.verification.parity import compare_logits
    from alexnet_export.models.alexnet import seeded_alexnet
    from alexnet_export.runtimes import TorchRuntime

    other = tmp_path / "other.pt"
    torch.save(seeded_alexnet(10, seed=4).state_dict(), other)
    result = cli("verify", small_onnx, "--images", calib_dir, "--reference", other, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    batch = preprocess_batch(find_images(calib_dir), small_metadata.preprocessing)
    expected = compare_logits(TorchRuntime(other).predict(batch), torch_runtime.predict(batch))
    assert report["agreement"]["top1_agreement"] == pytest.approx(expected.top1_agreement) and expected.top1_agreement < 1
    assert report["agreement"]["min_cosine"] == pytest.approx(expected.min_cosine, abs=1e-6)
    assert report["top1"] is None and report["reference_top1"] is None
    gated = cli("verify", small_onnx, "--images", calib_dir, "--reference", other, "--min-agreement", "100")
    assert gated.returncode == 1 and "is below --min-agreement 100%" in _last_line(gated)


def test_a_gate_fails_when_images_could_not_be_read(cli, small_onnx, calib_dir, tmp_path):
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(calib_dir, tree)
    (tree / "class_1" / "broken.png").write_bytes(b"not a png")
    result = cli("verify", small_onnx, "--images", tree, "--reference", small_onnx, "--min-agreement", "99")
    assert result.returncode == 1
    assert re.match(r"Error: 1 images could not be read \(e\.g\. .*broken\.png.*\); a gate needs every image$",
                    _last_line(result))
    assert cli("verify", small_onnx, "--images", tree, "--reference", small_onnx).returncode == 0  # no gate: reported


def test_gate_thresholds_are_not_missed_by_rounding():
    from alexnet_export.cli.verify import below

    assert not below(974 / 1000, 97.4) and not below(57 / 100, 57) and not below(471 / 500, 94.2)
    assert below(973 / 1000, 97.4) and below(0.0, 0.001)


def test_usage_and_input_errors_are_one_line(cli, small_onnx, calib_dir, tmp_path):
    result = cli("verify", small_onnx, "--images", calib_dir)
    assert result.returncode == 2 and "nothing to measure" in result.stderr
    result = cli("verify", small_onnx, "--images", calib_dir, "--labels", small_onnx, "--reference", small_onnx)
    assert result.returncode == 2
    assert "only applies to a PyTorch checkpoint (.pt, .pth, .safetensors); an ONNX model carries its labels" in result.stderr
    result = cli("verify", small_onnx, "--images", calib_dir, "--min-agreement", "99", "--labels-from-folders")
    assert result.returncode == 2 and "--min-agreement needs --reference" in result.stderr
    renamed = tmp_path / "photos" / "cats"
    renamed.mkdir(parents=True)
    for path in find_images(calib_dir)[:3]:
        (renamed / path.name).write_bytes(path.read_bytes())
    result = cli("verify", small_onnx, "--images", tmp_path / "photos", "--labels-from-folders")
    assert result.returncode == 1
    assert re.match(r"Error: class folder 'cats' is not among the model's 10 labels .*`verify --labels` for a checkpoint", _last_line(result))


def test_an_empty_image_folder_is_a_usage_mistake_as_in_classify(cli, one_line_error, small_onnx, tmp_path):
    """The same mistake gets the same exit code in every command (bench/accuracy.py asks runtimes/preprocess.py)."""
    empty = tmp_path / "empty"
    (empty / "class_0").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    result = cli("verify", small_onnx, "--images", empty, "--reference", small_onnx)
    one_line_error(result, r"^Error: found no image files under .*empty; expected files with one of the suffixes .jpg,"
                           r" .* \(folders are searched recursively\) \(--images\)$", code=2)
    classified = cli("classify", small_onnx, empty, "-o", tmp_path / "out" / "r.parquet")
    assert classified.returncode == result.returncode == 2 and "no images found in" in classified.stderr
