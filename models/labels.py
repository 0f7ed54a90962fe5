"""Class names. No torch here.

`imagenet_classes.txt` holds the 1000 ILSVRC-2012 class names in the standard index order
(the first lemma of each WordNet synset, as listed by timm's `imagenet_synsets.txt` and
`imagenet_synset_to_lemma.txt`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from alexnet_export.errors import ArgumentError


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    text = files("alexnet_export.models").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def read_labels_file(path: str | Path, num_classes: int) -> tuple[str, ...]:
    """One label per line, blank lines ignored; the count must equal `num_classes`. ArgumentError (a
    ValueError naming the `labels` argument) otherwise: a mistake in the arguments, not a crash."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArgumentError(f"cannot read labels file {path}: {exc}", argument="labels") from None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != num_classes:
        raise ArgumentError(f"labels file {path} has {len(labels)} labels; expected {num_classes}, one per line",
                            argument="labels")
    return labels


# Entries beside a state dict that name its classes, as training scripts save them: a list of names in output
# order, or torchvision ImageFolder's mappings (index -> name, name -> index).
LABEL_KEYS = ("classes", "labels", "class_names", "categories", "idx_to_class", "class_to_idx")


def carried_labels(key: str, value: object, num_classes: int, source: str) -> tuple[str, ...]:
    """The class names a checkpoint's `key` entry gives, in output order; WeightsError (one line) when they
    are not names or not one per class of the model's `num_classes`."""
    from alexnet_export.errors import WeightsError

    names = _names(value)
    if names is None:
        raise WeightsError(f"{source}'s {key!r} entry is not a list of class names nor an index/name mapping"
                           f" ({type(value).__name__}); fix it, or give the labels explicitly (--labels FILE)")
    if len(names) != num_classes:
        raise WeightsError(f"{source}'s {key!r} entry names {len(names)} classes; the model has {num_classes}:"
                           " fix it, or give the labels explicitly (--labels FILE)")
    return names


def _names(value: object) -> tuple[str, ...] | None:
    if isinstance(value, (list, tuple)):
        return tuple(value) if all(isinstance(name, str) and name.strip() for name in value) else None
    if not isinstance(value, dict) or not value:
        return None
    if all(isinstance(k, str) for k in value) and all(isinstance(v, int) for v in value.values()):
        value = {index: name for name, index in value.items()}  # name -> index (class_to_idx)
    try:
        by_index = {int(index): name for index, name in value.items()}
    except (TypeError, ValueError):
        return None
    if sorted(by_index) != list(range(len(by_index))) or not all(isinstance(n, str) for n in by_index.values()):
        return None
    return tuple(by_index[index] for index in range(len(by_index)))
