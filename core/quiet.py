"""Third-party chatter that does not concern the user, silenced while one step runs."""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator


@contextlib.contextmanager
def quiet(*logger_names: str) -> Iterator[None]:
    """The named loggers at ERROR and Python warnings off inside the block; restored after it.

    The exporters log warnings about optional packages and deprecations (torch.onnx about
    torchvision, torchao about its CUDA-only kernels on a CPU machine, ONNX Runtime's converter
    about each file it writes), and so does Ray Data: the toolkit reports through events instead."""
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
