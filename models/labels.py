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
