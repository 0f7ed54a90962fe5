import os
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from alexnet_export.errors import WeightsError
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.hashing import file_sha256
from alexnet_export.models.labels import carried_labels
from alexnet_export.models.weights import load_alexnet, read_state_dict


@pytest.fixture(scope="module")
def state():
    return seeded_alexnet(10, seed=5).state_dict()


def _same_weights(model, state):
    return all(torch.equal(model.state_dict()[key], value) for key, value in state.items())


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_plain_state_dict_loads(tmp_path, state, suffix):
    path = tmp_path / f"model{suffix}"
    torch.save(state, path)
    loaded = load_alexnet(path)
    assert loaded.model.num_classes == 10 and _same_weights(loaded.model, state)
    assert not loaded.random_init and not loaded.model.training and loaded.labels is None
    assert loaded.source == f"sha256:{file_sha256(path)} (model{suffix})"


def test_safetensors_loads(tmp_path, state):
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    assert _same_weights(load_alexnet(path).model, state)


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict"])
def test_wrapped_and_prefixed_checkpoints_load(tmp_path, state, wrapper):
    path = tmp_path / "ckpt.pt"
    torch.save({wrapper: {f"module.{k}": v for k, v in state.items()}, "epoch": 3, "best_acc": 0.5}, path)
    assert _same_weights(load_alexnet(path).model, state)


def test_half_precision_checkpoint_is_widened(tmp_path, state):
    path = tmp_path / "half.pt"
    torch.save({k: v.half() for k, v in state.items()}, path)
    model = load_alexnet(path).model
    assert model.features[0].weight.dtype == torch.float32
    assert torch.allclose(model.features[0].weight, state["features.0.weight"], atol=1e-2)


def test_num_classes_must_agree_with_the_checkpoint(tmp_path, state):
    path = tmp_path / "m.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="asked for 1000 classes, but .* has 10 "):
        load_alexnet(path, num_classes=1000)


def test_missing_key_is_named(tmp_path, state):
    path = tmp_path / "m.pt"
    torch.save({k: v for k, v in state.items() if k != "features.3.weight" and k != "features.8.bias"}, path)
    with pytest.raises(WeightsError, match=r"missing features\.8\.bias"):
        load_alexnet(path)


def test_wrong_shape_is_named(tmp_path, state):
    bad = dict(state)
    bad["features.4.weight"] = torch.zeros(256, 96, 5, 5)  # the seed's conv2 has groups=2: (256, 48, 5, 5)
    path = tmp_path / "m.pt"
    torch.save(bad, path)
    with pytest.raises(WeightsError, match=r"features\.4\.weight has shape \(256, 96, 5, 5\); expected \(256, 48, 5, 5\)"):
        load_alexnet(path)


def test_extra_entry_is_named(tmp_path, state):
    path = tmp_path / "m.pt"
    torch.save({**state, "features.99.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match=r"features\.99\.weight"):
        load_alexnet(path)


def test_integer_tensor_is_refused(tmp_path, state):
    path = tmp_path / "m.pt"
    torch.save({**state, "classifier.1.bias": torch.zeros(4096, dtype=torch.int64)}, path)
    with pytest.raises(WeightsError, match=r"classifier\.1\.bias has dtype torch\.int64"):
        load_alexnet(path)


def test_nan_weights_are_refused(tmp_path, state):
    bad = dict(state)
    bad["classifier.4.weight"] = state["classifier.4.weight"].clone()
    bad["classifier.4.weight"][0, 0] = float("nan")
    path = tmp_path / "m.pt"
    torch.save(bad, path)
    with pytest.raises(WeightsError, match=r"classifier\.4\.weight contains NaN"):
        load_alexnet(path)


class _WritesSentinel:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_code_running_pickle_is_refused_and_never_runs(tmp_path, state):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({**state, "payload": _WritesSentinel(sentinel)}, path)
    with pytest.raises(WeightsError, match=r"refused to load .*could run code \(it needs posix.system,") as caught:
        load_alexnet(path)
    assert not sentinel.exists()
    # torch's advice (allow-list the global, or load without weights_only) is never passed on
    assert "safe_globals" not in str(caught.value) and "weights_only" not in str(caught.value)
    # The file really is hostile: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert sentinel.exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100], ids=["empty", "random-bytes"])
def test_unreadable_files_give_a_clear_error(tmp_path, suffix, content):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=r"bad\.pt is not a PyTorch checkpoint|cannot read .*bad\.safetensors"):
        load_alexnet(path)


def test_truncated_checkpoint_gives_a_clear_error(tmp_path, state):
    path = tmp_path / "m.pt"
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="m.pt is not a PyTorch checkpoint: it is a damaged or truncated zip archive"):
        load_alexnet(path)


def _zip(path, names):
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "x")


# What users hand over as a checkpoint: each is called what it is, in one line, before torch reads it (or,
# for bytes torch chokes on, whatever torch.load raises: "pop from empty list" is no message).
NOT_CHECKPOINTS = [
    (lambda p: p.write_text("at.coffee is a word\n" + "plain words, nothing else\n" * 19),
     r"garbage.pt is not a PyTorch checkpoint: it is a text file \(it begins 'at.coffee is a word'\)$"),
    (lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 9\n"),
     r"it is a Git LFS pointer, not the weights \(fetch them: git lfs pull\)$"),
    (lambda p: p.write_text("<!DOCTYPE html>\n<html><body>403 Forbidden</body></html>\n"), r"it is an HTML page"),
    (lambda p: p.write_bytes(b"\x08\x0a\x12\x0ealexnet-export\x1a\x050.1.0" + bytes(64)), r"it is an ONNX model"),
    (lambda p: _zip(p, ["weights.npy", "README"]), r"it is a zip archive without data.pkl \(it holds weights.npy, README\)$"),
    (lambda p: _zip(p, ["m/data.pkl", "m/constants.pkl", "m/code/__torch__/m.py"]), r"it is a TorchScript archive"),
    (lambda p: p.write_bytes(b"\x80\x02."), r"garbage.pt is not a PyTorch checkpoint \(torch.load: IndexError: pop from empty"
                                           r" list\)$"),
    (lambda p: p.write_bytes(b"\x80\x04garbage" * 20), r"is not a PyTorch checkpoint \(torch.load: Unsupported operand"),
]


@pytest.mark.parametrize("write, message", NOT_CHECKPOINTS, ids=["text", "lfs", "html", "onnx", "zip", "torchscript",
                                                                  "pop-from-empty-list", "pickle-junk"])
def test_a_file_that_is_no_checkpoint_is_called_what_it_is(tmp_path, write, message, recwarn):
    path = tmp_path / "garbage.pt"
    write(path)
    with pytest.raises(WeightsError, match=message) as caught:
        load_alexnet(path)
    text = str(caught.value)
    assert "\n" not in text and "safe_globals" not in text and "weights_only" not in text
    assert not [w for w in recwarn if "torch" in str(w.filename)]  # torch's pickle-protocol warning is not shown


def test_a_state_dict_of_another_network_is_not_an_alexnet_state_dict(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(WeightsError, match=r"^.*other.pt is not an AlexNet state dict: expected keys features.0.bias,"
                                           r" features.4.weight, features.4.bias and 12 more, found only features.0.weight$"):
        load_alexnet(path)
    # torchvision's AlexNet: no LRN, so its convolutions sit at other indices
    layout = ["features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1", "classifier.4",
              "classifier.6"]
    torch.save({f"{layer}.{kind}": torch.zeros(1) for layer in layout for kind in ("weight", "bias")}, path)
    with pytest.raises(WeightsError, match=r"not an AlexNet state dict: expected keys features.4.weight, features.4.bias,"
                                           r" features.12.weight and 1 more, found features.3.weight, features.3.bias,"
                                           r" features.6.weight and 1 more$"):
        load_alexnet(path)


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "m.ckpt").write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"expected one of \.pt, \.pth, \.safetensors"):
        read_state_dict(tmp_path / "m.ckpt")
    with pytest.raises(WeightsError, match="does not exist"):
        read_state_dict(tmp_path / "absent.pt")


def test_not_a_dict_and_no_tensors(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="holds a list; expected a state dict"):
        read_state_dict(tmp_path / "list.pt")
    torch.save({"epoch": 1, "notes": {"a": 1}}, tmp_path / "meta.pt")
    with pytest.raises(WeightsError, match="holds no tensors"):
        read_state_dict(tmp_path / "meta.pt")


def test_no_weights_gives_seeded_random_model():
    loaded = load_alexnet(None, num_classes=4, seed=9)
    assert loaded.random_init and loaded.source == "random init, seed 9"
    assert _same_weights(loaded.model, seeded_alexnet(4, seed=9).state_dict())


def test_labels_a_checkpoint_carries_come_with_the_model(tmp_path, state):
    names = [f"flower {i}" for i in range(10)]
    path = tmp_path / "wrapped.pt"  # torchvision's ImageFolder mapping beside the state dict, as training scripts save it
    torch.save({"state_dict": state, "epoch": 9, "class_to_idx": {name: i for i, name in enumerate(names)}}, path)
    loaded = load_alexnet(path)
    assert loaded.labels == tuple(names) and _same_weights(loaded.model, state)
    torch.save({**state, "classes": names[::-1]}, path)  # a list among the tensors is no weight
    assert load_alexnet(path).labels == tuple(names[::-1])


@pytest.mark.parametrize("value, names", [
    (["cat", "dog"], ("cat", "dog")),
    ({1: "dog", 0: "cat"}, ("cat", "dog")),  # idx_to_class
    ({"0": "cat", "1": "dog"}, ("cat", "dog")),
    ({"dog": 1, "cat": 0}, ("cat", "dog")),  # class_to_idx
])
def test_the_forms_of_a_labels_entry(value, names):
    assert carried_labels("classes", value, 2, "m.pt") == names


@pytest.mark.parametrize("value, message", [
    (["cat", "dog", "bird"], r"^m.pt's 'classes' entry names 3 classes; the model has 2: fix it, or give the labels"
                             r" explicitly \(--labels FILE\)$"),
    ([1, 2], r"^m.pt's 'classes' entry is not a list of class names nor an index/name mapping \(list\)"),
    ({0: "cat", 2: "dog"}, r"is not a list of class names nor an index/name mapping \(dict\)"),
])
def test_a_labels_entry_that_does_not_fit_is_one_line(value, message):
    with pytest.raises(WeightsError, match=message):
        carried_labels("classes", value, 2, "m.pt")
