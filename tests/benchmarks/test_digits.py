"""The accuracy benchmark's data set: real digits as an ImageFolder, splits disjoint and stratified."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from alexnet_export.bench.accuracy import image_set

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_splits_are_disjoint_stratified_and_the_original_pixels(tmp_path):
    from sklearn.datasets import load_digits

    digits = _load("digits")
    splits = digits.write_digits(tmp_path, {"test": 40, "calib": 52})
    assert splits.counts == {"test": 400, "calib": 520, "train": 1797 - 920}
    source = load_digits()
    seen = {}
    for split in ("train", "calib", "test"):
        images = image_set(splits.folder(split), digits.CLASS_NAMES)
        indices = [int(path.stem) for path in images.paths]
        assert len(indices) == splits.counts[split]
        assert not seen.keys() & set(indices), f"{split} shares images with another split"
        seen.update(dict.fromkeys(indices, split))
        # Labels from the folders are the data set's own, and the pixels are the scans unchanged.
        assert np.array_equal(images.labels, source.target[indices])
        if split != "train":
            assert np.bincount(images.labels).tolist() == [splits.counts[split] // 10] * 10
        first = np.asarray(Image.open(images.paths[0]))
        assert np.array_equal(first, np.round(source.images[indices[0]] * 255 / 16).astype(np.uint8))
    assert len(seen) == 1797
    before = sorted(p.name for p in splits.folder("test").rglob("*.png"))
    (splits.folder("test") / "3" / "stale.png").write_bytes(b"from a run with other splits")
    again = digits.write_digits(tmp_path, {"test": 40, "calib": 52})  # rewritten in place, nothing left over
    assert sorted(p.name for p in again.folder("test").rglob("*.png")) == before
