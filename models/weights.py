"""Load a user's checkpoint into the seed AlexNet, safely and with errors that say what is wrong.

`.pt`/`.pth` go through `torch.load(weights_only=True)` and nothing else: a pickle that needs
more than tensors and containers is refused, never retried unsafely. `.safetensors` cannot run
code at all.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from alexnet_export.errors import WeightsError, one_line
from alexnet_export.hashing import file_sha256
from alexnet_export.models.alexnet import FINAL_LAYER, AlexNet, seeded_alexnet
from alexnet_export.models.spec import CHECKPOINT_SUFFIXES, PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES

# Training scripts often save {"state_dict": ..., "epoch": ...}; these keys hold the weights.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
# DataParallel/DDP add "module.", torch.compile adds "_orig_mod.".
_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class LoadedModel:
    model: AlexNet
    source: str  # what the ONNX metadata records: a weights hash or "random init, seed N"
    random_init: bool


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the raw tensors of a checkpoint file, unwrapped and without wrapper prefixes."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raw = _load_pickle(path)
    elif suffix in SAFETENSORS_SUFFIXES:
        raw = _load_safetensors(path)
    else:
        raise WeightsError(
            f"weights file {path} has suffix {path.suffix!r}; expected one of {', '.join(CHECKPOINT_SUFFIXES)}"
        )
    return _strip_prefixes(_unwrap(raw, path), path)


def _load_pickle(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message advises retrying with weights_only=False; we never echo that advice.
        lines = [line.strip() for line in str(exc).splitlines()]
        blocked = next((line for line in lines if "GLOBAL" in line), None)
        if blocked:
            raise WeightsError(
                f"refused to load {path}: loading it could run code ({blocked}). A checkpoint must hold"
                " only tensors and plain containers: re-save it with torch.save(model.state_dict(), path)"
            ) from None
        detail = next((line for line in lines if line.startswith("Unsupported")), "not a pickle")
        raise WeightsError(f"cannot read {path} as a PyTorch checkpoint: corrupt or not a checkpoint ({detail})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise WeightsError(f"cannot read {path} as a PyTorch checkpoint: {one_line(exc)}") from None


def _load_safetensors(path: Path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"cannot read {path} as safetensors: {one_line(exc)}") from None


def _unwrap(raw, path: Path) -> dict:
    if not isinstance(raw, dict):
        raise WeightsError(f"{path} holds a {type(raw).__name__}; expected a state dict (a dict of tensors)")
    if raw and not any(isinstance(value, torch.Tensor) for value in raw.values()):
        for key in _WRAPPER_KEYS:
            if isinstance(raw.get(key), dict):
                return _unwrap(raw[key], path)
        raise WeightsError(
            f"{path} holds no tensors at its top level nor under any of {list(_WRAPPER_KEYS)};"
            f" its keys are {sorted(map(str, raw))[:8]}"
        )
    return raw


def _strip_prefixes(state: dict, path: Path) -> dict[str, torch.Tensor]:
    cleaned = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise WeightsError(f"{path} has a non-string key {key!r}; expected parameter names")
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    return cleaned


def num_classes_of(state: dict[str, torch.Tensor]) -> int:
    weight = state.get(f"{FINAL_LAYER}.weight")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise WeightsError(f"the checkpoint has no 2-D {FINAL_LAYER}.weight, so its class count is unknown")
    return int(weight.shape[0])


def check_state_dict(model: AlexNet, state: dict[str, torch.Tensor]) -> None:
    """Name the first key, shape or dtype that does not fit, in the model's own key order."""
    expected = model.state_dict()
    for key, reference in expected.items():
        if key not in state:
            raise WeightsError(f"checkpoint is missing {key} (shape {tuple(reference.shape)})")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"checkpoint entry {key} is a {type(value).__name__}; expected a tensor")
        if tuple(value.shape) != tuple(reference.shape):
            raise WeightsError(
                f"checkpoint entry {key} has shape {tuple(value.shape)}; expected {tuple(reference.shape)}"
            )
        if not value.is_floating_point():
            raise WeightsError(f"checkpoint entry {key} has dtype {value.dtype}; expected a floating-point tensor")
        if not torch.isfinite(value).all():
            raise WeightsError(f"checkpoint entry {key} contains NaN or infinite values")
    extra = [key for key in state if key not in expected]
    if extra:
        raise WeightsError(f"checkpoint has an entry the seed AlexNet does not: {extra[0]} ({len(extra)} in all)")


def load_alexnet(weights: str | Path | None = None, num_classes: int | None = None, seed: int = 0) -> LoadedModel:
    """The model to export: from a checkpoint, or seeded random weights when none is given."""
    if weights is None:
        model = seeded_alexnet(num_classes or 1000, seed)
        return LoadedModel(model, f"random init, seed {seed}", random_init=True)
    state = read_state_dict(weights)
    found = num_classes_of(state)
    if num_classes is not None and num_classes != found:
        raise WeightsError(f"asked for {num_classes} classes, but {weights} has {found} ({FINAL_LAYER});"
                           " leave the class count out to read it from the checkpoint")
    model = AlexNet(found)
    check_state_dict(model, state)
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return LoadedModel(model.eval(), f"sha256:{file_sha256(weights)} ({Path(weights).name})", random_init=False)
