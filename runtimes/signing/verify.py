"""Verification on open: a model's file set, every byte and its signature checked against a trusted
key before anything of the model is parsed.

The set of files must be the signed one (none missing, none added), every byte must match, and
the signature must verify with the trusted key (a PEM public key) or chain to the trusted
certificate. After that, an ONNX file's external data references are read (raw protobuf, no onnx
package) and must all be covered, so no weights load from a file the signature does not cover.
runtimes/registry.py's open_runtime calls `check_before_open` first. Never imports torch.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from alexnet_export.errors import one_line
from alexnet_export.hashing import file_sha256
from alexnet_export.runtimes.table import KNOWN_SUFFIXES, is_model_file
from alexnet_export.runtimes.signing.files import (
    SignatureCheck,
    check_external_data,
    links,
    model_files,
    signature_path,
)
from alexnet_export.runtimes.signing.keys import SignatureArgumentError, SignatureError, exact_files, verifier

# Names a trusted key (PEM public key or CA certificate) for every open that is not given one.
TRUSTED_KEY_ENV = "ALEXNET_EXPORT_TRUSTED_KEY"


@dataclass(frozen=True)
class TreeCheck:
    """`verify_tree`: the models that verified, and one line per model refused."""

    verified: tuple[SignatureCheck, ...]
    refused: tuple[str, ...]


def trusted_key_from(trusted_key: str | Path | None) -> Path | None:
    """`trusted_key`, else the file that ALEXNET_EXPORT_TRUSTED_KEY names, else None (no check)."""
    if trusted_key is not None:
        return Path(trusted_key)
    named = os.environ.get(TRUSTED_KEY_ENV, "").strip()
    return Path(named) if named else None


def check_before_open(model: str | Path, trusted_key: str | Path | None) -> None:
    """What every open does first: verify `model` when a trusted key is given or set in the environment."""
    key = trusted_key_from(trusted_key)
    if key is not None:
        verify_model(model, key)


def verify_model(model: str | Path, trusted_key: str | Path) -> SignatureCheck:
    """Check `model`'s signature and files against `trusted_key` (a PEM public key, or the PEM
    certificate a certificate-signed model chains to); SignatureError, one line naming the file
    and the reason, if they do not hold. Reads only bytes, parses nothing of the model first."""
    started = time.perf_counter()
    model, key = Path(model), Path(trusted_key)
    config = verifier(key)
    if not model.is_file():
        raise SignatureArgumentError(f"refused {model}: it does not exist or is not a file", argument="model")
    signature = signature_path(model)
    if not signature.is_file():
        raise SignatureError(f"refused {model}: it is not signed (no {signature.name} beside it); expected a"
                             f" signature that verifies with {key.name}")
    signed = _signed_digests(model, signature)
    files = model_files(model)
    if links(files):
        raise SignatureError(f"refused {model}: {', '.join(links(files))} is a symbolic link; signed models are"
                             " plain files")
    missing = [name for name in signed if name not in files]
    if missing:
        raise SignatureError(f"refused {model}: {', '.join(missing)} is missing; its signature covers it")
    added = [name for name in files if name not in signed]
    if added:
        raise SignatureError(f"refused {model}: {', '.join(added)} is not covered by its signature (added after"
                             " signing?)")
    try:
        config.set_hashing_config(exact_files(files.values())).verify(model.parent, signature)
    except Exception as exc:  # model-signing raises ValueError for a mismatch, others for bad bundles
        raise SignatureError(_refusal(model, signature, key, files, signed, exc)) from None
    check_external_data(model, files, "verify")
    return SignatureCheck(model, signature, tuple(files), time.perf_counter() - started)


def verify_tree(root: str | Path, trusted_key: str | Path) -> TreeCheck:
    """Verify a model file, or every model file under a folder (a Triton repository: every
    version of every model), each with `verify_model`; a folder with no model file is an error."""
    root, key = Path(root), Path(trusted_key)
    verifier(key)  # a bad key is one error, not one per model
    if root.is_file():
        models = [root]
    elif root.is_dir():
        models = sorted(path for path in root.rglob("*") if path.is_file() and is_model_file(path))
        if not models:
            raise SignatureArgumentError(f"{root} holds no model file ({', '.join(KNOWN_SUFFIXES)})", argument="root")
    else:
        raise SignatureArgumentError(f"{root} does not exist", argument="root")
    verified, refused = [], []
    for model in models:
        try:
            verified.append(verify_model(model, key))
        except SignatureError as exc:
            refused.append(str(exc))
    return TreeCheck(tuple(verified), tuple(refused))


def _signed_digests(model: Path, signature: Path) -> dict[str, tuple[str, str]]:
    """File name -> (algorithm, hex digest) as the signature's statement lists them. Not yet
    trusted: used only to refuse early and to say which file changed."""
    try:
        bundle = json.loads(signature.read_text(encoding="utf-8"))
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        resources = statement["predicate"]["resources"]
        digests = {entry["name"]: (entry.get("algorithm", ""), entry["digest"]) for entry in resources}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"refused {model}: {signature.name} is not a model-signing signature"
                             f" ({one_line(exc, 100)})") from None
    other = sorted({algorithm for algorithm, _ in digests.values()} - {"sha256"})
    if other:
        raise SignatureError(f"refused {model}: {signature.name} lists {', '.join(other)} digests; expected SHA-256"
                             " per file, as `alexnet-export sign` writes")
    return digests


def _refusal(model: Path, signature: Path, key: Path, files: Mapping[str, Path], signed: Mapping[str, tuple[str, str]],
             exc: Exception) -> str:
    """Why model-signing refused: a file that differs from its signed digest, else the key."""
    changed = [name for name, path in files.items() if signed[name][1] != file_sha256(path)]
    if changed:
        return (f"refused {model}: {', '.join(changed)} does not match its signature (changed since it was"
                " signed)")
    return (f"refused {model}: {signature.name} does not verify with the trusted key {key.name}, so another key"
            f" signed it ({one_line(exc, 150)})")
