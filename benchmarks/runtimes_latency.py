"""Eager PyTorch vs ONNX Runtime latency on this machine, through the runtimes' own interface.

    python benchmarks/runtimes_latency.py [--batch-sizes 1,16] [--rounds 20] [--threads 2]

Exports a seeded 1000-class model to a temporary folder, then times both runtimes interleaved
round by round (so machine noise hits both alike) after a warm-up, and prints medians.
ONNX Runtime's worker threads spin after each run by default; with torch interleaved on few
cores that slows both, so spinning is turned off here.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from alexnet_export.exporter.onnx import export_onnx, tool_versions
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.models.spec import ArtifactMetadata, default_labels
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]

    model = seeded_alexnet(1000, seed=0)
    metadata = ArtifactMetadata(1000, default_labels(1000), "random init, seed 0", tool_versions=tool_versions())
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, Path(folder) / "alexnet.onnx", metadata, verify=False).path
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        runtimes = {
            "eager torch": TorchRuntime(model, threads=args.threads),
            "onnxruntime": OnnxRuntime(path, ["CPUExecutionProvider"], threads=args.threads, session_options=options),
        }
        rng = np.random.default_rng(0)
        print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} threads, "
              f"{args.rounds} rounds after {args.warmup} warm-up")
        for size in sizes:
            batch = rng.normal(size=(size, 3, 224, 224)).astype(np.float32)
            times = {name: [] for name in runtimes}
            for round_index in range(args.warmup + args.rounds):
                for name, runtime in runtimes.items():
                    start = time.perf_counter()
                    runtime.predict(batch)
                    if round_index >= args.warmup:
                        times[name].append(time.perf_counter() - start)
            medians = {name: statistics.median(values) for name, values in times.items()}
            for name, median in medians.items():
                print(f"batch {size:3d}  {name:12s}  {median * 1e3:8.1f} ms  {size / median:7.1f} images/s")
            print(f"batch {size:3d}  onnxruntime / eager speed-up: {medians['eager torch'] / medians['onnxruntime']:.2f}x")


if __name__ == "__main__":
    main()
