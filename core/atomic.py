"""Write outputs beside their target and rename into place, so no reader ever sees half a file."""

from __future__ import annotations

import contextvars
import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Mapping, Sequence

from alexnet_export.errors import ArgumentError, ExportError


# Failures of the disk rather than of the program: reported as one line, the target untouched.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}


# What must happen in the same step as a rename into place, for the extent of one call: while an
# export was asked to sign, runtimes/signing/sign.py writes the model's new signature first. The hook
# lives here, set from above, so the writer imports nothing of what uses it.
RenameHook = Callable[[Mapping[Path, Path]], ContextManager[None]]
RENAME_HOOK: contextvars.ContextVar[RenameHook | None] = contextvars.ContextVar("alexnet_export_rename_hook",
                                                                               default=None)


@contextmanager
def renaming(replacing: Mapping[Path, Path]) -> Iterator[None]:
    """Around the renames that put `replacing` (target -> staged file) in place: the active hook, if any."""
    hook = RENAME_HOOK.get()
    if hook is None:
        yield
        return
    with hook(replacing):
        yield


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces `path`.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path`
    keeps whatever it held before. A SIGKILL can leave only the hidden temporary file behind.
    """
    path = check_output_path(path)
    folder = path.parent
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
        with renaming({path: temporary}):
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


def move_into_place(finished: str | Path, path: str | Path) -> None:
    """Put a file another writer finished (Ray's Parquet writer, in a staging folder on the same file
    system) at `path` the way atomic_output does: flushed to disk, renamed in, the folder flushed."""
    finished, path = Path(finished), Path(path)
    _fsync(finished)
    with renaming({path: finished}):
        os.replace(finished, path)
    _fsync_folder(path.parent)


def check_output_path(path: str | Path, argument: str = "output") -> Path:
    """`path` as a Path, if a file can be written there: its folder exists and it is no folder.
    The one check of every output path, made before any work (ArgumentError naming `argument`)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ArgumentError(f"output folder {path.parent} does not exist; create it first", argument=argument)
    if path.is_dir():
        raise ArgumentError(f"output path {path} is a folder; expected a file name", argument=argument)
    return path


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


@contextmanager
def staged_with_companions(path: str | Path, companions: Callable[[Path], Sequence[Path]]) -> Iterator[Path]:
    """For a file that belongs with others (an IR's .bin, a .pte's sidecar): yield a path of the same
    name in a hidden folder beside `path`; write the file and its companions (`companions(staged)`)
    there. On success each companion, then the file, replaces its target (`companions(path)`); on
    any exception the folder goes and the targets keep what they held.

    The renames are not one atomic step: a crash between them leaves new companions beside the old
    file. They follow each other directly, after every check has passed; readers that care check
    the pair (runtimes/executorch/runtime.py compares the sidecar's byte count with the file's).
    """
    path = check_output_path(path)
    folder = path.parent
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=folder))
    except OSError as exc:
        raise ExportError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    staged = staging / path.name
    try:
        yield staged
        moves = {**dict(zip(companions(path), companions(staged))), path: staged}
        try:
            with renaming(moves):
                for target, source in moves.items():
                    os.replace(source, target)
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
        _fsync_folder(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
