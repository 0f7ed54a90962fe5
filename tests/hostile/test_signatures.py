"""Signed models under attack: a model that is unsigned, altered, incomplete, padded or signed by
another key is refused with one line naming the file and the reason, before any of it is loaded.

The files, model-signing and ONNX Runtime are real. The spies sit on the loading boundary only
(ONNX Runtime's session constructor, the engine runtime's constructor, where its sidecar is read
and the engine deserialised) to prove that a refused file never reaches it.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from alexnet_export.runtimes.registry import open_runtime
from alexnet_export.runtimes.signing import (
    TRUSTED_KEY_ENV,
    SignatureError,
    sign_model,
    signature_path,
    verify_model,
)

ENGINE_BYTES = bytes(range(256)) * 64  # fake bytes: nothing of an engine is read before its signature verifies


def _sidecar(precision: str) -> str:
    return json.dumps({"tensorrt_version": "10.13.0", "gpu_name": "NVIDIA H200", "compute_capability": "9.0",
                       "precision": precision, "batch": {"min": 1, "opt": 8, "max": 32}, "metadata": {}})


@pytest.fixture(scope="module")
def signed(tmp_path_factory, small_onnx, external_data_onnx, signing_keys) -> Path:
    """A folder of signed models: single.onnx (weights inside), small.onnx + small.onnx.data, and
    fake.engine + fake.engine.json. Tests take hard links of it (`models_from`), never write into it."""
    folder = tmp_path_factory.mktemp("signed")
    os.link(small_onnx, folder / "single.onnx")
    for path in (external_data_onnx, external_data_onnx.with_name("small.onnx.data")):
        os.link(path, folder / path.name)
    (folder / "fake.engine").write_bytes(ENGINE_BYTES)
    (folder / "fake.engine.json").write_text(_sidecar("fp16"))
    for model in ("single.onnx", "small.onnx", "fake.engine"):
        sign_model(folder / model, signing_keys.private)
    return folder


def models_from(signed: Path, folder: Path) -> Path:
    """`folder` holding hard links to every file of `signed` (cheap; replace a file before changing it)."""
    for path in signed.iterdir():
        os.link(path, folder / path.name)
    return folder


def flip_byte(path: Path, offset: int) -> None:
    """One bit flipped at `offset`, in a file of its own (the hard link is broken first)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.unlink()
    path.write_bytes(bytes(data))


class EngineReached(Exception):
    pass


@pytest.fixture
def loads(monkeypatch):
    """What got past the signature check: ("onnxruntime", file) for each ONNX Runtime session made
    (the real one is made), ("engine", file) when the engine runtime is entered (then stopped)."""
    import onnxruntime

    from alexnet_export.runtimes.tensorrt.runtime import TensorRTRuntime

    reached = []
    real_session = onnxruntime.InferenceSession

    def session(path, *args, **kwargs):
        reached.append(("onnxruntime", Path(path).name))
        return real_session(path, *args, **kwargs)

    def engine_runtime(self, path, **options):
        reached.append(("engine", Path(path).name))
        raise EngineReached(path)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    monkeypatch.setattr(TensorRTRuntime, "__init__", engine_runtime)
    return reached


def refused(path: Path, key: Path) -> str:
    """The one-line reason `open_runtime` gives for refusing `path`."""
    with pytest.raises(SignatureError) as caught:
        open_runtime(path, trusted_key=key, providers=["CPUExecutionProvider"]) if path.suffix == ".onnx" \
            else open_runtime(path, trusted_key=key)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"refused {path}: ")
    return message


def test_unsigned_file_is_refused(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    signature_path(folder / "single.onnx").unlink()
    assert "it is not signed (no single.onnx.sig beside it)" in refused(folder / "single.onnx", signing_keys.public)
    assert loads == []


def test_flipped_byte_in_the_model_file(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    flip_byte(folder / "small.onnx", (folder / "small.onnx").stat().st_size // 2)
    assert "small.onnx does not match its signature" in refused(folder / "small.onnx", signing_keys.public)
    assert loads == []


def test_flipped_byte_in_external_data(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    data = folder / "small.onnx.data"
    flip_byte(data, data.stat().st_size - 1000)
    assert "small.onnx.data does not match its signature" in refused(folder / "small.onnx", signing_keys.public)
    assert loads == []


def test_flipped_byte_in_an_engine_sidecar(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    flip_byte(folder / "fake.engine.json", 10)
    assert "fake.engine.json does not match its signature" in refused(folder / "fake.engine", signing_keys.public)
    assert loads == []


def test_flipped_byte_in_an_engine(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    flip_byte(folder / "fake.engine", 0)
    assert "fake.engine does not match its signature" in refused(folder / "fake.engine", signing_keys.public)
    assert loads == []


def test_swapped_sidecar_from_another_build(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    (folder / "fake.engine.json").unlink()
    (folder / "fake.engine.json").write_text(_sidecar("int8-tensorrt"))  # well-formed, just not this engine's
    assert "fake.engine.json does not match its signature" in refused(folder / "fake.engine", signing_keys.public)
    assert loads == []


def test_swapped_external_data(tmp_path, signed, signing_keys, loads, small_onnx):
    """Another model's weights under the right name: same size, other bytes."""
    folder = models_from(signed, tmp_path)
    data = folder / "small.onnx.data"
    size = data.stat().st_size
    data.unlink()
    data.write_bytes(small_onnx.read_bytes()[-size:])
    assert "small.onnx.data does not match its signature" in refused(folder / "small.onnx", signing_keys.public)
    assert loads == []


def test_missing_companion(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    (folder / "small.onnx.data").unlink()
    assert "small.onnx.data is missing; its signature covers it" in refused(folder / "small.onnx", signing_keys.public)
    (folder / "fake.engine.json").unlink()
    assert "fake.engine.json is missing" in refused(folder / "fake.engine", signing_keys.public)
    assert loads == []


def test_added_companion(tmp_path, signed, signing_keys, loads):
    """single.onnx was signed alone: a single.onnx.data dropped beside it is refused, not read."""
    folder = models_from(signed, tmp_path)
    os.link(folder / "small.onnx.data", folder / "single.onnx.data")
    message = refused(folder / "single.onnx", signing_keys.public)
    assert "single.onnx.data is not covered by its signature" in message
    assert loads == []


def test_signed_by_another_key(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    signature_path(folder / "small.onnx").unlink()
    sign_model(folder / "small.onnx", signing_keys.other_private)  # the same bytes, another signer
    message = refused(folder / "small.onnx", signing_keys.public)
    assert "small.onnx.sig does not verify with the trusted key owner.pub.pem, so another key signed it" in message
    assert loads == []


def test_garbage_signature(tmp_path, signed, signing_keys, loads):
    folder = models_from(signed, tmp_path)
    signature_path(folder / "single.onnx").unlink()
    signature_path(folder / "single.onnx").write_text("not a signature")
    assert "single.onnx.sig is not a model-signing signature" in refused(folder / "single.onnx", signing_keys.public)
    assert loads == []


def test_good_signed_files_open_and_predict(signed, signing_keys, loads, onnx_runtime, photos):
    batch = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    expected = onnx_runtime.predict(batch)
    for name in ("single.onnx", "small.onnx"):
        runtime = open_runtime(signed / name, trusted_key=signing_keys.public, providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(runtime.predict(batch), expected)
        assert runtime.classify(photos[:1], top_k=1) == onnx_runtime.classify(photos[:1], top_k=1)
    assert loads == [("onnxruntime", "single.onnx"), ("onnxruntime", "small.onnx")]


def test_good_signed_engine_reaches_the_engine_runtime(signed, signing_keys, loads):
    assert verify_model(signed / "fake.engine", signing_keys.public).files == ("fake.engine", "fake.engine.json")
    with pytest.raises(EngineReached):
        open_runtime(signed / "fake.engine", trusted_key=signing_keys.public)
    assert loads == [("engine", "fake.engine")]


def test_the_environment_names_the_trusted_key(tmp_path, signed, signing_keys, loads, monkeypatch):
    folder = models_from(signed, tmp_path)
    signature_path(folder / "single.onnx").unlink()
    monkeypatch.setenv(TRUSTED_KEY_ENV, str(signing_keys.public))
    with pytest.raises(SignatureError, match="it is not signed"):
        open_runtime(folder / "single.onnx", providers=["CPUExecutionProvider"])
    assert loads == []
    open_runtime(folder / "small.onnx", providers=["CPUExecutionProvider"])
    assert loads == [("onnxruntime", "small.onnx")]
    monkeypatch.setenv(TRUSTED_KEY_ENV, str(tmp_path / "nowhere.pem"))
    with pytest.raises(SignatureError, match="trusted key .*nowhere.pem does not exist"):
        open_runtime(folder / "small.onnx")


def test_sandboxed_load_verifies_first(tmp_path, signed, signing_keys):
    from alexnet_export.runtimes.untrusted import load_untrusted

    folder = models_from(signed, tmp_path)
    flip_byte(folder / "small.onnx", 100)
    with pytest.raises(SignatureError, match="small.onnx does not match its signature"):
        load_untrusted(folder / "small.onnx", trusted_key=signing_keys.public, timeout_s=1)  # no time to probe


def test_cli_refuses_tampered_models_in_one_line(cli, tmp_path, signed, signing_keys, photos, one_line_failure):
    folder = models_from(signed, tmp_path)
    flip_byte(folder / "small.onnx.data", 5000)
    line = one_line_failure(cli("predict", "small.onnx", photos[0], "--trusted-key", signing_keys.public, cwd=folder), alone=True)
    assert line == "Error: refused small.onnx: small.onnx.data does not match its signature (changed since it was signed)"
    line = one_line_failure(cli("verify-signature", "small.onnx", "--trusted-key", signing_keys.public, cwd=folder), alone=True)
    assert "refused small.onnx: small.onnx.data does not match its signature" in line
    line = one_line_failure(cli("predict", "single.onnx", photos[0], "--trusted-key", signing_keys.other_public,
                                 cwd=folder), alone=True)
    assert "refused single.onnx: single.onnx.sig does not verify with the trusted key other.pub.pem" in line


def test_cli_serve_refuses_an_unsigned_model_named_by_the_environment(console, tmp_path, small_onnx, signing_keys, one_line_failure):
    os.link(small_onnx, tmp_path / "alexnet.onnx")
    result = subprocess.run([console, "serve", "alexnet.onnx", "--port", "0"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, TRUSTED_KEY_ENV: str(signing_keys.public)})
    line = one_line_failure(result, alone=True)
    assert line == "Error: refused alexnet.onnx: it is not signed (no alexnet.onnx.sig beside it); expected a signature" \
                   " that verifies with owner.pub.pem"


def test_a_symbolic_link_is_refused(tmp_path, signed, signing_keys, loads):
    """The bytes behind it are the signed ones; a link could be pointed elsewhere after the check."""
    folder = models_from(signed, tmp_path)
    (folder / "small.onnx.data").unlink()
    (folder / "small.onnx.data").symlink_to(signed / "small.onnx.data")
    assert "small.onnx.data is a symbolic link" in refused(folder / "small.onnx", signing_keys.public)
    assert loads == []
