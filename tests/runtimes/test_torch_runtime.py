import numpy as np
import torch

from alexnet_export.runtimes import TorchRuntime
from alexnet_export.runtimes.preprocess import preprocess_batch


def test_checkpoint_runtime_matches_the_module(tmp_path, small_model, real_images):
    path = tmp_path / "m.pt"
    torch.save(small_model.state_dict(), path)
    from_file, from_module = TorchRuntime(path), TorchRuntime(small_model)
    batch = preprocess_batch(real_images[:3], from_file.metadata.preprocessing)
    np.testing.assert_array_equal(from_file.predict(batch), from_module.predict(batch))
    assert from_file.metadata.source_weights.startswith("sha256:")
    assert from_file.metadata.labels[0] == "class_0"


def test_default_labels_for_imagenet_and_custom_labels(small_model):
    assert TorchRuntime(num_classes=1000).metadata.labels[1] == "goldfish"
    runtime = TorchRuntime(small_model, labels=[f"thing {i}" for i in range(10)])
    image = np.zeros((40, 60, 3), np.uint8)
    assert runtime.classify(image, top_k=1)[0][0][0].startswith("thing ")
