import json

import pytest

from alexnet_export.errors import ArgumentError
from alexnet_export.models.labels import imagenet_labels, read_labels_file
from alexnet_export.models.spec import ArtifactMetadata, Preprocessing, default_labels


def test_imagenet_labels_ship_in_index_order():
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert (labels[0], labels[1], labels[281], labels[999]) == ("tench", "goldfish", "tabby", "toilet tissue")


def test_metadata_round_trips():
    metadata = ArtifactMetadata(3, ("a", "b", "c"), "sha256:abc (m.pt)", Preprocessing(resize=240), {"torch": "2"})
    assert ArtifactMetadata.from_props(metadata.to_props(), 3) == metadata


def test_foreign_model_gets_defaults():
    metadata = ArtifactMetadata.from_props({}, 1000)
    assert metadata.labels == imagenet_labels() and metadata.preprocessing == Preprocessing()
    assert ArtifactMetadata.from_props({}, 4).labels == ("class_0", "class_1", "class_2", "class_3")


def test_malformed_metadata_is_reported():
    with pytest.raises(ValueError, match="metadata is malformed"):
        ArtifactMetadata.from_props({"alexnet_export.preprocessing": "{not json"}, 10)
    with pytest.raises(ValueError, match="unknown preprocessing fields"):
        Preprocessing.from_json(json.dumps({"resize": 256, "gamma": 2}))
    with pytest.raises(ValueError, match="crop 300 must be positive and at most resize 256"):
        Preprocessing.from_json(json.dumps({"crop": 300}))


def test_label_count_must_match():
    with pytest.raises(ValueError, match="2 labels for 3 classes"):
        ArtifactMetadata(3, ("a", "b"), "x")


def test_labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\n\ndog\nbird\n")
    assert read_labels_file(path, 3) == ("cat", "dog", "bird")
    with pytest.raises(ArgumentError, match="has 3 labels; expected 4") as caught:  # a usage mistake, not a crash
        read_labels_file(path, 4)
    assert caught.value.argument == "labels" and isinstance(caught.value, ValueError)
    assert default_labels(2) == ("class_0", "class_1")


def test_a_labels_file_of_the_wrong_count_is_a_one_line_usage_error(cli, one_line_error, tmp_path):
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n")
    result = cli("onnx", "--num-classes", "5", "--labels", "classes.txt", "-o", "m.onnx", cwd=tmp_path)
    one_line_error(result, r"^Error: labels file classes.txt has 3 labels; expected 5, one per line \(--labels\)$",
                   code=2)
    assert not (tmp_path / "m.onnx").exists()


def test_metadata_for_another_class_count_gets_default_labels():
    from alexnet_export.models.spec import ArtifactMetadata, default_labels

    described = ArtifactMetadata(3, ("a", "b", "c"), "random init, seed 0")
    assert described.for_classes(3) is described
    wider = described.for_classes(5)
    assert wider.num_classes == 5 and wider.labels == default_labels(5) and wider.source_weights == described.source_weights
