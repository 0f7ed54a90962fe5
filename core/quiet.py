"""Third-party chatter that does not concern the user, silenced while one step runs."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
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


_STDERR = threading.RLock()  # file descriptor 2 and sys.stderr are the process's: one capture at a time


@contextlib.contextmanager
def captured_stderr(native_only: bool = False) -> Iterator[io.StringIO]:
    """What is written to stderr inside the block, by Python (`sys.stderr`) or by native code (file
    descriptor 2), kept in the yielded buffer instead of printed (native text after Python's).

    For a native loader that logs each failure before it raises (ExecuTorch's bindings write their
    C++ log through `sys.stderr`; other libraries write to fd 2): the caller folds what matters into
    its one-line error. Process-wide while it runs, as stderr is: keep the block to one short step.
    Captures take turns (one lock), so two threads loading at once cannot restore each other's fd.
    native_only: only fd 2 is captured; Python's `sys.stderr` (the toolkit's own progress) still
    reaches the terminal, through a copy of the original descriptor (a long native step's chatter
    hidden, its progress lines not)."""
    captured = io.StringIO()
    with _STDERR, tempfile.TemporaryFile() as native:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (a daemon with it closed): Python's stream only
            saved = None
        if saved is not None:
            os.dup2(native.fileno(), 2)
        python = captured
        if native_only:
            python = (open(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
                      if saved is not None else sys.stderr)
        try:
            with contextlib.redirect_stderr(python):
                yield captured
        finally:
            if python is not captured and saved is not None:
                python.close()
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                native.seek(0)
                captured.write(native.read().decode("utf-8", "replace"))
