"""Shared fixtures. Exports are slow (seconds, ~200 MB), so each is made once per session."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SMALL_CLASSES = 10


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the long fuzz and soak tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="long run: pass --slow (CI runs the reduced version)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

# Real photographs shipped inside scikit-image's wheel (a test dependency), read straight from
# its package folder so nothing is fetched.
PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "hubble_deep_field.jpg", "retina.jpg", "brick.png", "grass.png", "gravel.png", "ihc.png",
    "camera.png", "coins.png", "page.png", "moon.png",
)


def photo_path(name: str) -> Path:
    return Path(str(files("skimage") / "data" / name))


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    paths = [photo_path(name) for name in PHOTOS]
    missing = [p for p in paths if not p.is_file()]
    assert not missing, f"scikit-image no longer ships {missing}"
    return paths


@pytest.fixture(scope="session")
def real_images(photos) -> list[np.ndarray]:
    """60 RGB uint8 images: four seeded random crops of each photograph."""
    rng = np.random.default_rng(7)
    crops = []
    for path in photos:
        image = np.asarray(Image.open(path).convert("RGB"))
        height, width = image.shape[:2]
        for _ in range(4):
            h, w = int(rng.integers(height // 3, height + 1)), int(rng.integers(width // 3, width + 1))
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            crops.append(np.ascontiguousarray(image[top : top + h, left : left + w]))
    return crops


@pytest.fixture(scope="session")
def small_model():
    from alexnet_export.models.alexnet import seeded_alexnet

    return seeded_alexnet(SMALL_CLASSES, seed=3)


@pytest.fixture(scope="session")
def small_metadata(small_model):
    from alexnet_export.exporter.onnx.convert import tool_versions
    from alexnet_export.models.spec import ArtifactMetadata, default_labels

    return ArtifactMetadata(SMALL_CLASSES, default_labels(SMALL_CLASSES), "random init, seed 3", tool_versions=tool_versions())


@pytest.fixture(scope="session")
def small_export(tmp_path_factory, small_model, small_metadata):
    """A verified dynamic-batch export of the 10-class model, made through the Python API."""
    from alexnet_export.exporter.onnx.convert import export_onnx

    path = tmp_path_factory.mktemp("small") / "small.onnx"
    return export_onnx(small_model, path, small_metadata)


@pytest.fixture(scope="session")
def small_onnx(small_export) -> Path:
    return small_export.path


@pytest.fixture(scope="session")
def onnx_runtime(small_onnx):
    from alexnet_export.runtimes import OnnxRuntime

    return OnnxRuntime(small_onnx, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def pixel_onnx(tmp_path_factory, small_onnx) -> Path:
    """small_onnx taking uint8 RGB pixels (batch, 224, 224, 3): what `onnx --input-format uint8` writes."""
    from alexnet_export.exporter.onnx.pixels import write_pixel_file

    path = tmp_path_factory.mktemp("pixels") / "small.uint8.onnx"
    write_pixel_file(small_onnx, path)
    return path


@pytest.fixture(scope="session")
def pixel_runtime(pixel_onnx):
    from alexnet_export.runtimes import OnnxRuntime

    return OnnxRuntime(pixel_onnx, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def torch_runtime(small_model):
    from alexnet_export.runtimes import TorchRuntime

    return TorchRuntime(small_model)


def console_script() -> str:
    """The installed `alexnet-export` entry point of the interpreter running the tests."""
    candidate = Path(sys.executable).parent / ("alexnet-export.exe" if os.name == "nt" else "alexnet-export")
    found = str(candidate) if candidate.exists() else shutil.which("alexnet-export")
    assert found, "the alexnet-export console script is not installed; pip install the project first"
    return found


def run_cli(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([console_script(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def console() -> str:
    return console_script()


def _one_line_error(result: subprocess.CompletedProcess, pattern: str, code: int = 1) -> None:
    """A CLI failure as users must see it: exit `code`, no traceback, the last stderr line matching `pattern`."""
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert re.search(pattern, lines[-1]), lines[-1]


@pytest.fixture(scope="session")
def one_line_error():
    return _one_line_error


def _one_line_failure(result: subprocess.CompletedProcess, alone: bool = False) -> str:
    """A CLI failure's error line, the last on stderr (exit 1, no traceback); `alone`: nothing else
    was printed (progress lines and native libraries' own logs come before it otherwise)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert not alone or len(lines) == 1, result.stderr
    return lines[-1]


@pytest.fixture(scope="session")
def one_line_failure():
    return _one_line_failure


@pytest.fixture(scope="session")
def cli():
    """Run the installed console script: cli("onnx", "--help", cwd=folder)."""
    return run_cli


def _predicts_and_verifies(fp32_path: Path, int8_path: Path, photos: list[Path], folder: Path) -> None:
    """`predict` names the top two classes with each file, and `verify` of the INT8 file on the
    photos against the FP32 one passes the INT8 gate: a new file kind works end to end in the CLI."""
    from alexnet_export.models.precisions import INT8_GATE

    for path in (fp32_path, int8_path):
        predicted = run_cli("predict", path, photos[0], "--top-k", "2", "--json")
        assert predicted.returncode == 0, predicted.stderr
        assert not predicted.stderr.strip(), predicted.stderr  # no runtime's log lines (LiteRT's INFO, ...)
        [answer] = json.loads(predicted.stdout)
        assert len(answer["predictions"]) == 2 and answer["predictions"][0]["label"].startswith("class_")
    folder.mkdir()
    for photo in photos:
        os.link(photo, folder / photo.name)
    verified = run_cli("verify", int8_path, "--images", folder, "--reference", fp32_path, "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["images"] == len(photos) and report["agreement"]["min_cosine"] > INT8_GATE.min_cosine


@pytest.fixture(scope="session")
def predicts_and_verifies():
    return _predicts_and_verifies


@pytest.fixture(scope="session")
def cli_default_export(tmp_path_factory):
    """`alexnet-export onnx` with every default, run as a user would, in an empty folder."""
    folder = tmp_path_factory.mktemp("cli_default")
    result = run_cli("onnx", cwd=folder)
    return folder, result


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory, real_images) -> Path:
    """An ImageFolder-style tree of 90 JPEG photo crops (class folders, nested)."""
    root = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(11)
    extra = []
    for image in real_images[:30]:  # 30 more crops, mirrored, so there are 90 in all
        extra.append(np.ascontiguousarray(image[:, ::-1]))
    for index, image in enumerate([*real_images, *extra]):
        folder = root / f"class_{index % 5}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"img_{index:03d}.jpg", quality=int(rng.integers(80, 95)))
    return root


@pytest.fixture(scope="session")
def calibration_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("calibration-cache")


# conv3's output channel 5 (weights and bias) times 300, conv4's weights on that input channel
# divided by 300: the same FP32 function (ReLU is positively homogeneous and no LRN follows
# conv3), but conv3's activation range is now one channel's, so per-tensor INT8 crushes the
# other 383 channels. The CPU INT8 export of this model fails its gate.
HARD_CHANNEL, HARD_FACTOR = 5, 300.0
CONV3, CONV4 = "features.8", "features.10"


def outlier_model(model, factor: float):
    """A copy of `model` with conv3's channel HARD_CHANNEL scaled by `factor` and conv4's weights on
    it divided by `factor`: the same FP32 function, one outlier channel for INT8 (see above)."""
    import copy

    import torch

    model = copy.deepcopy(model)
    conv3, conv4 = model.get_submodule(CONV3), model.get_submodule(CONV4)
    group_width = conv4.in_channels // conv4.groups
    group, within = divmod(HARD_CHANNEL, group_width)
    outputs = slice(group * conv4.out_channels // conv4.groups, (group + 1) * conv4.out_channels // conv4.groups)
    with torch.no_grad():
        conv3.weight[HARD_CHANNEL] *= factor
        conv3.bias[HARD_CHANNEL] *= factor
        conv4.weight[outputs, within] /= factor
    return model


@pytest.fixture(scope="session")
def make_outlier_model():
    """outlier_model(model, factor), for tests that need another factor than HARD_FACTOR's."""
    return outlier_model


@pytest.fixture(scope="session")
def hard_int8_checkpoint(tmp_path_factory, small_model) -> Path:
    """A .pt state dict of the 10-class model with one conv3 channel scaled up (see above)."""
    import torch

    path = tmp_path_factory.mktemp("hard") / "hard.pt"
    torch.save(outlier_model(small_model, HARD_FACTOR).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def hard_fp32_onnx(tmp_path_factory, hard_int8_checkpoint) -> Path:
    """The verified FP32 export of the hard checkpoint (its INT8 files fail their gate)."""
    from alexnet_export.exporter.pipeline import ModelSource, export_onnx_file

    path = tmp_path_factory.mktemp("hard-fp32") / "hard.onnx"
    return export_onnx_file(path, ModelSource(weights=hard_int8_checkpoint)).path


# TensorRT engines, built once per session by TensorRT for RTX: ahead of time on the CPU, no GPU
# needed (the `tensorrt-rtx` extra). A small profile (batch 1..4) keeps the five builds to seconds.
ENGINE_BATCH = (1, 2, 4)
KEPT_FLOAT = ("conv1", "fc8")  # the first layer, which reads the input, and the last, which writes the logits


@pytest.fixture(scope="session")
def precision_onnx(tmp_path_factory, small_onnx, calib_dir, calibration_cache) -> dict[str, Path]:
    """The exporter's verified FP16, INT8 (TensorRT's Q/DQ) and keep-float INT8 files of the 10-class model."""
    from alexnet_export.exporter.pipeline import make_precision_file
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    folder = tmp_path_factory.mktemp("precision-onnx")
    calibration = CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache)
    made = {"fp16": make_precision_file(small_onnx, "fp16", folder / "small.fp16.onnx").path}
    made["int8"] = make_precision_file(small_onnx, "int8-tensorrt", folder / "small.int8-tensorrt.onnx",
                                       calibration=calibration).path
    made["int8-kept"] = make_precision_file(small_onnx, "int8-tensorrt", folder / "small.kept.int8-tensorrt.onnx",
                                            calibration=calibration, keep_float=KEPT_FLOAT).path
    return made


@pytest.fixture(scope="session")
def int8_cpu_onnx(tmp_path_factory, small_onnx, calib_dir, calibration_cache) -> Path:
    """The exporter's verified INT8 CPU file (`onnx --precision int8`) of the 10-class model."""
    from alexnet_export.exporter.pipeline import make_precision_file
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    folder = tmp_path_factory.mktemp("int8-cpu-onnx")
    return make_precision_file(small_onnx, "int8-cpu", folder / "small.int8-cpu.onnx",
                               calibration=CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache)).path


def import_rtx():
    """TensorRT for RTX's module, or a skip that says how to get it."""
    from alexnet_export.runtimes.tensorrt.support import TENSORRT_RTX, TensorRTUnavailable, import_builder

    try:
        return import_builder(TENSORRT_RTX)
    except TensorRTUnavailable as exc:
        pytest.skip(f"no engine builder: {exc}")


@pytest.fixture(scope="session")
def rtx():
    return import_rtx()


@pytest.fixture(scope="session")
def trt_engines(rtx, tmp_path_factory, small_onnx, pixel_onnx, precision_onnx) -> dict:
    """EngineResults by kind (fp32, fp16, int8, int8-kept, pixels), each built once, with its sidecar."""
    from alexnet_export.exporter.tensorrt.convert import build_engine
    from alexnet_export.exporter.tensorrt.settings import BuildSettings

    folder = tmp_path_factory.mktemp("engines")
    sources = {"fp32": small_onnx, **precision_onnx, "pixels": pixel_onnx}
    settings = BuildSettings(*ENGINE_BATCH, builder="tensorrt-rtx")
    return {kind: build_engine(source, folder / f"small.{kind}.engine", settings=settings)
            for kind, source in sources.items()}


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory):
    """Two elliptic-curve (prime256v1) key pairs as PEM files, the owner's and another's, and a CA
    certificate with a code-signing certificate for the owner's key (made here, no network)."""
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("keys")

    def key_pair(name):
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{name}.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (folder / f"{name}.pub.pem").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return key

    def certificate(name, subject_key, issuer_name, issuer_key, ca):
        now = datetime.now(timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
                   .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True))
        cert = builder.sign(issuer_key, hashes.SHA256())
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert

    owner = key_pair("owner")
    key_pair("other")
    ca_key, other_ca_key = key_pair("ca"), key_pair("other-ca")
    ca = certificate("ca", ca_key, None, ca_key, ca=True)
    certificate("other-ca", other_ca_key, None, other_ca_key, ca=True)
    certificate("owner", owner, ca.subject, ca_key, ca=False)
    return SimpleNamespace(
        private=folder / "owner.pem", public=folder / "owner.pub.pem",
        other_private=folder / "other.pem", other_public=folder / "other.pub.pem",
        certificate=folder / "owner.crt", ca=folder / "ca.crt", other_ca=folder / "other-ca.crt")


@pytest.fixture(scope="session")
def external_data_onnx(tmp_path_factory, small_onnx) -> Path:
    """small_onnx with its weights in an external file, small.onnx.data (the registry's companion name)."""
    import onnx

    path = tmp_path_factory.mktemp("external") / "small.onnx"
    onnx.save_model(onnx.load(str(small_onnx)), str(path), save_as_external_data=True, location="small.onnx.data")
    return path


class ServerProcess:
    """`alexnet-export serve MODEL --port 0 ...` in a subprocess; its stderr is collected in a thread."""

    def __init__(self, console, model, *options, startup_timeout=60):
        self.process = subprocess.Popen([console, "serve", str(model), "--port", "0", *map(str, options)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + startup_timeout
        self.port = None
        while self.port is None:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start: {''.join(self.log)}")
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            self.port = int(found.group(1)) if found else None
        self.address = f"127.0.0.1:{self.port}"

    def _read(self):
        for line in self.process.stderr:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def stop(self, timeout=30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, body bytes) of one request on a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stats(self) -> dict:
        status, _, body = self.request("GET", "/v2/models/alexnet/stats")
        assert status == 200
        return json.loads(body)["model_stats"][0]


@pytest.fixture(scope="session")
def server_process():
    """ServerProcess: `alexnet-export serve` in a subprocess, for tests that start their own."""
    return ServerProcess


# LiteRT files (`litert` extra), one per precision, exported once per session: tests/litert and the
# aarch64 check (tests/edge) share them.
LITERT_EXPORT_SECONDS = {}  # printed at the end of the session


def _export_litert(folder: Path, name: str, **options):
    pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install '.[litert]')")
    from alexnet_export.exporter.pipeline import ModelSource, export_litert

    started = time.perf_counter()
    result = export_litert(folder / name, ModelSource(num_classes=SMALL_CLASSES, seed=3), **options)
    LITERT_EXPORT_SECONDS[options.get("precision", "fp32")] = time.perf_counter() - started
    return result


@pytest.fixture(scope="session")
def fp32_tflite(tmp_path_factory):
    """The exporter's FP32 .tflite of the 10-class model (batch 1, NHWC input), with its sidecar."""
    return _export_litert(tmp_path_factory.mktemp("tflite"), "small.tflite")


@pytest.fixture(scope="session")
def fp16_tflite(tmp_path_factory):
    return _export_litert(tmp_path_factory.mktemp("tflite16"), "small.fp16.tflite", precision="fp16")


@pytest.fixture(scope="session")
def int8_tflite(tmp_path_factory, calib_dir):
    """The exporter's INT8 .tflite, calibrated on 64 images of calib_dir and verified on the rest."""
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    return _export_litert(tmp_path_factory.mktemp("tflite8"), "small.int8.tflite", precision="int8-litert",
                          calibration=CalibrationOptions(calib_dir, 64))


# ExecuTorch programs (`executorch` extra): one FP32 and one INT8 export of the 10-class model, once per
# session, shared by tests/executorch and the aarch64 check (tests/edge). Each lowers a ~180 MB (FP32) or
# ~45 MB (INT8) program; the batch range is kept small (PTE_MAX_BATCH) since ExecuTorch plans memory
# for the largest batch.
PTE_MAX_BATCH = 8
PTE_EXPORT_SECONDS = {}  # printed at the end of the session


def _export_pte(folder: Path, name: str, **options):
    pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed (pip install '.[executorch]')")
    from alexnet_export.exporter.pipeline import ModelSource, export_executorch

    started = time.perf_counter()
    result = export_executorch(folder / name, ModelSource(num_classes=SMALL_CLASSES, seed=3), max_batch=PTE_MAX_BATCH,
                               **options)
    PTE_EXPORT_SECONDS[options.get("precision", "fp32")] = time.perf_counter() - started
    return result


@pytest.fixture(scope="session")
def fp32_pte(tmp_path_factory):
    return _export_pte(tmp_path_factory.mktemp("pte"), "small.pte")


@pytest.fixture(scope="session")
def int8_pte(tmp_path_factory, calib_dir):
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    return _export_pte(tmp_path_factory.mktemp("pte8"), "small.int8.pte", precision="int8-executorch",
                       calibration=CalibrationOptions(calib_dir, 64))


def pytest_terminal_summary(terminalreporter):
    for kind, seconds in (("LiteRT", LITERT_EXPORT_SECONDS), ("ExecuTorch", PTE_EXPORT_SECONDS)):
        if seconds:
            terminalreporter.write_line(f"{kind} shared exports: " + ", ".join(
                f"{name} {time:.1f}s" for name, time in seconds.items()))


@pytest.fixture(scope="session")
def int8_ncnn(tmp_path_factory, calib_dir, calibration_cache):
    """The exporter's INT8 ncnn pair of the 10-class model, calibrated on 64 images of calib_dir (ranges in
    the session's cache); shared by tests/ncnn and the aarch64 check (tests/edge)."""
    pytest.importorskip("ncnn", reason="ncnn is not installed (pip install '.[ncnn]')")
    from alexnet_export.exporter.calibration.images import CalibrationOptions
    from alexnet_export.exporter.pipeline import ModelSource, export_ncnn

    return export_ncnn(tmp_path_factory.mktemp("ncnn8") / "small.int8.ncnn.param",
                       ModelSource(num_classes=SMALL_CLASSES, seed=3), precision="int8-ncnn", threads=2,
                       calibration=CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache))
