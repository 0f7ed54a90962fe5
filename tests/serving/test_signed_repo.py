"""Signed models in a Triton repository and behind `serve`: `triton` copies each signed model under
its own names with its companions and signature, `verify-signature REPO` checks every one, and
`serve --trusted-key` serves only a model whose signature verifies."""

import json
import os
import re
import time

import pytest
from google.protobuf import text_format

from alexnet_export.runtimes.signing import sign_model, verify_tree
from alexnet_export.runtimes.tensorrt.sidecar import sidecar_path
from alexnet_export.serving.triton_repo import ServingOptions, add_engine, add_onnx


@pytest.fixture
def signed_models(tmp_path, small_onnx, external_data_onnx, signing_keys):
    """small.onnx + small.onnx.data and a (fake) engine + sidecar, signed; unsigned.onnx beside them."""
    folder = tmp_path / "models"
    folder.mkdir()
    for path in (external_data_onnx, external_data_onnx.with_name("small.onnx.data")):
        os.link(path, folder / path.name)
    os.link(small_onnx, folder / "unsigned.onnx")
    engine = folder / "alexnet.engine"
    engine.write_bytes(b"engine bytes")
    sidecar_path(engine).write_text(json.dumps({
        "tensorrt_version": "10.13.0", "gpu_name": "NVIDIA H200", "compute_capability": "9.0", "precision": "fp16",
        "batch": {"min": 1, "opt": 8, "max": 32}, "metadata": {"alexnet_export.num_classes": "10"}}))
    for model in ("small.onnx", "alexnet.engine"):
        sign_model(folder / model, signing_keys.private)
    return folder


def test_triton_copies_signed_models_with_their_names(tmp_path, signed_models, signing_keys, model_config_pb2):
    repo = tmp_path / "repo"
    onnx_entry = add_onnx(repo, signed_models / "small.onnx", ServingOptions())
    engine_entry = add_engine(repo, signed_models / "alexnet.engine", ServingOptions(kind="gpu"))
    assert sorted(p.name for p in (onnx_entry.folder / "1").iterdir()) == ["small.onnx", "small.onnx.data",
                                                                         "small.onnx.sig"]
    assert sorted(p.name for p in (engine_entry.folder / "1").iterdir()) == ["alexnet.engine", "alexnet.engine.json",
                                                                           "alexnet.engine.sig"]
    for entry, file_name in ((onnx_entry, "small.onnx"), (engine_entry, "alexnet.engine")):
        config = text_format.Parse((entry.folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert config.default_model_filename == file_name  # Triton loads the signed name, not model.onnx/model.plan
    result = verify_tree(repo, signing_keys.public)
    assert sorted(check.model.name for check in result.verified) == ["alexnet.engine", "small.onnx"]
    assert result.refused == ()


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.unlink()
    path.write_bytes(bytes(data))


def test_verify_signature_checks_a_whole_repository(cli, tmp_path, signed_models, signing_keys):
    repo = tmp_path / "repo"
    assert cli("triton", "--repo", repo, "--onnx", signed_models / "small.onnx",
               "--engine", signed_models / "alexnet.engine", "--kind", "gpu").returncode == 0
    good = cli("verify-signature", repo, "--trusted-key", signing_keys.public)
    assert good.returncode == 0, good.stderr
    assert [re.sub(r" \(\d+\.\d\ds\)$", "", line) for line in good.stdout.splitlines()] == [
        f"verified {repo / 'alexnet_trt' / '1' / 'alexnet.engine'} and alexnet.engine.json",
        f"verified {repo / 'small' / '1' / 'small.onnx'} and small.onnx.data"]
    _flip(repo / "small" / "1" / "small.onnx.data", 123)
    assert cli("triton", "--repo", repo, "--onnx", signed_models / "unsigned.onnx").returncode == 0
    bad = cli("verify-signature", repo, "--trusted-key", signing_keys.public)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines() == [
        f"refused {repo / 'small' / '1' / 'small.onnx'}: small.onnx.data does not match its signature (changed since"
        " it was signed)",
        f"refused {repo / 'unsigned' / '1' / 'model.onnx'}: it is not signed (no model.onnx.sig beside it); expected a"
        " signature that verifies with owner.pub.pem",
        f"Error: 2 of 3 models under {repo} refused"]


def test_serve_with_a_trusted_key_serves_a_signed_model(console, server_process, signed_models, signing_keys, photos):
    server = server_process(console, signed_models / "small.onnx", "--no-warmup", "--trusted-key", signing_keys.public)
    try:
        deadline = time.monotonic() + 30  # ready once the lifespan has started (no warm-up here)
        while server.request("GET", "/v2/health/ready")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, body = server.request("POST", "/v2/models/alexnet/classify?top_k=1", photos[0].read_bytes(),
                                         {"Content-Type": "image/png"})
        assert status == 200 and len(json.loads(body)["predictions"]) == 1
    finally:
        server.stop(timeout=60)
