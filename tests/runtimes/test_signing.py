"""Signing and verifying model files (runtimes/signing/sign.py): the format is model-signing's own, a
signature covers exactly a model and its companions, and keys and certificates are checked."""

import base64
import json
import os
import subprocess
import sys

import pytest

from alexnet_export.runtimes.signing import (
    SignatureError,
    SigningKey,
    SigningUnavailable,
    sign_model,
    signature_path,
    verify_model,
    verify_tree,
)


@pytest.fixture
def folder(tmp_path, small_onnx, external_data_onnx):
    """single.onnx, small.onnx + small.onnx.data and an unrelated file, all unsigned (hard links)."""
    os.link(small_onnx, tmp_path / "single.onnx")
    for path in (external_data_onnx, external_data_onnx.with_name("small.onnx.data")):
        os.link(path, tmp_path / path.name)
    (tmp_path / "notes.txt").write_text("not part of any model")
    return tmp_path


def _statement(signature):
    bundle = json.loads(signature.read_text())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def test_a_signature_covers_the_model_and_its_companions_by_name(folder, signing_keys):
    result = sign_model(folder / "small.onnx", signing_keys.private)
    assert result.signature == folder / "small.onnx.sig" and result.files == ("small.onnx", "small.onnx.data")
    statement = _statement(result.signature)
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert {r["name"] for r in statement["predicate"]["resources"]} == {"small.onnx", "small.onnx.data"}
    assert verify_model(folder / "small.onnx", signing_keys.public).files == result.files
    assert sign_model(folder / "single.onnx", signing_keys.private).files == ("single.onnx",)


def _model_signing_cli(*args):
    return subprocess.run([sys.executable, "-m", "model_signing", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_model_signings_own_cli_verifies_our_signatures(folder, signing_keys):
    """The folder also holds other files and another model's signature: --ignore_unsigned_files."""
    sign_model(folder / "small.onnx", signing_keys.private)
    sign_model(folder / "single.onnx", signing_keys.private)
    for model in ("small.onnx", "single.onnx"):
        result = _model_signing_cli("verify", "key", folder, "--signature", folder / f"{model}.sig",
                                    "--public_key", signing_keys.public, "--ignore_unsigned_files")
        assert result.returncode == 0 and "Verification succeeded" in result.stdout, result.stderr
    result = _model_signing_cli("verify", "key", folder, "--signature", folder / "small.onnx.sig",
                                "--public_key", signing_keys.other_public, "--ignore_unsigned_files")
    assert result.returncode == 1 and "Key mismatch" in result.stderr
    data = bytearray((folder / "small.onnx.data").read_bytes())
    data[-1] ^= 1
    (folder / "small.onnx.data").unlink()
    (folder / "small.onnx.data").write_bytes(bytes(data))
    result = _model_signing_cli("verify", "key", folder, "--signature", folder / "small.onnx.sig",
                                "--public_key", signing_keys.public, "--ignore_unsigned_files")
    assert result.returncode == 1 and "Hash mismatch for 'small.onnx.data'" in result.stderr


def test_we_verify_what_model_signings_cli_signs(tmp_path, small_onnx, signing_keys):
    """A folder holding one model and its signature, signed by model-signing's CLI."""
    os.link(small_onnx, tmp_path / "alexnet.onnx")
    result = _model_signing_cli("sign", "key", tmp_path, "--signature", tmp_path / "alexnet.onnx.sig",
                                "--private_key", signing_keys.private)
    assert result.returncode == 0, result.stderr
    assert verify_model(tmp_path / "alexnet.onnx", signing_keys.public).files == ("alexnet.onnx",)


def test_certificate_signing_verifies_against_its_ca(folder, signing_keys):
    key = SigningKey(signing_keys.private, certificate=signing_keys.certificate, chain=(signing_keys.ca,))
    sign_model(folder / "small.onnx", key)
    assert verify_model(folder / "small.onnx", signing_keys.ca).files == ("small.onnx", "small.onnx.data")
    with pytest.raises(SignatureError, match=r"small.onnx.sig does not verify with the trusted key other-ca.crt"):
        verify_model(folder / "small.onnx", signing_keys.other_ca)
    with pytest.raises(SignatureError, match="does not verify with the trusted key owner.pub.pem"):
        verify_model(folder / "small.onnx", signing_keys.public)  # a certificate signature needs its CA


def test_a_certificate_must_match_the_key(folder, signing_keys):
    with pytest.raises(SignatureError, match=r"cannot sign with .*other.pem: The public key from the certificate") as caught:
        sign_model(folder / "single.onnx", SigningKey(signing_keys.other_private, certificate=signing_keys.certificate,
                                                      chain=(signing_keys.ca,)))
    with pytest.raises(SignatureError, match="needs its chain: at least the certificate of the CA that issued it"):
        sign_model(folder / "single.onnx", SigningKey(signing_keys.private, certificate=signing_keys.certificate))
    assert caught.value.argument == "sign_key" and not signature_path(folder / "single.onnx").exists()


@pytest.mark.parametrize("content", [b"", b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"])
def test_an_unusable_signing_key_is_one_line(folder, content):
    (folder / "bad.pem").write_bytes(content)
    with pytest.raises(SignatureError, match=r"^cannot sign with .*bad.pem: .*; expected a PEM elliptic-curve private key"):
        sign_model(folder / "single.onnx", folder / "bad.pem")


def test_an_rsa_key_is_refused(folder):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "rsa.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    with pytest.raises(SignatureError, match="expected a PEM elliptic-curve private key"):
        sign_model(folder / "single.onnx", folder / "rsa.pem")


def test_an_unusable_trusted_key_names_the_argument(folder, signing_keys):
    sign_model(folder / "single.onnx", signing_keys.private)
    with pytest.raises(SignatureError, match=r"cannot use .*owner.pem as a trusted key") as caught:
        verify_model(folder / "single.onnx", signing_keys.private)  # the private key, not the public one
    assert caught.value.argument == "trusted_key"


def test_external_data_must_be_a_companion_to_be_signed(tmp_path, small_onnx, signing_keys):
    """An ONNX reading weights from a file the registry does not name for it cannot be signed:
    the signature would not cover the weights."""
    import onnx

    onnx.save_model(onnx.load(str(small_onnx)), str(tmp_path / "odd.onnx"), save_as_external_data=True,
                    location="weights.bin")
    with pytest.raises(SignatureError, match=r"cannot sign .*odd.onnx: it reads external data from weights.bin,"
                                             r" .* save its external data as odd.onnx.data"):
        sign_model(tmp_path / "odd.onnx", signing_keys.private)
    assert not signature_path(tmp_path / "odd.onnx").exists()


def test_verification_refuses_external_data_outside_the_signature(tmp_path, small_onnx, signing_keys):
    """Signed elsewhere (model-signing's CLI, told to leave weights.bin out): the weights are not covered."""
    import onnx

    onnx.save_model(onnx.load(str(small_onnx)), str(tmp_path / "odd.onnx"), save_as_external_data=True,
                    location="weights.bin")
    result = _model_signing_cli("sign", "key", tmp_path, "--signature", tmp_path / "odd.onnx.sig",
                                "--private_key", signing_keys.private, "--ignore-paths", tmp_path / "weights.bin")
    assert result.returncode == 0, result.stderr
    with pytest.raises(SignatureError, match=r"odd.onnx: it reads external data from weights.bin, which its"
                                             " signature does not cover"):
        verify_model(tmp_path / "odd.onnx", signing_keys.public)


def test_verify_tree_checks_every_model_under_a_folder(folder, signing_keys):
    sign_model(folder / "small.onnx", signing_keys.private)
    result = verify_tree(folder, signing_keys.public)
    assert [check.model.name for check in result.verified] == ["small.onnx"]
    assert result.refused == (f"refused {folder / 'single.onnx'}: it is not signed (no single.onnx.sig beside it);"
                              " expected a signature that verifies with owner.pub.pem",)
    (folder / "empty").mkdir()
    with pytest.raises(SignatureError, match="holds no model file") as caught:
        verify_tree(folder / "empty", signing_keys.public)
    assert caught.value.argument == "root"


def test_signing_needs_the_extra(folder, signing_keys, monkeypatch):
    monkeypatch.setitem(sys.modules, "model_signing.verifying", None)  # as if model-signing were not installed
    with pytest.raises(SigningUnavailable, match=r"pip install 'alexnet-export\[signing\]'"):
        verify_model(folder / "single.onnx", signing_keys.public)


def test_opening_without_a_key_never_imports_model_signing(small_onnx):
    code = ("import sys; from alexnet_export.runtimes.registry import open_runtime; "
            "import alexnet_export.atomic, alexnet_export.runtimes.signing; "
            f"open_runtime({str(small_onnx)!r}, providers=['CPUExecutionProvider']); "
            "assert not [m for m in sys.modules if m.startswith('model_signing')], 'imported'")
    env = {key: value for key, value in os.environ.items() if key != "ALEXNET_EXPORT_TRUSTED_KEY"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr


def test_an_app_without_torch_or_onnx_verifies_and_opens(tmp_path, small_onnx, signing_keys):
    """The wrapper apps embed, with the `signing` extra: no torch, no onnx package."""
    os.link(small_onnx, tmp_path / "alexnet.onnx")
    sign_model(tmp_path / "alexnet.onnx", signing_keys.private)
    code = f"""
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"torch", "onnx", "onnxscript", "safetensors"}}:
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Absent())
import numpy as np
from alexnet_export.runtimes import open_runtime
runtime = open_runtime({str(tmp_path / "alexnet.onnx")!r}, trusted_key={str(signing_keys.public)!r})
print(runtime.predict(np.zeros((1, 3, 224, 224), np.float32)).shape)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "(1, 10)", result.stderr
