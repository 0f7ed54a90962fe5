"""The public predictor: the same top-k as the runtime, error rows, lazy opening, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from alexnet_export.batch import Classifier
from alexnet_export.batch.schema import NAMES, to_arrow_table, arrow_schema
from alexnet_export.errors import ArgumentError, InputError, ModelLoadError, OptionError
from alexnet_export.hashing import file_sha256
from alexnet_export.runtimes import open_runtime
from alexnet_export.runtimes.base import top_predictions
from alexnet_export.runtimes.preprocess import preprocess_batch


def expected_top_k(model, paths, top_k):
    runtime = open_runtime(model)
    logits = runtime.predict(preprocess_batch(paths, runtime.metadata.preprocessing))
    labels = runtime.metadata.labels
    return [([labels[i] for i, _ in best], [p for _, p in best]) for best in top_predictions(logits, top_k)]


def test_top_k_equals_the_runtime_on_the_same_images(small_onnx, collection):
    paths = [str(p) for p in collection.good]
    columns = Classifier(small_onnx, top_k=3)({"path": np.array(paths)})
    assert tuple(columns) == NAMES
    assert list(columns["path"]) == paths
    for (labels, probabilities), got_labels, got_probabilities in zip(
            expected_top_k(small_onnx, paths, 3), columns["labels"], columns["probabilities"]):
        assert got_labels == labels
        np.testing.assert_allclose(got_probabilities, probabilities, rtol=1e-5)
    assert set(columns["model_sha256"]) == {file_sha256(small_onnx)}
    assert set(columns["precision"]) == {"fp32"}
    assert set(columns["error"]) == {None}


def test_an_image_that_fails_gets_its_error_and_no_top_k(small_onnx, collection):
    paths = [str(collection.good[0]), *map(str, collection.bad), str(collection.folder_named_like_an_image),
             str(collection.root / "missing.jpg"), str(collection.good[1])]
    columns = Classifier(small_onnx, top_k=2)({"path": paths})
    errors = list(columns["error"])
    assert errors[0] is None and errors[-1] is None  # the readable images of the batch keep their results
    assert [len(labels) for labels in columns["labels"][[0, -1]]] == [2, 2]
    for path, error, labels, probabilities in zip(paths[1:-1], errors[1:-1], columns["labels"][1:-1],
                                                  columns["probabilities"][1:-1]):
        assert error and labels is None and probabilities is None
    assert "thinner than 64:1" in errors[paths.index(next(str(p) for p in collection.bad if p.name == "thin.png"))]
    assert "does not exist" in errors[-2]
    # Arrow types the columns even where a batch has only nulls in them.
    assert to_arrow_table(Classifier(small_onnx)({"path": paths[1:3]})).schema == arrow_schema()


def test_the_model_opens_on_first_use_and_pickles_without_it(small_onnx, collection):
    batch = {"path": np.array([str(p) for p in collection.good[:3]])}
    classifier = Classifier(small_onnx, top_k=2, threads=1)
    assert not classifier.is_open
    before = pickle.loads(pickle.dumps(classifier))
    assert not before.is_open
    first = before(batch)
    assert before.is_open
    after = pickle.loads(pickle.dumps(before))  # a used classifier travels without its loaded model
    assert not after.is_open and after.runtime_options == {"threads": 1}
    second = after(batch)
    assert after.is_open
    for name in NAMES:
        assert list(map(str, first[name])) == list(map(str, second[name]))


def test_arguments_are_checked_at_once_and_the_file_when_it_opens(small_onnx, tmp_path):
    later = Classifier(tmp_path / "not-yet.onnx")  # nothing is read until the first call
    with pytest.raises(ModelLoadError, match="not-yet.onnx does not exist"):
        later({"path": []})
    with pytest.raises(OptionError, match="option 'device' does not apply to small.onnx"):
        Classifier(small_onnx, device="cuda")
    with pytest.raises(ArgumentError, match="top_k is 0; expected a positive integer"):
        Classifier(small_onnx, top_k=0)
    with pytest.raises(ArgumentError, match="top_k is 11; small.onnx has 10 classes"):
        Classifier(small_onnx, top_k=11).open()
    with pytest.raises(InputError, match=r"takes a batch with a 'path' column of image paths .*; got columns 'image'"):
        Classifier(small_onnx)({"image": []})
    with pytest.raises(InputError, match=r"; got a list$"):
        Classifier(small_onnx)(["cat.jpg"])


def test_a_pyarrow_table_batch_gives_the_same_columns(small_onnx, collection):
    import pyarrow as pa

    paths = [str(p) for p in collection.all[:6]]
    classifier = Classifier(small_onnx, top_k=2)
    from_table = classifier(pa.table({"path": paths, "other": list(range(6))}))
    from_dict = classifier({"path": np.array(paths)})
    for name in NAMES:
        assert list(map(str, from_table[name])) == list(map(str, from_dict[name]))
