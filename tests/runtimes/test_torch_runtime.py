import numpy as np
import pytest
import torch

from alexnet_export.errors import OptionError, ProviderError
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


def test_torch_tensors_in_give_tensors_out(torch_runtime, real_images):
    batch = preprocess_batch(real_images[:2], torch_runtime.metadata.preprocessing)
    logits = torch_runtime.predict(torch.from_numpy(batch))
    assert isinstance(logits, torch.Tensor)
    np.testing.assert_array_equal(logits.numpy(), torch_runtime.predict(batch))


@pytest.mark.parametrize("options, error, message", [
    ({"device": "cuda"}, ProviderError, r"^device 'cuda' needs a CUDA GPU, and this torch .* sees none$"),
    ({"device": "tpu"}, OptionError, r"^device 'tpu' is not a device; expected 'cpu', 'cuda' or 'cuda:N'$"),
    ({"dtype": "float16"}, OptionError, r"^dtype float16 runs on CUDA only"),
    ({"dtype": "bfloat16"}, OptionError, r"^dtype 'bfloat16' is not one of float32, float16$"),
])
def test_devices_and_dtypes_it_cannot_run_are_one_line(small_model, options, error, message):
    if options.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(error, match=message):
        TorchRuntime(small_model, **options)


def test_cpu_options_that_have_no_effect_there(small_model, torch_runtime):
    runtime = TorchRuntime(small_model, tf32=False, channels_last=True)
    assert runtime.tf32 is None and runtime.cuda_device is None and runtime.precision == "fp32"
    batch = np.random.default_rng(2).normal(size=(2, 3, 224, 224)).astype(np.float32)
    np.testing.assert_allclose(runtime.predict(batch), torch_runtime.predict(batch), rtol=1e-5, atol=1e-5)
