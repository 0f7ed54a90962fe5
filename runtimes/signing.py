"""Signed model files: one signature beside a model that covers it and its companion files.

A model's signature is `<model file name>.sig` (alexnet.onnx.sig, alexnet.engine.sig) in the
OpenSSF model-signing format (a Sigstore bundle holding a DSSE-signed in-toto statement that
lists each file's SHA-256), so model-signing's own CLI verifies it too:

    model_signing verify key FOLDER --signature FOLDER/alexnet.onnx.sig --public_key public.pem --ignore_unsigned_files

The statement names the model file and every companion file the registry names for it that
exists (ONNX external data, an IR's .bin, an engine's sidecar), by file name within the folder.
Verification happens before anything of the model is parsed: the set of files must be the
signed one (none missing, none added), every byte must match, and the signature must verify
with the trusted key (a PEM public key) or chain to the trusted certificate. After that, an
ONNX file's external data references are read (raw protobuf, no onnx package) and must all be
covered, so no weights load from a file the signature does not cover.

`model_signing` is imported only when a file is signed or verified, so apps without the
`signing` extra still work as long as they do not ask for it. Never imports torch.
Reference: github.com/sigstore/model-transparency (model-signing 1.1.1: signing, verifying,
hashing modules).
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import inspect
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from alexnet_export.atomic import RENAME_HOOK, atomic_output
from alexnet_export.errors import AlexNetExportError, one_line
from alexnet_export.extras import install_hint
from alexnet_export.hashing import file_sha256
from alexnet_export.runtimes.registry import BACKENDS, KNOWN_SUFFIXES, ONNX, Backend, backend_for

SIGNATURE_SUFFIX = ".sig"
# Names a trusted key (PEM public key or CA certificate) for every open that is not given one.
TRUSTED_KEY_ENV = "ALEXNET_EXPORT_TRUSTED_KEY"
INSTALL_HINT = install_hint("signing")
_CERTIFICATE_PEM = b"-----BEGIN CERTIFICATE-----"


class SignatureError(AlexNetExportError, ValueError):
    """A model is unsigned, altered, or signed by another key; or a key cannot be used."""


class SigningUnavailable(AlexNetExportError, RuntimeError):
    """model-signing is not installed."""


@dataclass(frozen=True)
class SigningKey:
    """What signs: a PEM elliptic-curve private key (P-256, P-384 or P-521), and for
    certificate-based signing its certificate and the chain up to the root verifiers trust (at
    least the issuing CA's certificate: model-signing 1.1.1 cannot sign with an empty chain)."""

    key: Path
    certificate: Path | None = None
    chain: tuple[Path, ...] = ()
    password: str | None = None

    @classmethod
    def of(cls, value: "SigningKey | str | Path") -> "SigningKey":
        return value if isinstance(value, SigningKey) else cls(Path(value))


@dataclass(frozen=True)
class SignatureCheck:
    """A signature written (`sign_model`) or verified (`verify_model`)."""

    model: Path
    signature: Path
    files: tuple[str, ...]  # the file names it covers, the model's first
    seconds: float


@dataclass(frozen=True)
class TreeCheck:
    """`verify_tree`: the models that verified, and one line per model refused."""

    verified: tuple[SignatureCheck, ...]
    refused: tuple[str, ...]


def signature_path(model: str | Path) -> Path:
    model = Path(model)
    return model.with_name(model.name + SIGNATURE_SUFFIX)


def model_files(model: str | Path) -> dict[str, Path]:
    """The model file and its companions that exist, by file name."""
    return {path.name: path for path in backend_for(model).files(model)}


# ---------------------------------------------------------------------------------------------
# Signing


def sign_model(model: str | Path, key: SigningKey | str | Path) -> SignatureCheck:
    """Write `<model>.sig`, covering `model` and its companion files, replacing any old one atomically."""
    started = time.perf_counter()
    model = Path(model)
    if not model.is_file():
        raise SignatureError(f"model file {model} does not exist or is not a file", argument="model")
    config = _signer(SigningKey.of(key))
    files = model_files(model)
    if _links(files):
        raise SignatureError(f"cannot sign {model}: {', '.join(_links(files))} is a symbolic link; sign the file it"
                             " points to, where it is", argument="model")
    _check_external_data(model, files, "sign")
    _replace_signature(model, _signature_bytes(config, model, files))
    return SignatureCheck(model, signature_path(model), tuple(files), time.perf_counter() - started)


def _signer(key: SigningKey):
    """model-signing's signing configuration for `key`; the key is loaded here, before any work."""
    signing = _import("signing")
    for path, name in ((key.key, "key"), (key.certificate, "certificate"), *((c, "chain") for c in key.chain)):
        if path is not None and not Path(path).is_file():
            raise SignatureError(f"signing {name} {path} does not exist or is not a file", argument="sign_key")
    if key.certificate is not None and not key.chain:
        raise SignatureError(f"signing with the certificate {key.certificate} needs its chain: at least the"
                             " certificate of the CA that issued it", argument="sign_key")
    try:
        if key.certificate is None:
            return signing.Config().use_elliptic_key_signer(private_key=key.key, password=key.password)
        return signing.Config().use_certificate_signer(private_key=key.key, signing_certificate=key.certificate,
                                                       certificate_chain=key.chain)
    except Exception as exc:  # cryptography and model-signing raise ValueError, TypeError, AttributeError...
        what = "a PEM elliptic-curve private key (P-256, P-384 or P-521)" + (
            " and the PEM certificate of its public key" if key.certificate else "")
        raise SignatureError(f"cannot sign with {key.key}: {one_line(exc, 200)}; expected {what}",
                             argument="sign_key") from None


def _signature_bytes(config, model: Path, files: Mapping[str, Path]) -> bytes:
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
            config.set_hashing_config(_exact_files([view / name for name in files])).sign(view, output)
        except Exception as exc:  # model-signing's own errors, or the disk's
            raise SignatureError(f"signing {model} failed: {one_line(exc, 300)}") from None
        return output.read_bytes()


def _replace_signature(model: Path, content: bytes) -> None:
    with atomic_output(signature_path(model)) as temporary:
        temporary.write_bytes(content)


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
    active = _OutputSigning(_signer(SigningKey.of(sign_key)), Path(folder).resolve(), set())
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
    _check_external_data(model, files, "sign", read_from=files[model.name])
    old = signature_path(model).read_bytes() if signature_path(model).is_file() else None
    _replace_signature(model, _signature_bytes(active.config, model, files))
    try:
        yield
    except BaseException:
        if old is None:
            signature_path(model).unlink(missing_ok=True)
        else:
            _replace_signature(model, old)
        raise
    active.written.update(Path(target).resolve() for target in replacing)


def _model_of(replacing: Mapping[Path, Path], folder: Path) -> Path | None:
    """The model file that the targets are (or are companions of), when it lies in `folder`."""
    for target in map(Path, replacing):
        if target.parent.resolve() != folder:
            continue
        for candidate in _models_owning(target):
            if candidate == target or candidate.is_file() or candidate in map(Path, replacing):
                return candidate
    return None


def _models_owning(path: Path) -> list[Path]:
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


# ---------------------------------------------------------------------------------------------
# Verification


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
    verifier = _verifier(key)
    if not model.is_file():
        raise SignatureError(f"refused {model}: it does not exist or is not a file")
    signature = signature_path(model)
    if not signature.is_file():
        raise SignatureError(f"refused {model}: it is not signed (no {signature.name} beside it); expected a"
                             f" signature that verifies with {key.name}")
    signed = _signed_digests(model, signature)
    files = model_files(model)
    if _links(files):
        raise SignatureError(f"refused {model}: {', '.join(_links(files))} is a symbolic link; signed models are"
                             " plain files")
    missing = [name for name in signed if name not in files]
    if missing:
        raise SignatureError(f"refused {model}: {', '.join(missing)} is missing; its signature covers it")
    added = [name for name in files if name not in signed]
    if added:
        raise SignatureError(f"refused {model}: {', '.join(added)} is not covered by its signature (added after"
                             " signing?)")
    try:
        verifier.set_hashing_config(_exact_files(files.values())).verify(model.parent, signature)
    except Exception as exc:  # model-signing raises ValueError for a mismatch, others for bad bundles
        raise SignatureError(_refusal(model, signature, key, files, signed, exc)) from None
    _check_external_data(model, files, "verify")
    return SignatureCheck(model, signature, tuple(files), time.perf_counter() - started)


def verify_tree(root: str | Path, trusted_key: str | Path) -> TreeCheck:
    """Verify a model file, or every model file under a folder (a Triton repository: every
    version of every model), each with `verify_model`; a folder with no model file is an error."""
    root, key = Path(root), Path(trusted_key)
    _verifier(key)  # a bad key is one error, not one per model
    if root.is_file():
        models = [root]
    elif root.is_dir():
        models = sorted(path for path in root.rglob("*") if path.is_file() and _is_model(path))
        if not models:
            raise SignatureError(f"{root} holds no model file ({', '.join(KNOWN_SUFFIXES)})", argument="root")
    else:
        raise SignatureError(f"{root} does not exist", argument="root")
    verified, refused = [], []
    for model in models:
        try:
            verified.append(verify_model(model, key))
        except SignatureError as exc:
            refused.append(str(exc))
    return TreeCheck(tuple(verified), tuple(refused))


def _verifier(key: Path):
    """model-signing's verifying configuration for a PEM public key or a PEM CA certificate (chain)."""
    verifying = _import("verifying")
    if not key.is_file():
        raise SignatureError(f"trusted key {key} does not exist or is not a file", argument="trusted_key")
    try:
        if _CERTIFICATE_PEM in key.read_bytes():
            return verifying.Config().use_certificate_verifier(certificate_chain=[key])
        return verifying.Config().use_elliptic_key_verifier(public_key=key)
    except Exception as exc:
        raise SignatureError(f"cannot use {key} as a trusted key: {one_line(exc, 200)}; expected a PEM"
                             " elliptic-curve public key or a PEM CA certificate", argument="trusted_key") from None


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


def _check_external_data(model: Path, files: Mapping[str, Path], action: str, read_from: Path | None = None) -> None:
    """An ONNX file may read weights only from files its signature covers."""
    if backend_for(model) is not ONNX:
        return
    from alexnet_export.runtimes.onnx_graph import external_data_files

    outside = sorted(set(external_data_files(read_from or model)) - set(files))
    if not outside:
        return
    if action == "sign":
        companion = ONNX.companions[0].format(name=model.name, stem=model.stem)
        raise SignatureError(f"cannot sign {model}: it reads external data from {', '.join(outside)}, which is not a"
                             f" file that belongs to it; save its external data as {companion}", argument="model")
    raise SignatureError(f"refused {model}: it reads external data from {', '.join(outside)}, which its signature"
                         " does not cover")


# ---------------------------------------------------------------------------------------------
# model-signing


def _import(module: str):
    """model_signing's `signing` or `verifying` module; SigningUnavailable without the extra."""
    try:
        from importlib import import_module

        return import_module(f"model_signing.{module}")
    except ImportError as exc:
        raise SigningUnavailable(f"signed models need model-signing ({one_line(exc, 100)}): {INSTALL_HINT}") from None


def _exact_files(files: Iterable[Path]):
    """model-signing's hashing configuration over exactly `files` (SHA-256 per file), whatever
    else their folder holds: other models, their signatures."""
    hashing = _import("hashing")
    files = [Path(path) for path in files]

    class ExactFiles(hashing.Config):
        def hash(self, model_path, *, files_to_hash=None):
            return super().hash(model_path, files_to_hash=files)

    return ExactFiles().set_ignored_paths(paths=[], ignore_git_paths=False)


def _links(files: Mapping[str, Path]) -> list[str]:
    """Symbolic links among `files` (model-signing refuses them; one could be re-pointed after a check)."""
    return [name for name, path in files.items() if path.is_symlink()]


def _is_model(path: Path) -> bool:
    return path.suffix.lower() in KNOWN_SUFFIXES and not path.name.startswith(".")
