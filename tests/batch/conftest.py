"""A collection to classify: real photos, generated PNG/JPEG files in nested folders, files that
cannot be decoded or are refused by the input checks, and a folder named like an image."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


def make_collection(root: Path, photos: list[Path], crops: list[np.ndarray]) -> SimpleNamespace:
    good, bad = [], []
    for photo in photos[:4]:
        target = root / "photos" / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, target)
        good.append(target)
    for index, crop in enumerate(crops[:8]):
        folder = root / "generated" / ("png" if index % 2 else "jpeg") / f"shoot-{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (f"crop-{index}.png" if index % 2 else f"crop-{index}.jpg")
        Image.fromarray(crop).save(target)
        good.append(target)
    broken = root / "broken"
    broken.mkdir()
    jpeg = good[4].read_bytes()
    (broken / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 8])
    (broken / "text.png").write_text("this is no image\n")
    (broken / "empty.jpeg").write_bytes(b"")
    Image.fromarray(np.zeros((2, 300, 3), np.uint8)).save(broken / "thin.png")  # refused: thinner than 64:1
    bad += [broken / "truncated.jpg", broken / "text.png", broken / "empty.jpeg", broken / "thin.png"]
    looks_like_image = root / "dir.jpg"  # a folder: searched, never read as an image
    looks_like_image.mkdir()
    inside = looks_like_image / "inside.png"
    Image.fromarray(crops[9]).save(inside)
    good.append(inside)
    (root / "generated" / "notes.txt").write_text("not an image; folders skip it\n")
    return SimpleNamespace(root=root, good=sorted(good), bad=sorted(bad), all=sorted(good + bad),
                           folder_named_like_an_image=looks_like_image)


@pytest.fixture(scope="session")
def collection(tmp_path_factory, photos, real_images) -> SimpleNamespace:
    """13 readable images (4 photos, 8 generated crops, 1 inside dir.jpg/) and 4 that fail."""
    return make_collection(tmp_path_factory.mktemp("collection"), photos, real_images)


@pytest.fixture(scope="session")
def many_images(tmp_path_factory, real_images) -> Path:
    """120 small JPEGs, for runs that must last long enough to be interrupted."""
    folder = tmp_path_factory.mktemp("many")
    for index in range(120):
        crop = real_images[index % len(real_images)]
        Image.fromarray(crop).resize((96, 96)).save(folder / f"img-{index:03d}.jpg")
    return folder
