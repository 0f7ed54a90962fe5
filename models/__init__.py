"""The seed AlexNet and the description of its input.

`from alexnet_export.models import AlexNet` builds the model to train (docs/cli.md: "The model, to train
and save"); `load_alexnet` reads a checkpoint as the toolkit does. Both need torch, and are imported on
first use (core/lazy.py), so importing this package imports nothing heavy: `spec`, `labels` and
`precisions` need no torch, and runtimes read them on machines without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.extras import require
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.models.alexnet import AlexNet, seeded_alexnet
    from alexnet_export.models.weights import LoadedModel, load_alexnet

__all__ = ["AlexNet", "LoadedModel", "load_alexnet", "seeded_alexnet"]
__getattr__ = lazy_names(__name__, {
    "AlexNet": "alexnet",
    "seeded_alexnet": "alexnet",
    "LoadedModel": "weights",
    "load_alexnet": "weights",
}, before=lambda: require("torch", purpose="the AlexNet model"))
