"""scikit-learn's bundled handwritten digits (1,797 real 8x8 scans, 10 classes) as an ImageFolder.

The data ships inside the scikit-learn wheel (`load_digits` reads a file from the package, no
download). Each image is written as an 8x8 greyscale PNG, unchanged; the toolkit's own
preprocessing scales it to the model's input, in training and at inference alike.

    OUT/train/<digit>/<index>.png, OUT/calib/..., OUT/test/...

Splits are stratified by class, seeded, and never share an image.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = tuple(str(d) for d in range(10))
SPLIT_SEED = 20261127


@dataclass(frozen=True)
class Splits:
    root: Path
    counts: dict[str, int]

    def folder(self, split: str) -> Path:
        return self.root / split


def write_digits(root: Path, per_class: dict[str, int]) -> Splits:
    """Write the splits: `per_class` gives the images per class of every split but "train",
    which gets the rest. Re-running with the same arguments rewrites the same files."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 0..16 ink levels -> 0..255 grey, ink white on black as scanned.
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)
    rng = np.random.default_rng(SPLIT_SEED)
    counts = {split: 0 for split in (*per_class, "train")}
    for split in counts:  # files from a run with other splits would make the splits overlap
        shutil.rmtree(root / split, ignore_errors=True)
    for label in range(len(CLASS_NAMES)):
        members = rng.permutation(np.flatnonzero(digits.target == label))
        start = 0
        for split in (*per_class, "train"):
            stop = len(members) if split == "train" else start + per_class[split]
            folder = root / split / CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            for index in members[start:stop]:
                Image.fromarray(pixels[index], mode="L").save(folder / f"{index:04d}.png")
            counts[split] += stop - start
            start = stop
    return Splits(root, counts)


def write_labels(path: Path) -> Path:
    path.write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    return path
