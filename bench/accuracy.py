"""Accuracy on labelled images and agreement with a reference model: `alexnet-export verify`.

Images stream through in batches (a folder may hold more images than fit in memory); only
the logits are kept. Labels come from ImageFolder-style class folders whose names must be the
model's own labels, so a model exported with `--labels` is checked against the names it carries.
Needs numpy and the runtimes only: no torch unless a checkpoint is one of the models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from alexnet_export.errors import InputError
from alexnet_export.runtimes.verification.parity import ParityReport, compare_logits
from alexnet_export.runtimes.preprocess import preprocess_readable, require_images

Tick = Callable[[int], None]
TOP_K = 5


@dataclass(frozen=True)
class ImageSet:
    paths: tuple[Path, ...]
    labels: np.ndarray | None  # class index per image, or None when unlabelled
    classes_seen: int  # class folders found (0 when unlabelled)


@dataclass(frozen=True)
class Evaluation:
    images: int
    top_k: int  # k of the top-k accuracy: 5, or the class count when smaller
    top1: float | None  # None when the images are unlabelled
    topk: float | None
    reference_top1: float | None
    reference_topk: float | None
    agreement: ParityReport | None  # None without a reference
    skipped: tuple[str, ...]  # one line per unreadable image
    # Which images (indices into ImageSet.paths) the model's top-1 got right; None when unlabelled.
    # Not in to_dict: `optimize` compares it with the reference's, to count the answers a file loses.
    correct: frozenset[int] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        result = asdict(self)
        result.pop("correct")
        result["skipped"] = list(self.skipped)
        return result


def image_set(folder: str | Path, class_names: Sequence[str] | None = None) -> ImageSet:
    """The images below `folder`; with `class_names`, each labelled by its class folder.

    Class folders are the first level below `folder` (`folder/<label>/.../x.jpg`); every one
    must be one of `class_names`, so a typo or a model with other labels fails before any work.
    """
    folder = Path(folder)
    # A folder without images is a mistake in the arguments, as in `classify` (runtimes/preprocess.py).
    paths = tuple(require_images(folder, argument="folder"))
    if class_names is None:
        return ImageSet(paths, None, 0)
    outside = [p for p in paths if len(p.relative_to(folder).parts) < 2]
    if outside:
        raise InputError(f"{outside[0]} is not inside a class folder; expected {folder}/<label>/<image> for every image")
    folders = sorted({p.relative_to(folder).parts[0] for p in paths})
    indices = {}
    for i, name in enumerate(class_names):
        indices.setdefault(name, []).append(i)
    unknown = [name for name in folders if name not in indices]
    if unknown:
        shown = ", ".join(class_names[:5]) + (", ..." if len(class_names) > 5 else "")
        listed = ", ".join(repr(name) for name in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise InputError(
            f"class folder{'s' if len(unknown) > 1 else ''} {listed} {'are' if len(unknown) > 1 else 'is'} not among"
            f" the model's {len(class_names)} labels"
            f" ({shown}); name the folders after the labels, or give the model its labels",
            argument="class_names",
        )
    # ImageNet's names repeat (two "crane" classes, two "maillot"): such a folder is ambiguous.
    ambiguous = [name for name in folders if len(indices[name]) > 1]
    if ambiguous:
        name = ambiguous[0]
        raise InputError(f"class folder {name!r} names {len(indices[name])} of the model's classes"
                         f" ({', '.join(map(str, indices[name]))}); labels from folders need unique label names")
    labels = np.array([indices[p.relative_to(folder).parts[0]][0] for p in paths], dtype=np.int64)
    return ImageSet(paths, labels, len(folders))


def evaluate(model, images: ImageSet, reference=None, batch_size: int = 32, tick: Tick = lambda n: None) -> Evaluation:
    """Run `model` (and `reference`, on the same inputs) over `images`; unreadable files are skipped."""
    if reference is not None and reference.metadata.num_classes != model.metadata.num_classes:
        raise InputError(f"the reference has {reference.metadata.num_classes} classes and the model"
                         f" {model.metadata.num_classes}; expected the same model in another form")
    logits, reference_logits, kept, skipped = [], [], [], []
    for start in range(0, len(images.paths), batch_size):
        chunk = images.paths[start : start + batch_size]
        inputs, chunk_kept, chunk_skipped = preprocess_readable(chunk, model.metadata.preprocessing)
        skipped.extend(chunk_skipped)
        if len(inputs):
            logits.append(model.predict_in_allowed_batches(inputs))
            if reference is not None:  # a pixel file and a float file each take their own input of the same images
                same = reference.metadata.preprocessing == model.metadata.preprocessing
                reference_inputs = inputs if same else preprocess_readable([chunk[i] for i in chunk_kept],
                                                                           reference.metadata.preprocessing)[0]
                reference_logits.append(reference.predict_in_allowed_batches(reference_inputs))
            kept.extend(start + i for i in chunk_kept)
        tick(len(chunk))
    if not kept:
        raise InputError(f"none of the {len(images.paths)} images could be read (first problem: {skipped[0]})")
    logits = np.concatenate(logits)
    reference_logits = np.concatenate(reference_logits) if reference is not None else None
    labels = images.labels[kept] if images.labels is not None else None
    k = min(TOP_K, logits.shape[1])
    return Evaluation(
        images=len(kept),
        top_k=k,
        top1=topk_accuracy(logits, labels, 1),
        topk=topk_accuracy(logits, labels, k),
        reference_top1=topk_accuracy(reference_logits, labels, 1),
        reference_topk=topk_accuracy(reference_logits, labels, k),
        agreement=compare_logits(reference_logits, logits) if reference is not None else None,
        skipped=tuple(skipped),
        correct=(frozenset(int(kept[i]) for i in np.flatnonzero(np.argmax(logits, axis=1) == labels))
                 if labels is not None else None),
    )


def topk_accuracy(logits: np.ndarray | None, labels: np.ndarray | None, k: int) -> float | None:
    """Fraction of rows whose label is among the k largest logits (ties: lower index first)."""
    if logits is None or labels is None:
        return None
    best = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float((best == labels[:, None]).any(axis=1).mean())
