"""Load a user's checkpoint into the seed AlexNet, safely and with errors that say what is wrong.

`.pt`/`.pth` go through `torch.load(weights_only=True)` and nothing else: a pickle that needs
more than tensors and containers is refused, never retried unsafely, and a file that is no checkpoint
at all (text, an ONNX model, another zip) is called what it is before torch reads it (models/file_kinds.py).
`.safetensors` cannot run code at all. Class names saved beside the state dict (`classes`, `labels`,
`class_names`, `idx_to_class`, ...: models/labels.py) come with the model.
"""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from alexnet_export.errors import WeightsArgumentError, WeightsError, one_line
from alexnet_export.hashing import file_sha256
from alexnet_export.models.alexnet import FINAL_LAYER, AlexNet, seeded_alexnet
from alexnet_export.models.file_kinds import not_a_checkpoint
from alexnet_export.models.labels import LABEL_KEYS, carried_labels
from alexnet_export.models.spec import CHECKPOINT_SUFFIXES, PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES

# Training scripts often save {"state_dict": ..., "epoch": ...}; these keys hold the weights.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
# DataParallel/DDP add "module.", torch.compile adds "_orig_mod.".
_PREFIXES = ("module.", "_orig_mod.")
# More keys than this missing or extra is another network's state dict, not a damaged AlexNet one.
_FEW_KEYS = 2


@dataclass(frozen=True)
class LoadedModel:
    model: AlexNet
    source: str  # what the ONNX metadata records: a weights hash or "random init, seed N"
    random_init: bool
    carried: tuple[str, object] | None = None  # the checkpoint's labels entry (key, value), as saved
    weights: Path | None = None  # the checkpoint file

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The class names the checkpoint carries, in output order; None when it carries none. WeightsError
        when the entry is no list of names, or not one per class."""
        if self.carried is None:
            return None
        key, value = self.carried
        return carried_labels(key, value, self.model.num_classes, str(self.weights))


@dataclass(frozen=True)
class Checkpoint:
    state: dict[str, torch.Tensor]  # unwrapped, without wrapper prefixes
    labels: tuple[str, object] | None  # the labels entry beside it: (key, value as saved)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the raw tensors of a checkpoint file, unwrapped and without wrapper prefixes."""
    return read_checkpoint(path).state


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The state dict of a checkpoint file and the labels entry saved beside it, if any."""
    path = Path(path)
    if not path.is_file():
        raise WeightsArgumentError(f"weights file {path} does not exist or is not a file", argument="weights")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raw = _load_pickle(path)
    elif suffix in SAFETENSORS_SUFFIXES:
        raw = _load_safetensors(path)
    else:
        raise WeightsArgumentError(
            f"weights file {path} has suffix {path.suffix!r}; expected one of {', '.join(CHECKPOINT_SUFFIXES)}",
            argument="weights")
    return Checkpoint(_strip_prefixes(_unwrap(raw, path), path), _labels_entry(raw))


def _load_pickle(path: Path):
    kind = not_a_checkpoint(path)
    if kind is not None:
        raise WeightsError(f"{path} is not a PyTorch checkpoint: it is {kind}")
    try:
        with warnings.catch_warnings():  # torch's warnings about pickle protocols and TorchScript: not ours to show
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message advises retrying with weights_only=False, or allow-listing the global; we echo neither.
        blocked = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if blocked:
            raise WeightsError(
                f"refused to load {path}: loading it could run code (it needs {blocked.group(1)}, which a"
                " weights-only load does not allow). A checkpoint must hold only tensors and plain containers:"
                " re-save it with torch.save(model.state_dict(), path)"
            ) from None
        raise WeightsError(f"{path} is not a PyTorch checkpoint (torch.load: {_unpickling_detail(exc)})") from None
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # torch.load of junk raises anything: IndexError, KeyError, RuntimeError, EOFError...
        raise WeightsError(f"{path} is not a PyTorch checkpoint (torch.load: {_torch_detail(exc)})") from None


def _unpickling_detail(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines()]
    return next((line for line in lines if line.startswith("Unsupported")), "not a pickle torch can read")


def _torch_detail(exc: Exception) -> str:
    """A short reason from torch's exception, without its advice (weights_only, safe globals)."""
    text = " ".join(str(exc).split())[:120]
    if not text or "weights_only" in text or "safe_globals" in text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _load_safetensors(path: Path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"cannot read {path} as safetensors: {one_line(exc)}") from None


def _labels_entry(raw) -> tuple[str, object] | None:
    """The first labels entry (LABEL_KEYS) of `raw` or of the wrappers it nests the state dict in."""
    while isinstance(raw, dict):
        for key in LABEL_KEYS:
            if isinstance(raw.get(key), (list, tuple, dict)):
                return key, raw[key]
        raw = next((raw[key] for key in _WRAPPER_KEYS if isinstance(raw.get(key), dict)), None)
    return None


def _unwrap(raw, path: Path) -> dict:
    if not isinstance(raw, dict):
        raise WeightsError(f"{path} holds a {type(raw).__name__}; expected a state dict (a dict of tensors)")
    raw = {key: value for key, value in raw.items()  # a labels entry saved among the tensors is no weight
           if not (key in LABEL_KEYS and isinstance(value, (list, tuple, dict)))}
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


@lru_cache(maxsize=1)
def alexnet_keys() -> tuple[str, ...]:
    """The seed AlexNet's state dict keys, in its order (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        return tuple(AlexNet(1).state_dict())


def check_layout(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """WeightsError for a state dict of another network: more than a few of the seed's keys missing, or
    more than a few keys it does not have (a few are a damaged AlexNet, named by check_state_dict)."""
    expected = alexnet_keys()
    missing = [key for key in expected if key not in state]
    extra = [key for key in state if key not in expected]
    if len(missing) > _FEW_KEYS or len(extra) > _FEW_KEYS:
        found = _few(extra) if extra else (f"only {_few(list(state))}" if state else "no keys")
        raise WeightsError(f"{path} is not an AlexNet state dict: expected keys {_few(missing or list(expected))},"
                           f" found {found}")


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


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
    """The model to export: from a checkpoint (with the labels it carries, `LoadedModel.labels`), or seeded
    random weights when none is given."""
    if weights is None:
        model = seeded_alexnet(num_classes or 1000, seed)
        return LoadedModel(model, f"random init, seed {seed}", random_init=True)
    checkpoint = read_checkpoint(weights)
    state = checkpoint.state
    check_layout(state, weights)
    found = num_classes_of(state)
    if num_classes is not None and num_classes != found:
        raise WeightsArgumentError(f"asked for {num_classes} classes, but {weights} has {found} ({FINAL_LAYER});"
                                   " leave the class count out to read it from the checkpoint", argument="num_classes")
    model = AlexNet(found)
    check_state_dict(model, state)
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return LoadedModel(model.eval(), f"sha256:{file_sha256(weights)} ({Path(weights).name})", random_init=False,
                       carried=checkpoint.labels, weights=Path(weights))
