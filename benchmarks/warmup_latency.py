"""First-request latency of `alexnet-export serve`, with and without its warm-up.

Starts the server (the console script, a free loopback port) on MODEL, waits until
/v2/health/ready answers 200, then times, on fresh connections: the first request (1 image), the
second (1 image) and the first of --max-batch images. Runs alternate with and without
--no-warmup, so both see the same machine. Run:
    .venv/bin/python benchmarks/warmup_latency.py [MODEL.onnx] [--runs 3]
Without MODEL it exports the seeded 1000-class AlexNet (unverified) to a temporary folder.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

MAX_BATCH = 32


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    name = re.search(r"model name\s*:\s*(.+)", info).group(1).strip()
    flags = set(re.search(r"flags\s*:\s*(.+)", info).group(1).split())
    simd = [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if flag in flags]
    return f"{name}, {len(re.findall('^processor', info, re.M))} CPUs, {' '.join(simd) or 'no AVX2/AVX-512'}"


def infer(port: int, count: int) -> float:
    """Seconds for one binary KServe v2 request of `count` random images."""
    images = np.random.default_rng(count).standard_normal((count, 3, 224, 224), dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "images", "datatype": "FP32", "shape": list(images.shape),
                                     "parameters": {"binary_data_size": images.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/v2/models/alexnet/infer", header + images.tobytes(),
                       {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 200, response.status
    return time.perf_counter() - started


def one_run(model: Path, warmup: bool) -> dict[str, float]:
    console = shutil.which("alexnet-export") or str(Path(__file__).resolve().parents[1] / ".venv/bin/alexnet-export")
    options = [] if warmup else ["--no-warmup"]
    started = time.perf_counter()
    process = subprocess.Popen([console, "serve", str(model), "--port", "0", "--max-batch", str(MAX_BATCH), *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        while port is None:
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", process.stderr.readline())
            port = int(found.group(1)) if found else None
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                connection.request("GET", "/v2/health/ready")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        ready = time.perf_counter() - started
        return {"ready_s": ready, "first_ms": infer(port, 1) * 1e3, "second_ms": infer(port, 1) * 1e3,
                f"first_batch{MAX_BATCH}_ms": infer(port, MAX_BATCH) * 1e3,
                f"second_batch{MAX_BATCH}_ms": infer(port, MAX_BATCH) * 1e3}
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            from alexnet_export.exporter.pipeline import export_onnx_file

            model = export_onnx_file(Path(folder) / "alexnet.onnx", verify=False).path
        results = {True: [], False: []}
        for _ in range(args.runs):
            for warmup in (False, True):
                results[warmup].append(one_run(model, warmup))
    print(f"{model.name}, serve --max-batch {MAX_BATCH}; CPU: {cpu()}; median of {args.runs} runs")
    keys = list(results[True][0])
    print(f"{'':12}" + "".join(f"{key:>20}" for key in keys))
    for warmup, rows in results.items():
        medians = [statistics.median(row[key] for row in rows) for key in keys]
        print(f"{'warm-up' if warmup else 'no warm-up':12}" + "".join(f"{value:20.1f}" for value in medians))


if __name__ == "__main__":
    main()
