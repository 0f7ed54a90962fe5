"""A checkpoint whose plain INT8 file passes its gate but loses answers, and labelled images it is
judged on, made once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# conv3's outlier channel scaled by 100 (tests/conftest.py's outlier_model): the INT8 CPU file still
# passes its gate (min cosine 0.995 measured) but loses answers that keeping conv4 in float restores.
OUTLIER_FACTOR = 100.0
# Images whose FP32 margin (top-1 minus top-2 logit) is at least this share of the logit scale:
# seeded random weights give near-tied logits, where any rounding flips an answer; measured on
# 160 photo-like images, 138 are this decisive, the INT8 file loses 5 of them and the file with
# conv4 in float none.
MIN_MARGIN = 0.02
IMAGES, IMAGE_SEED = 160, 99


@pytest.fixture(scope="session")
def outlier_checkpoint(tmp_path_factory, small_model, make_outlier_model):
    import torch

    model = make_outlier_model(small_model, OUTLIER_FACTOR)
    path = tmp_path_factory.mktemp("outlier") / "outlier.pt"
    torch.save(model.state_dict(), path)
    return path, model


@pytest.fixture(scope="session")
def labelled_images(tmp_path_factory, outlier_checkpoint) -> Path:
    """Photo-like images (runtimes/verification/samples.py), each in the folder of the label the FP32 model gives it
    (class_0 .. class_9), the decisive ones only."""
    from alexnet_export.models.spec import Preprocessing, default_labels
    from alexnet_export.runtimes.preprocess import preprocess_batch
    from alexnet_export.runtimes.verification.samples import synthetic_images
    from alexnet_export.runtimes.torch.runtime import TorchRuntime

    _, model = outlier_checkpoint
    images = synthetic_images(IMAGES, seed=IMAGE_SEED)
    logits = TorchRuntime(model).predict(preprocess_batch(images, Preprocessing()))
    ordered = np.sort(logits, axis=1)
    margin = (ordered[:, -1] - ordered[:, -2]) / np.abs(logits).max()
    labels = default_labels(logits.shape[1])
    root = tmp_path_factory.mktemp("labelled")
    for index in np.flatnonzero(margin >= MIN_MARGIN):
        folder = root / labels[int(logits[index].argmax())]
        folder.mkdir(exist_ok=True)
        Image.fromarray(images[index]).save(folder / f"image_{index:03d}.png")
    return root
