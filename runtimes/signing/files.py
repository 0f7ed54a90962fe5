"""What a model's signature covers: `<model file name>.sig` beside the model, over the model file and
those of its companion files that exist, by file name within the folder. The companions are the ones
the model's row in the backend table (runtimes/table.py) names, e.g. ONNX external data, an .ort's
required-operators config, an IR's .bin, and an engine's, a .pte's or a .tflite's JSON sidecar.

The signature is in the OpenSSF model-signing format (a Sigstore bundle holding a DSSE-signed
in-toto statement that lists each file's SHA-256), so model-signing's own CLI verifies it too:

    model_signing verify key FOLDER --signature FOLDER/alexnet.onnx.sig --public_key public.pem --ignore_unsigned_files
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from alexnet_export.atomic import atomic_output
from alexnet_export.errors import one_line
from alexnet_export.runtimes.table import BACKENDS, ONNX, Backend, backend_for
from alexnet_export.runtimes.signing.keys import SignatureError, exact_files

SIGNATURE_SUFFIX = ".sig"


@dataclass(frozen=True)
class SignatureCheck:
    """A signature written (`sign_model`) or verified (`verify_model`)."""

    model: Path
    signature: Path
    files: tuple[str, ...]  # the file names it covers, the model's first
    seconds: float


def signature_path(model: str | Path) -> Path:
    model = Path(model)
    return model.with_name(model.name + SIGNATURE_SUFFIX)


def model_files(model: str | Path) -> dict[str, Path]:
    """The model file and its companions that exist, by file name."""
    return {path.name: path for path in backend_for(model).files(model)}


def signature_bytes(config, model: Path, files: Mapping[str, Path]) -> bytes:
    """The signature of `files` (name -> where its bytes are now) as they will be named beside `model`.

    model-signing names each file by its path within the folder it signs, so the bytes are
    hard-linked (copied where links fail) under their final names into a hidden folder named
    like the model's: staged files are signed as what they are about to become."""
    folder = model.parent
    with tempfile.TemporaryDirectory(prefix=f".{model.name}.sign-", dir=folder) as scratch:
        view = Path(scratch) / folder.resolve().name
        view.mkdir()
        for name, source in files.items():
            try:
                os.link(source, view / name)
            except OSError:
                shutil.copyfile(source, view / name)
        output = Path(scratch) / "signature"
        try:
            config.set_hashing_config(exact_files([view / name for name in files])).sign(view, output)
        except Exception as exc:  # model-signing's own errors, or the disk's
            raise SignatureError(f"signing {model} failed: {one_line(exc, 300)}") from None
        return output.read_bytes()


def replace_signature(model: Path, content: bytes) -> None:
    with atomic_output(signature_path(model)) as temporary:
        temporary.write_bytes(content)


def models_owning(path: Path) -> list[Path]:
    """`path` itself when it is a model file, else the model files it would be a companion of."""
    owners = []
    for backend in BACKENDS:
        if path.suffix.lower() in backend.suffixes:
            owners.append(path)
        owners += [path.with_name(name) for name in _owner_names(backend, path.name)]
    return owners


def _owner_names(backend: Backend, companion: str) -> list[str]:
    """The model names whose companion patterns give `companion` ("{name}.data", "{stem}.bin")."""
    names = []
    for pattern in backend.companions:
        field, tail = pattern[1:].split("}", 1)
        if not companion.endswith(tail) or len(companion) == len(tail):
            continue
        base = companion[: -len(tail)]
        candidates = [base] if field == "name" else [base + suffix for suffix in backend.suffixes]
        names += [name for name in candidates if Path(name).suffix.lower() in backend.suffixes]
    return names


def check_external_data(model: Path, files: Mapping[str, Path], action: str, read_from: Path | None = None) -> None:
    """An ONNX file may read weights only from files its signature covers."""
    if backend_for(model) is not ONNX:
        return
    from alexnet_export.runtimes.onnx.reader import external_data_files

    outside = sorted(set(external_data_files(read_from or model)) - set(files))
    if not outside:
        return
    if action == "sign":
        companion = ONNX.companions[0].format(name=model.name, stem=model.stem)
        raise SignatureError(f"cannot sign {model}: it reads external data from {', '.join(outside)}, which is not a"
                             f" file that belongs to it; save its external data as {companion}", argument="model")
    raise SignatureError(f"refused {model}: it reads external data from {', '.join(outside)}, which its signature"
                         " does not cover")


def links(files: Mapping[str, Path]) -> list[str]:
    """Symbolic links among `files` (model-signing refuses them; one could be re-pointed after a check)."""
    return [name for name, path in files.items() if path.is_symlink()]
