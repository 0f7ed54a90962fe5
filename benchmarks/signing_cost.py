"""What signing costs: time to sign and to verify each of the toolkit's files, and what
`serve --trusted-key` adds to the server's start.

For each file: `sign_model` and `verify_model` (runtimes/signing/sign.py: SHA-256 of the model and its
companions through model-signing, an ECDSA P-256 signature), median of --repeats calls in one
process after a first untimed one, so model-signing's import is not in them and the files are in
the page cache (the usual case right after an export or a copy). The import of model-signing's
verifier, which a fresh process pays once, is timed apart in fresh interpreters. Then `serve`
on the FP32 file is started --runs times with and without --trusted-key, alternating, and timed
from launch until /v2/health/ready answers 200 (warm-up included). Run:
    .venv/bin/python benchmarks/signing_cost.py [MODEL ...] [--repeats 5] [--runs 3]
Without MODEL it exports the seeded 1000-class AlexNet to a temporary folder as FP32 (unverified),
FP16 and INT8 (CPU format, calibrated on 64 synthetic images) and measures those.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    name = re.search(r"model name\s*:\s*(.+)", info).group(1).strip()
    flags = set(re.search(r"flags\s*:\s*(.+)", info).group(1).split())
    simd = [flag for flag in ("sha_ni", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if flag in flags]
    return f"{name}, {len(re.findall('^processor', info, re.M))} CPUs, {' '.join(simd) or 'no SHA-NI/AVX2'}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def make_files(folder: Path) -> list[Path]:
    from PIL import Image

    from alexnet_export.exporter.pipeline import export_onnx_file, make_precision_file
    from alexnet_export.runtimes.verification.samples import synthetic_images
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    fp32 = export_onnx_file(folder / "alexnet.onnx", verify=False).path
    fp16 = make_precision_file(fp32, "fp16").path
    images = folder / "calibration"
    images.mkdir()
    for index, image in enumerate(synthetic_images(64 + 16, seed=5)):
        Image.fromarray(image).save(images / f"{index:03d}.png")
    int8 = make_precision_file(fp32, "int8-cpu", calibration=CalibrationOptions(images, 64, cache_dir=folder)).path
    return [fp32, fp16, int8]


def make_keys(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())  # what `openssl ecparam -name prime256v1` makes
    private, public = folder / "private.pem", folder / "public.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def median_seconds(call, repeats: int) -> float:
    call()  # untimed: imports, first touch
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_seconds(repeats: int) -> float:
    code = "import time; t = time.perf_counter(); import model_signing.verifying; print(time.perf_counter() - t)"
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(repeats))


def serve_ready_seconds(model: Path, trusted_key: Path | None) -> float:
    console = shutil.which("alexnet-export") or str(Path(sys.executable).parent / "alexnet-export")
    options = ["--trusted-key", str(trusted_key)] if trusted_key else []
    env = {key: value for key, value in os.environ.items() if key != "ALEXNET_EXPORT_TRUSTED_KEY"}
    started = time.perf_counter()
    process = subprocess.Popen([console, "serve", str(model), "--port", "0", *options], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        while port is None:
            line = process.stderr.readline()
            if not line:
                raise RuntimeError(f"serve exited: {process.wait()}")
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request("GET", "/v2/health/ready")
                if connection.getresponse().status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from alexnet_export.runtimes.table import backend_for
    from alexnet_export.runtimes.signing import sign_model, verify_model

    print(f"CPU: {cpu()}; load average before: {load()}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        private, public = make_keys(folder)
        models = args.models or make_files(folder)
        print(f"{'file':28} {'MB':>7} {'sign s':>8} {'verify s':>9} {'MB/s verify':>12}")
        for model in models:
            size = sum(path.stat().st_size for path in backend_for(model).files(model)) / 1e6
            signing = median_seconds(lambda: sign_model(model, private), args.repeats)
            verifying = median_seconds(lambda: verify_model(model, public), args.repeats)
            print(f"{model.name:28} {size:7.1f} {signing:8.3f} {verifying:9.3f} {size / verifying:12.0f}")
        print(f"importing model-signing's verifier in a fresh process: {import_seconds(args.repeats):.3f} s (median)")
        ready = {False: [], True: []}
        for _ in range(args.runs):
            for trusted in (False, True):
                ready[trusted].append(serve_ready_seconds(models[0], public if trusted else None))
        plain, verified = statistics.median(ready[False]), statistics.median(ready[True])
        print(f"serve {models[0].name} until ready (warm-up included), median of {args.runs}: {plain:.2f} s without,"
              f" {verified:.2f} s with --trusted-key (+{verified - plain:.2f} s)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
