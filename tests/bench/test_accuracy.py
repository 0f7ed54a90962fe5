"""Accuracy and agreement on labelled folders (what `alexnet-export verify` reports)."""

import shutil

import numpy as np
import pytest

from alexnet_export.bench.accuracy import evaluate, image_set, topk_accuracy
from alexnet_export.errors import InputError
from alexnet_export.runtimes.preprocess import find_images, preprocess_batch


def test_topk_accuracy_counts_the_label_among_the_k_largest():
    logits = np.array([[0.1, 0.9, 0.0, 0.5],   # order 1, 3, 0, 2
                       [0.8, 0.1, 0.3, 0.2],   # order 0, 2, 3, 1
                       [0.0, 0.0, 1.0, 0.5]])  # order 2, 3, 0, 1
    labels = np.array([3, 0, 1])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(logits, labels, 4) == 1.0
    assert topk_accuracy(logits, None, 1) is None


def test_labels_come_from_class_folders(calib_dir, small_metadata):
    images = image_set(calib_dir, small_metadata.labels)
    assert len(images.paths) == 90 and images.classes_seen == 5
    for path, label in zip(images.paths, images.labels):
        assert small_metadata.labels[label] == path.parent.name
    unlabelled = image_set(calib_dir)
    assert unlabelled.labels is None and unlabelled.paths == images.paths


def test_folders_that_are_not_labels_fail_before_any_work(tmp_path, calib_dir, small_metadata):
    tree = tmp_path / "tree"
    shutil.copytree(calib_dir, tree)
    (tree / "class_2").rename(tree / "kitten")
    with pytest.raises(InputError, match=r"class folder 'kitten' is not among the model's 10 labels \(class_0, "):
        image_set(tree, small_metadata.labels)
    (tree / "class_3").rename(tree / "puppy")
    with pytest.raises(InputError, match=r"class folders 'kitten', 'puppy' are not among"):
        image_set(tree, small_metadata.labels)
    labels = list(small_metadata.labels)
    labels[7] = "class_1"  # two classes share a name, as ImageNet's two "crane"s do
    with pytest.raises(InputError, match=r"class folder 'class_1' names 2 of the model's classes \(1, 7\)"):
        image_set(calib_dir, labels)
    loose = tmp_path / "loose"
    shutil.copytree(calib_dir / "class_1", loose)
    with pytest.raises(InputError, match="is not inside a class folder"):
        image_set(loose, small_metadata.labels)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="found no image files"):
        image_set(tmp_path / "empty")


def test_evaluate_matches_an_independent_computation(calib_dir, onnx_runtime, torch_runtime, small_metadata, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(calib_dir, tree)
    (tree / "class_0" / "broken.jpg").write_bytes(b"not a jpeg")
    images = image_set(tree, small_metadata.labels)
    seen = []
    result = evaluate(onnx_runtime, images, reference=torch_runtime, batch_size=7, tick=seen.append)

    readable = [p for p in find_images(tree) if p.name != "broken.jpg"]
    expected = torch_runtime.predict(preprocess_batch(readable, small_metadata.preprocessing))
    truth = np.array([int(p.parent.name.split("_")[1]) for p in readable])
    assert result.images == 90 and len(result.skipped) == 1 and "broken.jpg" in result.skipped[0]
    assert sum(seen) == 91
    assert result.reference_top1 == pytest.approx(float(np.mean(expected.argmax(1) == truth)))
    assert result.top1 == result.reference_top1  # FP32 ONNX and eager agree on every image
    ranks = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    assert result.topk == pytest.approx(float(np.mean([t in r for t, r in zip(truth, ranks)])))
    assert result.agreement.top1_agreement == 1.0 and result.agreement.max_abs < 1e-4


def test_reference_with_other_classes_is_refused(calib_dir, onnx_runtime, cli_default_export):
    from alexnet_export.runtimes import OnnxRuntime

    folder, _ = cli_default_export
    thousand = OnnxRuntime(folder / "alexnet.onnx")
    with pytest.raises(InputError, match="reference has 1000 classes and the model 10"):
        evaluate(onnx_runtime, image_set(calib_dir), reference=thousand)
