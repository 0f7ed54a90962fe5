"""Signing models, and signing what the exporter writes in the same step that puts it in place."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from alexnet_export.atomic import RENAME_HOOK
from alexnet_export.runtimes.signing.files import (
    SignatureCheck,
    check_external_data,
    links,
    model_files,
    models_owning,
    replace_signature,
    signature_bytes,
    signature_path,
)
from alexnet_export.runtimes.signing.keys import SignatureArgumentError, SignatureError, SigningKey, signer


def sign_model(model: str | Path, key: SigningKey | str | Path) -> SignatureCheck:
    """Write `<model>.sig`, covering `model` and its companion files, replacing any old one atomically."""
    started = time.perf_counter()
    model = Path(model)
    if not model.is_file():
        raise SignatureArgumentError(f"model file {model} does not exist or is not a file", argument="model")
    config = signer(SigningKey.of(key))
    files = model_files(model)
    if links(files):
        raise SignatureError(f"cannot sign {model}: {', '.join(links(files))} is a symbolic link; sign the file it"
                             " points to, where it is", argument="model")
    check_external_data(model, files, "sign")
    replace_signature(model, signature_bytes(config, model, files))
    return SignatureCheck(model, signature_path(model), tuple(files), time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# Signing what the exporter writes, in the same step that puts it in place


@dataclass(frozen=True)
class _OutputSigning:
    config: object  # model-signing's signing.Config, key loaded
    folder: Path  # resolved: the outputs of the call are the model files put in place here
    written: set  # resolved paths this call has put in place: only these are signed with new files


_ACTIVE: contextvars.ContextVar[_OutputSigning | None] = contextvars.ContextVar("alexnet_export_signing", default=None)


@contextlib.contextmanager
def signed_outputs(sign_key: SigningKey | str | Path | None, folder: str | Path) -> Iterator[None]:
    """Within: every model file (and companion) the exporter puts in place in `folder` is signed
    with `sign_key` in the same step (`signature_first`). None signs nothing. The key is
    loaded here, so a wrong key fails before any work."""
    if sign_key is None:
        yield
        return
    active = _OutputSigning(signer(SigningKey.of(sign_key)), Path(folder).resolve(), set())
    token, hook = _ACTIVE.set(active), RENAME_HOOK.set(signature_first)  # core/atomic.py calls it at each rename
    try:
        yield
    finally:
        RENAME_HOOK.reset(hook)
        _ACTIVE.reset(token)
    if not active.written:  # a writer outside atomic_output/staged_ir, or another folder: never return unsigned
        raise SignatureError(f"asked to sign, but no model file was put in place in {folder}; nothing was signed",
                             argument="sign_key")


def signs_outputs(folder: Callable[[dict], str | Path]):
    """Decorate an exporter function that takes `sign_key`: its outputs, in the folder that
    `folder(arguments)` names, are signed as they are put in place (`signed_outputs`)."""

    def decorate(function):
        parameters = inspect.signature(function)

        @functools.wraps(function)
        def call(*args, **kwargs):
            arguments = parameters.bind(*args, **kwargs)
            arguments.apply_defaults()
            with signed_outputs(arguments.arguments["sign_key"], folder(arguments.arguments)):
                return function(*args, **kwargs)

        return call

    return decorate


@contextlib.contextmanager
def signature_first(replacing: Mapping[Path, Path]) -> Iterator[None]:
    """Around the renames that put `replacing` (target -> staged file) in place.

    When the exporter signs its outputs (`signed_outputs`) and the targets are a model or its
    companions in the signed folder, the model's new signature is written first. It covers the
    staged files under their final names and those of the model's files this call has already
    put in place (an engine, when its sidecar follows), never an older file lying beside them:
    that one is then refused as not covered. If the renames fail the old signature is put
    back. So a model is never in place without its signature, no signature covers a mix of old
    and new files, and a failure leaves the old files with their old signature. Otherwise a no-op.
    """
    active = _ACTIVE.get()
    model = _model_of(replacing, active.folder) if active is not None else None
    if model is None:
        yield
        return
    files = {path.name: path for path in model_files(model).values() if path.resolve() in active.written}
    files.update({Path(target).name: Path(source) for target, source in replacing.items()})
    if model.name not in files:  # a companion of a model this call did not write: nothing to sign as a whole
        yield
        return
    files = {name: files[name] for name in sorted(files, key=lambda name: name != model.name)}
    check_external_data(model, files, "sign", read_from=files[model.name])
    old = signature_path(model).read_bytes() if signature_path(model).is_file() else None
    replace_signature(model, signature_bytes(active.config, model, files))
    try:
        yield
    except BaseException:
        if old is None:
            signature_path(model).unlink(missing_ok=True)
        else:
            replace_signature(model, old)
        raise
    active.written.update(Path(target).resolve() for target in replacing)


def _model_of(replacing: Mapping[Path, Path], folder: Path) -> Path | None:
    """The model file that the targets are (or are companions of), when it lies in `folder`."""
    for target in map(Path, replacing):
        if target.parent.resolve() != folder:
            continue
        for candidate in models_owning(target):
            if candidate == target or candidate.is_file() or candidate in map(Path, replacing):
                return candidate
    return None
