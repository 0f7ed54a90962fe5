"""Deterministic, photo-like test images made here, so verification needs no data set.

Smooth colour fields with edges and noise: after ImageNet normalisation their statistics are
close to real photos', unlike white noise, so they exercise the network the way images do.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def synthetic_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` HxWx3 uint8 RGB images of assorted sizes and aspect ratios."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        height, width = (int(v) for v in rng.integers(160, 400, size=2))
        coarse = rng.integers(0, 256, size=(int(rng.integers(2, 9)), int(rng.integers(2, 9)), 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.float32)
        # A few hard-edged rectangles give the first convolutions edges to respond to.
        for _ in range(int(rng.integers(1, 5))):
            top, left = int(rng.integers(0, height - 8)), int(rng.integers(0, width - 8))
            field[top : top + int(rng.integers(8, height // 2)), left : left + int(rng.integers(8, width // 2))] = rng.integers(0, 256, 3)
        field += rng.normal(0, 8, size=field.shape)
        images.append(np.clip(field, 0, 255).astype(np.uint8))
    return images
