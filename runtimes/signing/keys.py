"""Key handling for signed models, through model-signing (OpenSSF): what signs (a private key, or a
certificate with its chain), what verifies (a public key or a CA certificate), and the hashing
configuration over exactly a model's files.

`model_signing` is imported only here, when a file is signed or verified, so apps without the
`signing` extra still work as long as they do not ask for it. Never imports torch.
Reference: github.com/sigstore/model-transparency (model-signing 1.1.1: signing, verifying,
hashing modules).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Iterable

from alexnet_export.errors import AlexNetExportError, ArgumentError, MissingDependencyError, one_line
from alexnet_export.extras import install_hint

INSTALL_HINT = install_hint("signing")
_CERTIFICATE_PEM = b"-----BEGIN CERTIFICATE-----"


class SignatureError(AlexNetExportError, ValueError):
    """A model is unsigned, altered, or signed by another key; or a key cannot be used."""


class SignatureArgumentError(SignatureError, ArgumentError):
    """A model, key or folder the arguments name is missing (or a folder holds no model, a certificate comes
    without its chain): a usage error (exit 2), found before any signature is made or read."""


class SigningUnavailable(MissingDependencyError):
    """model-signing is not installed (an ImportError naming the extra)."""


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


def signer(key: SigningKey):
    """model-signing's signing configuration for `key`; the key is loaded here, before any work."""
    signing = import_model_signing("signing")
    for path, name in ((key.key, "key"), (key.certificate, "certificate"), *((c, "chain") for c in key.chain)):
        if path is not None and not Path(path).is_file():
            raise SignatureArgumentError(f"signing {name} {path} does not exist or is not a file", argument="sign_key")
    if key.certificate is not None and not key.chain:
        raise SignatureArgumentError(f"signing with the certificate {key.certificate} needs its chain: at least the"
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


def verifier(key: Path):
    """model-signing's verifying configuration for a PEM public key or a PEM CA certificate (chain)."""
    verifying = import_model_signing("verifying")
    if not key.is_file():
        raise SignatureArgumentError(f"trusted key {key} does not exist or is not a file", argument="trusted_key")
    try:
        if _CERTIFICATE_PEM in key.read_bytes():
            return verifying.Config().use_certificate_verifier(certificate_chain=[key])
        return verifying.Config().use_elliptic_key_verifier(public_key=key)
    except Exception as exc:
        raise SignatureError(f"cannot use {key} as a trusted key: {one_line(exc, 200)}; expected a PEM"
                             " elliptic-curve public key or a PEM CA certificate", argument="trusted_key") from None


def import_model_signing(module: str):
    """model_signing's `signing` or `verifying` module; SigningUnavailable without the extra."""
    try:
        return import_module(f"model_signing.{module}")
    except ImportError as exc:
        raise SigningUnavailable(f"signed models need model-signing ({one_line(exc, 100)}): {INSTALL_HINT}") from None


def exact_files(files: Iterable[Path]):
    """model-signing's hashing configuration over exactly `files` (SHA-256 per file), whatever
    else their folder holds: other models, their signatures."""
    hashing = import_model_signing("hashing")
    files = [Path(path) for path in files]

    class ExactFiles(hashing.Config):
        def hash(self, model_path, *, files_to_hash=None):
            return super().hash(model_path, files_to_hash=files)

    return ExactFiles().set_ignored_paths(paths=[], ignore_git_paths=False)
