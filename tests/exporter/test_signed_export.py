"""Exports that sign as they write (sign_key=): the signature is put in place in the same step as
the file, first, and a failure leaves the old file with its old signature."""

import errno
import importlib.util
import os
import shutil

import numpy as np
import pytest

from alexnet_export.errors import ExportError
from alexnet_export.atomic import atomic_output
from alexnet_export.exporter.pipeline import ModelSource, build_tensorrt_engine, export_onnx_file, make_precision_file
from alexnet_export.runtimes.registry import open_runtime
from alexnet_export.runtimes.signing import SignatureError, signature_path, signed_outputs, verify_model
from alexnet_export.runtimes.tensorrt.support import TensorRTUnavailable

HAS_BUILDER = any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings"))


@pytest.fixture(scope="module")
def signed_fp16(tmp_path_factory, small_onnx, signing_keys):
    """An FP16 file exported with sign_key, and the renames that put it in place."""
    folder = tmp_path_factory.mktemp("signed-fp16")
    done, real = [], os.replace

    def replace(source, target):
        real(source, target)
        done.append(os.path.basename(target))

    os.replace = replace
    try:
        result = make_precision_file(small_onnx, "fp16", folder / "m.fp16.onnx", sign_key=signing_keys.private)
    finally:
        os.replace = real
    return result.path, done


def test_the_signature_goes_in_place_first_in_the_same_step(signed_fp16, signing_keys):
    path, done = signed_fp16
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.fp16.onnx", "m.fp16.onnx.sig"]
    assert done[-2:] == ["m.fp16.onnx.sig", "m.fp16.onnx"]
    assert verify_model(path, signing_keys.public).files == ("m.fp16.onnx",)
    assert open_runtime(path, trusted_key=signing_keys.public).precision == "fp16"


def test_fp32_export_signs_its_default_file(tmp_path, monkeypatch, signing_keys):
    monkeypatch.chdir(tmp_path)
    result = export_onnx_file(source=ModelSource(num_classes=10, seed=3), verify=False, sign_key=signing_keys.private)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alexnet.onnx", "alexnet.onnx.sig"]
    assert verify_model(result.path, signing_keys.public).files == ("alexnet.onnx",)


def _snapshot(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_a_failed_signing_keeps_the_old_file_and_its_signature(tmp_path, signed_fp16, small_onnx, signing_keys,
                                                               monkeypatch):
    shutil.copy(signed_fp16[0], tmp_path / "m.fp16.onnx")
    shutil.copy(signature_path(signed_fp16[0]), tmp_path / "m.fp16.onnx.sig")
    before = _snapshot(tmp_path)
    import model_signing.signing

    def disk_full(self, model_path, signature_path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_signing.signing.Config, "sign", disk_full)
    with pytest.raises(SignatureError, match=r"signing .*m.fp16.onnx failed: \[Errno 28\] No space left on device"):
        make_precision_file(small_onnx, "fp16", tmp_path / "m.fp16.onnx", sign_key=signing_keys.private)
    assert _snapshot(tmp_path) == before  # nothing partial, no scratch, the old pair as it was
    assert verify_model(tmp_path / "m.fp16.onnx", signing_keys.public)


def test_a_failed_rename_puts_the_old_signature_back(tmp_path, signing_keys, monkeypatch):
    model = tmp_path / "m.pt"
    with signed_outputs(signing_keys.private, tmp_path), atomic_output(model) as temporary:
        temporary.write_bytes(b"good weights")
    before = _snapshot(tmp_path)
    real = os.replace

    def replace(source, target):  # the disk fails on the model's own rename, after its signature went in
        if os.path.basename(target) == "m.pt":
            raise OSError(errno.EIO, "Input/output error")
        real(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ExportError, match=r"cannot write .*m.pt: Input/output error; nothing was written"):
        with signed_outputs(signing_keys.private, tmp_path), atomic_output(model) as temporary:
            temporary.write_bytes(b"new weights")
    monkeypatch.setattr(os, "replace", real)
    assert _snapshot(tmp_path) == before
    assert verify_model(model, signing_keys.public).files == ("m.pt",)


@pytest.mark.parametrize("key", ["missing.pem", "garbage.pem"])
def test_a_bad_key_fails_before_any_work(tmp_path, small_onnx, key):
    (tmp_path / "garbage.pem").write_text("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n")
    with pytest.raises(SignatureError) as caught:
        make_precision_file(small_onnx, "fp16", tmp_path / "out" / "m.fp16.onnx", sign_key=tmp_path / key)
    assert caught.value.argument == "sign_key"  # before the output folder (which does not exist) was looked at
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.pem"]


def test_an_engine_and_its_sidecar_are_signed_as_each_goes_in(tmp_path, signing_keys):
    """An engine's two files go in one after the other (exporter/tensorrt/convert.py: the old sidecar is
    removed, the engine written, then its sidecar): each step's signature covers what is new,
    never the old sidecar, which is refused until the new one replaces it."""
    engine, sidecar = tmp_path / "m.engine", tmp_path / "m.engine.json"
    engine.write_bytes(b"old engine")
    sidecar.write_text('{"old": true}')
    with signed_outputs(signing_keys.private, tmp_path):
        with atomic_output(engine) as temporary:
            temporary.write_bytes(b"new engine")
        with pytest.raises(SignatureError, match="m.engine.json is not covered by its signature"):
            verify_model(engine, signing_keys.public)  # the old sidecar is not blessed with the new engine
        with atomic_output(sidecar) as temporary:
            temporary.write_text('{"new": true}')
    assert verify_model(engine, signing_keys.public).files == ("m.engine", "m.engine.json")
    with atomic_output(engine) as temporary:  # outside signed_outputs: no signing
        temporary.write_bytes(b"unsigned rebuild")
    with pytest.raises(SignatureError, match="m.engine does not match its signature"):
        verify_model(engine, signing_keys.public)


def test_only_model_files_in_the_named_folder_are_signed(tmp_path, signing_keys):
    """Scratch files in a subfolder and other outputs are not signed; and a call asked to sign
    that signed nothing says so instead of returning as if it had."""
    (tmp_path / "scratch").mkdir()
    with pytest.raises(SignatureError, match="asked to sign, but no model file was put in place"):
        with signed_outputs(signing_keys.private, tmp_path):
            for path in (tmp_path / "scratch" / "fp32.onnx", tmp_path / "m.timing.cache"):
                with atomic_output(path) as temporary:
                    temporary.write_bytes(b"x")
    assert not list(tmp_path.rglob("*.sig"))


def test_engine_pipeline_signs_the_engine_with_its_sidecar_and_the_onnx_it_keeps(tmp_path, small_onnx, signing_keys,
                                                                                 rtx):
    """Built ahead of time by TensorRT for RTX (no GPU needed): every file put in place is signed."""
    shutil.copy(small_onnx, tmp_path / "model.onnx")
    build_tensorrt_engine(tmp_path / "m.engine", fp32_onnx=tmp_path / "model.onnx", precision="fp16",
                          sign_key=signing_keys.private)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json", "m.engine.sig", "m.fp16.onnx",
                                                           "m.fp16.onnx.sig", "model.onnx"]
    assert verify_model(tmp_path / "m.engine", signing_keys.public).files == ("m.engine", "m.engine.json")
    assert verify_model(tmp_path / "m.fp16.onnx", signing_keys.public)


@pytest.mark.skipif(HAS_BUILDER, reason="an engine builder is installed here (the test above builds and signs)")
def test_engine_pipeline_without_tensorrt_signs_the_onnx_it_keeps(tmp_path, small_onnx, signing_keys):
    shutil.copy(small_onnx, tmp_path / "model.onnx")
    with pytest.raises(TensorRTUnavailable):
        build_tensorrt_engine(tmp_path / "m.engine", fp32_onnx=tmp_path / "model.onnx", precision="fp16",
                              sign_key=signing_keys.private)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fp16.onnx", "m.fp16.onnx.sig", "model.onnx"]
    assert verify_model(tmp_path / "m.fp16.onnx", signing_keys.public)


def test_openvino_ir_is_signed_with_its_bin(tmp_path, small_onnx, signing_keys, onnx_runtime):
    pytest.importorskip("openvino", reason="needs the openvino extra")
    from alexnet_export.exporter.pipeline import export_openvino_ir

    result = export_openvino_ir(tmp_path / "m.xml", fp32_onnx=small_onnx, sign_key=signing_keys.private)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml", "m.xml.sig"]
    assert verify_model(result.path, signing_keys.public).files == ("m.xml", "m.bin")
    batch = np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32)
    runtime = open_runtime(result.path, trusted_key=signing_keys.public)
    np.testing.assert_allclose(runtime.predict(batch), onnx_runtime.predict(batch), rtol=1e-3, atol=1e-3)
    data = bytearray((tmp_path / "m.bin").read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "m.bin").write_bytes(bytes(data))
    with pytest.raises(SignatureError, match=r"refused .*m.xml: m.bin does not match its signature"):
        open_runtime(result.path, trusted_key=signing_keys.public)
