"""Accuracy of FP32, FP16 and INT8 side by side on real labelled images, with one command:

    python benchmarks/accuracy.py [--work benchmarks/work/accuracy] [--out benchmarks/results] [--epochs 16]

1. Writes scikit-learn's bundled handwritten digits as an ImageFolder: train / calib / test,
   stratified and disjoint (benchmarks/digits.py).
2. Trains the seed AlexNet (10 classes) on the train split on the CPU and saves the state dict
   (benchmarks/train.py; reused on a re-run unless --retrain).
3. Drives the CLI as a user would: `alexnet-export onnx` FP32, `--precision fp16`, `int8` (CPU
   file) and `int8-tensorrt` (the Q/DQ file TensorRT builds from), the OpenVINO IRs and the
   ExecuTorch programs (`executorch`, FP32 and INT8) and the LiteRT models (`litert`, FP32, FP16 and
   INT8), INT8 calibrated with the toolkit's
   defaults on the calib split; then `alexnet-export verify` on the test split for each
   file against the checkpoint, and for the checkpoint itself (eager FP32).
4. Sweeps INT8 calibration method x calibration set size through the library, both INT8 files.
5. Per-layer error of each INT8 file against FP32 on test images (conv1..fc8): where the error comes from.

Writes OUT/accuracy.md and OUT/accuracy.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits import CLASS_NAMES, SPLIT_SEED, write_digits, write_labels
from reproduce import run

SPLITS = {"test": 40, "calib": 52}  # images per class; train gets the remaining ~88 per class
SWEEP_METHODS = ("minmax", "entropy", "percentile")
SWEEP_SIZES = (32, 128, 512)
FILES = {  # row name -> (file name, command, its --precision)
    "ONNX FP32": ("digits.onnx", "onnx", "fp32"),
    "ONNX FP16": ("digits.fp16.onnx", "onnx", "fp16"),
    "INT8, CPU file": ("digits.int8.onnx", "onnx", "int8"),
    "INT8, TensorRT Q/DQ file (run by ONNX Runtime)": ("digits.int8-tensorrt.onnx", "onnx", "int8-tensorrt"),
    "OpenVINO FP32 IR": ("digits.xml", "openvino", "fp32"),
    "OpenVINO BF16 IR": ("digits.bf16.xml", "openvino", "bf16"),
    "OpenVINO INT8 IR": ("digits.int8.xml", "openvino", "int8"),
    "ExecuTorch FP32 .pte (XNNPACK)": ("digits.pte", "executorch", "fp32"),
    "ExecuTorch INT8 .pte (XNNPACK, PT2E)": ("digits.int8.pte", "executorch", "int8"),
    "LiteRT FP32 .tflite": ("digits.tflite", "litert", "fp32"),
    "LiteRT FP16 .tflite (FP16 weights)": ("digits.fp16.tflite", "litert", "fp16"),
    "LiteRT INT8 .tflite (PT2E)": ("digits.int8.tflite", "litert", "int8"),
}
# The commands whose INT8 calibrates with PT2E's own observers: they take the images, not ONNX Runtime's range
# cache (and verify their FP16 on the held-out ones).
PT2E_COMMANDS = ("executorch", "litert")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/accuracy"), help="Data, checkpoint, models.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="Where accuracy.md/json go.")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--retrain", action="store_true", help="Train again even when the checkpoint exists.")
    args = parser.parse_args()
    started = time.perf_counter()
    work, out = args.work, args.out
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    print("writing the digits as an ImageFolder", flush=True)
    splits = write_digits(work / "data", SPLITS)
    labels = write_labels(work / "labels.txt")
    checkpoint = work / "digits-alexnet.pt"
    training = train_or_reuse(splits, checkpoint, args)

    cli = str(Path(sys.executable).parent / "alexnet-export")
    common = ["--weights", str(checkpoint), "--labels", str(labels)]
    calib_images = ["--calib-dir", str(splits.folder("calib"))]
    calib = [*calib_images, "--cache-dir", str(work / "cache")]
    made = {}
    for name, (file_name, command, precision) in FILES.items():
        if precision == "bf16" and not cpu_has_bf16():
            print(f"skipping {name}: this CPU has no BF16", flush=True)
            continue
        extra = [] if precision == "fp32" else calib_images if command in PT2E_COMMANDS else calib
        run([cli, command, *common, "--precision", precision, *extra, "-o", str(work / file_name)])
        made[name] = work / file_name

    test = splits.folder("test")
    rows = {"eager PyTorch FP32": verify(cli, [str(checkpoint), "--labels", str(labels)], test, checkpoint)}
    for name, path in made.items():
        rows[name] = verify(cli, [str(path)], test, checkpoint)

    test_set = load_test_set(splits, checkpoint)
    sweep = calibration_sweep(work, splits, test_set)
    layers = per_layer_errors(work, test_set)
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(args.threads),
        "data": {"source": "sklearn.datasets.load_digits (1,797 8x8 greyscale scans, 10 classes)", **splits.counts},
        "training": training,
        "table": rows,
        "sweep": sweep,
        "per_layer": layers,
        "seconds": round(time.perf_counter() - started),
    }
    (out / "accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "accuracy.md").write_text(markdown(result))
    print((out / "accuracy.md").read_text())


def cpu_has_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def train_or_reuse(splits, checkpoint: Path, args) -> dict:
    """Train, or reuse the checkpoint when it was trained on these splits with these settings."""
    from train import TrainSettings

    settings = TrainSettings(epochs=args.epochs, threads=args.threads)
    recipe = {"splits": SPLITS, "split_seed": SPLIT_SEED, "epochs": settings.epochs, "batch_size": settings.batch_size,
              "optimizer": f"SGD lr {settings.learning_rate} momentum {settings.momentum} "
                           f"weight decay {settings.weight_decay}, warm-up then cosine", "seed": settings.seed}
    info_path = checkpoint.with_suffix(".json")
    if checkpoint.exists() and info_path.exists() and not args.retrain:
        info = json.loads(info_path.read_text())
        if {key: info.get(key) for key in recipe} == recipe:
            print(f"reusing {checkpoint}, trained with the same splits and settings (--retrain to train again)",
                  flush=True)
            return info
    from train import load_folder, save_state_dict, train

    images, labels = load_folder(splits.folder("train"), CLASS_NAMES)
    print(f"training on {len(images)} images for {settings.epochs} epochs ({args.threads} threads)", flush=True)
    started = time.perf_counter()
    model = train(images, labels, len(CLASS_NAMES), settings, log=lambda line: print(line, flush=True))
    save_state_dict(model, checkpoint)
    info = {**recipe, "images": len(images), "seconds": round(time.perf_counter() - started)}
    info_path.write_text(json.dumps(info, indent=2))
    return info


def verify(cli: str, model_args: list[str], test: Path, reference: Path) -> dict:
    command = [cli, "verify", *model_args, "--images", str(test), "--labels-from-folders",
               "--reference", str(reference), "--json"]
    print("$", " ".join(command), flush=True)
    # stderr (progress, and the one-line error if it fails) goes straight to the terminal.
    report = json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout)
    return {"top1": report["top1"], "top5": report["topk"], "images": report["images"],
            "top1_agreement": report["agreement"]["top1_agreement"],
            "top5_overlap": report["agreement"]["top5_overlap"],
            "min_cosine": report["agreement"]["min_cosine"]}


@dataclass(frozen=True)
class EvaluationSet:
    images: np.ndarray  # preprocessed
    labels: np.ndarray
    eager_logits: np.ndarray  # the checkpoint's, run eagerly


def load_test_set(splits, checkpoint: Path) -> EvaluationSet:
    from train import load_folder

    from alexnet_export.runtimes import TorchRuntime

    images, labels = load_folder(splits.folder("test"), CLASS_NAMES)
    return EvaluationSet(images, labels, TorchRuntime(checkpoint).predict(images))


def calibration_sweep(work: Path, splits, test: EvaluationSet) -> list[dict]:
    """Both INT8 files for each calibration method and set size, scored on the test split."""
    from alexnet_export.bench.accuracy import topk_accuracy
    from alexnet_export.exporter.calibration.ranges import CalibrationSet, calibration_ranges
    from alexnet_export.exporter.onnx.quantize import to_int8_cpu, to_int8_tensorrt
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import OnnxRuntime
    from alexnet_export.runtimes.preprocess import find_images, preprocess_batch

    calib_paths = find_images(splits.folder("calib"))
    calib_images = preprocess_batch([calib_paths[i] for i in np.random.default_rng(0).permutation(len(calib_paths))],
                                    Preprocessing())
    fp32 = work / "digits.onnx"
    folder = work / "sweep"
    folder.mkdir(exist_ok=True)
    rows = []
    for size in SWEEP_SIZES:
        digest = hashlib.sha256(calib_images[:size].tobytes()).hexdigest()
        calibration = CalibrationSet(calib_images[:size], calib_images[:0], digest, ())
        for method in SWEEP_METHODS:
            print(f"sweep: {method}, {size} images", flush=True)
            ranges = calibration_ranges(fp32, calibration, method, work / "cache")
            for flavour, quantize in (("cpu", to_int8_cpu), ("tensorrt", to_int8_tensorrt)):
                path = folder / f"{flavour}-{method}-{size}.onnx"
                quantize(fp32, ranges, path)
                logits = OnnxRuntime(path, providers=["CPUExecutionProvider"]).predict_in_allowed_batches(test.images)
                rows.append({"method": method, "images": size, "file": flavour,
                             "top1": topk_accuracy(logits, test.labels, 1),
                             "top5": topk_accuracy(logits, test.labels, 5),
                             "top1_agreement": float(np.mean(logits.argmax(1) == test.eager_logits.argmax(1)))})
                path.unlink()
    return rows


def per_layer_errors(work: Path, test: EvaluationSet) -> dict:
    """Each layer's output (conv1..fc8, runtimes/verification/layers.py), FP32 vs each INT8 file, on 64 test
    images, as the next layer sees it (dequantized where the file quantizes it): SQNR in dB and
    the share of noise each layer adds (runtimes/verification/layer_errors.py)."""
    from alexnet_export.runtimes.verification.layer_errors import compare_layers, onnx_layers

    batches = [test.images[i : i + 16] for i in range(0, 64, 16)]
    reference = onnx_layers(work / "digits.onnx")
    result = {}
    for flavour, file_name in (("cpu", "digits.int8.onnx"), ("tensorrt", "digits.int8-tensorrt.onnx")):
        report = compare_layers(reference, onnx_layers(work / file_name), batches)
        result[flavour] = {f.layer: {"sqnr_db": round(f.sqnr_db, 1), "noise_added": f.noise_added}
                           for f in report.layers}
    return result


def machine(threads: int) -> dict:
    from alexnet_export.bench.machine import describe_machine

    return describe_machine(threads)


def markdown(result: dict) -> str:
    m = result["machine"]
    data = result["data"]
    lines = [
        f"Measured {result['date']} on {m.get('cpu', 'this CPU')} ({m.get('cores', '?')} cores), "
        f"{threads_and_versions(m)}.",
        "",
        f"Data: {data['source']}; train {data['train']}, calibration {data['calib']}, test {data['test']} images "
        "(stratified, disjoint). The seed AlexNet trained on the CPU: "
        f"{result['training']['epochs']} epochs, {result['training']['seconds']} s.",
        "",
        "| model | top-1 | top-5 | top-1 agreement with eager FP32 | top-5 overlap | min cosine |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in result["table"].items():
        lines.append(f"| {name} | {row['top1']:.2%} | {row['top5']:.2%} | {row['top1_agreement']:.2%} "
                     f"| {row['top5_overlap']:.2%} | {row['min_cosine']:.4f} |")
    lines += ["", "INT8 calibration sweep (test split; top-1 / agreement with eager FP32):", "",
              "| method | images | CPU file top-1 | CPU agreement | TensorRT file top-1 | TensorRT agreement |",
              "|---|---|---|---|---|---|"]
    by_key = {(r["method"], r["images"], r["file"]): r for r in result["sweep"]}
    for method in SWEEP_METHODS:
        for size in SWEEP_SIZES:
            cpu, trt = by_key[(method, size, "cpu")], by_key[(method, size, "tensorrt")]
            lines.append(f"| {method} | {size} | {cpu['top1']:.2%} | {cpu['top1_agreement']:.2%} "
                         f"| {trt['top1']:.2%} | {trt['top1_agreement']:.2%} |")
    lines += ["", "Per-layer error, FP32 vs INT8 layer outputs on 64 test images (SQNR in dB, higher is closer;"
              " noise added: the share of the layer's output power that its own rounding adds):", "",
              "| layer | CPU file SQNR | CPU noise added | TensorRT file SQNR | TensorRT noise added |",
              "|---|---|---|---|---|"]
    cpu_layers, trt_layers = result["per_layer"]["cpu"], result["per_layer"]["tensorrt"]
    for name in cpu_layers:
        cpu, trt = cpu_layers[name], trt_layers[name]
        lines.append(f"| {name} | {cpu['sqnr_db']} | {100 * cpu['noise_added']:.3g}% | {trt['sqnr_db']}"
                     f" | {100 * trt['noise_added']:.3g}% |")
    return "\n".join(lines) + "\n"


def threads_and_versions(m: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items() if v)
    return f"{m.get('threads', '?')} threads; {versions}"


if __name__ == "__main__":
    main()
