"""Which INT8 format should the CPU file use? Accuracy and speed of the candidates, in one run.

    python benchmarks/int8_formats.py CALIB_DIR [--count 128] [--rounds 10] [--threads 2]

Exports a seeded 1000-class model, calibrates once (percentile), writes each candidate from
the same ranges, compares logits with FP32 on held-out images and times all of them
interleaved round by round (ONNX Runtime spinning off) at batch 1 and 16.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
from onnxruntime.quantization import QuantFormat, QuantType

from alexnet_export.exporter.calibration.ranges import calibration_ranges, load_calibration_set
from alexnet_export.exporter.onnx.convert import export_onnx, tool_versions
from alexnet_export.exporter.onnx.quantize import _quantize, to_int8_cpu, to_int8_tensorrt
from alexnet_export.runtimes.verification.parity import compare_logits
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.models.spec import ArtifactMetadata, default_labels

U8S8 = dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
CANDIDATES = {
    "u8s8 qoperator": dict(quant_format=QuantFormat.QOperator, **U8S8),
    "u8s8 qdq reduce_range": dict(quant_format=QuantFormat.QDQ, reduce_range=True, **U8S8),
    "u8s8 qdq per-tensor": dict(quant_format=QuantFormat.QDQ, **{**U8S8, "per_channel": False}),
    "s8s8 qdq": dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                     per_channel=True, extra_options={"ActivationSymmetric": True}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("calib_dir", type=Path)
    parser.add_argument("--count", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        metadata = ArtifactMetadata(1000, default_labels(1000), "random init, seed 0", tool_versions=tool_versions())
        fp32 = export_onnx(seeded_alexnet(1000, 0), folder / "fp32.onnx", metadata, verify=False).path
        calibration = load_calibration_set(args.calib_dir, args.count, metadata.preprocessing)
        ranges = calibration_ranges(fp32, calibration, "percentile", folder / "cache")
        files = {"fp32": fp32, "int8-cpu (chosen)": folder / "cpu.onnx", "int8-tensorrt": folder / "trt.onnx"}
        to_int8_cpu(fp32, ranges, files["int8-cpu (chosen)"])
        to_int8_tensorrt(fp32, ranges, files["int8-tensorrt"])
        for name, settings in CANDIDATES.items():
            files[name] = folder / f"{name.replace(' ', '_')}.onnx"
            _quantize(fp32, ranges, files[name], "int8-cpu", **settings)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions = {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    for name, path in files.items()}
        held_out = calibration.holdout
        reference = sessions["fp32"].run(None, {"images": held_out})[0]
        print(f"{len(held_out)} held-out images, onnxruntime {ort.__version__}, {args.threads} threads")
        print(f"{'file':24s} {'cos mean':>9s} {'cos min':>8s} {'max err':>8s} {'b1 ms':>7s} {'b1 x':>5s} {'b16 img/s':>9s} {'b16 x':>5s}")
        speed = {size: _time(sessions, held_out[:size], args.rounds) for size in (1, 16)}
        for name, session in sessions.items():
            report = compare_logits(reference, session.run(None, {"images": held_out})[0])
            b1, b16 = speed[1][name], speed[16][name]
            print(f"{name:24s} {report.mean_cosine:9.5f} {report.min_cosine:8.5f} {report.max_abs:8.3f} "
                  f"{b1 * 1e3:7.1f} {speed[1]['fp32'] / b1:5.2f} {16 / b16:9.1f} {speed[16]['fp32'] / b16:5.2f}")


def _time(sessions, batch, rounds: int, warmup: int = 2) -> dict[str, float]:
    times = {name: [] for name in sessions}
    for index in range(warmup + rounds):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, {"images": batch})
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


if __name__ == "__main__":
    main()
