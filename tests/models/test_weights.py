import os

import pytest
import torch
from safetensors.torch import save_file

from alexnet_export.errors import WeightsError
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.hashing import file_sha256
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
    assert not loaded.random_init and not loaded.model.training
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
    with pytest.raises(WeightsError, match="refused to load .*could run code"):
        load_alexnet(path)
    assert not sentinel.exists()
    # The file really is hostile: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert sentinel.exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100], ids=["empty", "random-bytes"])
def test_unreadable_files_give_a_clear_error(tmp_path, suffix, content):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=r"cannot read .*bad"):
        load_alexnet(path)


def test_truncated_checkpoint_gives_a_clear_error(tmp_path, state):
    path = tmp_path / "m.pt"
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cannot read"):
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
