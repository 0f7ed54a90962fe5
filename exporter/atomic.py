"""Write outputs beside their target and rename into place, so no reader ever sees half a file."""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alexnet_export.errors import ExportError
from alexnet_export.runtimes.signing import signature_first


# Failures of the disk rather than of the program: reported as one line, the target untouched.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces `path`.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path`
    keeps whatever it held before. A SIGKILL can leave only the hidden temporary file behind.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"output folder {folder} does not exist; create it first")
    if path.is_dir():
        raise ExportError(f"output path {path} is a folder; expected a file name")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise ExportError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    os.close(handle)
    temporary = Path(temporary)
    _use_default_permissions(temporary)
    try:
        yield temporary
        _fsync(temporary)
        with signature_first({path: temporary}):  # a no-op unless the exporter was asked to sign
            os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        if exc.errno in _WRITE_ERRORS:
            raise ExportError(f"cannot write {path}: {exc.strerror}; nothing was written") from None
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def _use_default_permissions(path: Path) -> None:
    """mkstemp creates 0600; give the file the mode a plain open() would (0666 less umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
