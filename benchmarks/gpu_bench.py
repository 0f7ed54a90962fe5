"""The GPU bench of issue 12, in one go on a host with torch (CUDA) and onnxruntime-gpu:

    python benchmarks/gpu_bench.py OUT [--batch-sizes 1,16,64,256] [--iterations 30] [--warmup 5]

Makes the seeded 1000-class FP32, FP16 and TensorRT-INT8 ONNX files through the library's pipeline
(INT8 calibrated on photo crops from scikit-image), then times, interleaved per round, medians
after a warm-up, every call synchronised with the GPU:
  - OnnxRuntime.predict with numpy, with torch CUDA tensors (DLPack), and raw IO binding on the
    same session (the floor predict is measured against), plus the old path (session.run + numpy);
  - TF32 on (the default) and off (tf32=False): time, and error against eager FP32 on the CPU;
  - the FP16 and INT8 files with device arrays; CUDA graphs at batch 1 (FP32, FP16);
  - eager torch on the GPU: FP32, and FP16 channels-last.
Then `bench`'s harness on the three files (device split, GPU roofline, the GPU in the header).
Writes OUT/gpu_bench.{json,md} and OUT/bench.{json,md}; a file or variant that fails is recorded
with its error and the rest still runs. --dry-run runs the same steps on the CPU with tiny counts
(FP32 file only) to check the script, not the GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reproduce.py: the photo crops

from alexnet_export.bench import device
from alexnet_export.bench.harness import Settings, run_benchmark
from alexnet_export.bench.machine import describe_machine
from alexnet_export.bench.report import to_markdown, write_json, write_text
from alexnet_export.errors import AlexNetExportError, one_line
from alexnet_export.exporter.pipeline import ModelSource, export_onnx_file
from alexnet_export.exporter.calibration.images import CalibrationOptions
from alexnet_export.runtimes.verification.parity import compare_logits
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime

FILES = {"fp32": "alexnet.onnx", "fp16": "alexnet.fp16.onnx", "int8-tensorrt": "alexnet.int8-tensorrt.onnx"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch-sizes", default="1,16,64,256")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--dry-run", action="store_true", help="check the script on the CPU: tiny counts, no GPU")
    args = parser.parse_args(argv)
    missing = _missing_gpu()
    if missing and not args.dry_run:
        print(f"gpu_bench.py needs a CUDA GPU: {missing}; run it on the GPU host, or --dry-run to check it here",
              file=sys.stderr)
        return 2
    sizes = (1, 2) if args.dry_run else tuple(int(size) for size in args.batch_sizes.split(","))
    iterations, warmup = (2, 1) if args.dry_run else (args.iterations, args.warmup)
    args.out.mkdir(parents=True, exist_ok=True)
    failures: dict[str, str] = {}
    files = make_files(args.out, fp32_only=args.dry_run, failures=failures)
    rows, errors = run(files, sizes, iterations, warmup, cpu=args.dry_run, failures=failures)
    report = {"machine": describe_machine(threads="onnxruntime default"), "dry_run": args.dry_run,
              "iterations": iterations, "warmup": warmup, "rows": rows, "tf32_error": errors, "failures": failures}
    (args.out / "gpu_bench.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "gpu_bench.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    # The harness `alexnet-export bench` runs: on CUDA its rows carry the device split and the GPU roofline.
    bench = run_benchmark(list(files.values()), Settings(batch_sizes=sizes, threads=2, warmup=warmup,
                                                         iterations=iterations, cold_start=False))
    write_json(args.out / "bench.json", bench)
    write_text(args.out / "bench.md", to_markdown(bench))
    return 0


def _missing_gpu() -> str | None:
    from alexnet_export.runtimes.onnx.providers import provider_loads

    if not device.cuda_available():
        return "torch sees no CUDA GPU"
    if not provider_loads("CUDAExecutionProvider"):
        return "ONNX Runtime's CUDA provider does not load (install onnxruntime-gpu)"
    return None


def make_files(out: Path, fp32_only: bool, failures: dict) -> dict[str, Path]:
    from reproduce import make_photo_crops

    files = {"fp32": export_onnx_file(out / FILES["fp32"], ModelSource()).path}
    if fp32_only:
        return files
    calibration = CalibrationOptions(folder=make_photo_crops(out / "calib", per_photo=18), cache_dir=out / "cache")
    for precision in ("fp16", "int8-tensorrt"):
        try:
            files[precision] = export_onnx_file(out / FILES[precision], ModelSource(), precision=precision,
                                                calibration=calibration).path
        except AlexNetExportError as exc:  # e.g. a failed gate: recorded, the other files still run
            failures[f"export {precision}"] = one_line(exc)
    return files


def run(files: dict[str, Path], sizes, iterations: int, warmup: int, cpu: bool,
        failures: dict) -> tuple[list[dict], list[dict]]:
    import torch

    providers = ["CPUExecutionProvider"] if cpu else ["CUDAExecutionProvider"]
    where = "cpu" if cpu else "cuda"
    fast = OnnxRuntime(files["fp32"], providers=providers)  # TF32 on: the serving default
    strict = OnnxRuntime(files["fp32"], providers=providers, tf32=False)
    others = {p: OnnxRuntime(files[p], providers=providers) for p in ("fp16", "int8-tensorrt") if p in files}
    eager = {"torch eager fp32": TorchRuntime(device=where)}
    if not cpu:
        eager["torch eager fp16 channels-last"] = TorchRuntime(device=where, dtype="float16", channels_last=True)
    reference = TorchRuntime()  # eager FP32 on the CPU: what the error is measured against
    sync = (lambda: None) if cpu else torch.cuda.synchronize
    rows, errors = [], []
    rng = np.random.default_rng(0)
    for size in sizes:
        host = rng.normal(size=(size, 3, 224, 224)).astype(np.float32)
        dev = torch.from_numpy(host).to(where)
        calls = {
            "ORT fp32 predict(numpy)": lambda: fast.predict(host),
            "ORT fp32 session.run(numpy)": lambda: fast.session.run(None, {fast.session.get_inputs()[0].name: host}),
            "ORT fp32 predict(device)": lambda: fast.predict(dev),
            "ORT fp32 raw IO binding": raw_binding(fast, dev, where),
            "ORT fp32 strict predict(device)": lambda: strict.predict(dev),
            **{f"ORT {p} predict(device)": (lambda r=r: r.predict(dev)) for p, r in others.items()},
            **{name: (lambda r=r: r.predict(dev)) for name, r in eager.items()},
        }
        if size == 1 and not cpu:
            for precision in (p for p in ("fp32", "fp16") if p in files):
                name = f"ORT {precision} CUDA graph predict(device)"
                try:
                    graph = OnnxRuntime(files[precision], providers=providers, enable_cuda_graph=True)
                    graph.predict(dev)  # the capture: a failure shows here
                except AlexNetExportError as exc:
                    failures[name] = one_line(exc)
                    continue
                calls[name] = lambda g=graph: g.predict(dev)
        for name, seconds in interleave(calls, sync, iterations, warmup).items():
            rows.append({"variant": name, "batch": size, "p50_ms": float(np.median(seconds)) * 1e3,
                         "p90_ms": float(np.percentile(seconds, 90)) * 1e3, "rounds": len(seconds)})
        expected = reference.predict(host)
        for label, runtime in (("tf32 on (default)", fast), ("tf32 off (strict)", strict)):
            report = compare_logits(expected, runtime.predict(host))
            errors.append({"batch": size, "mode": label, "max_abs": report.max_abs, "max_rel": report.max_rel,
                           "min_cosine": report.min_cosine})
    return rows, errors


def raw_binding(runtime: OnnxRuntime, dev, where: str):
    """The floor: the session bound straight to the torch tensor and a preallocated output, no checks."""
    import torch

    session = runtime.session
    output = torch.empty((dev.shape[0], runtime.metadata.num_classes), device=where)
    binding = session.io_binding()
    index = dev.device.index or 0
    binding.bind_input(session.get_inputs()[0].name, where, index, np.float32, tuple(dev.shape), dev.data_ptr())
    binding.bind_output(session.get_outputs()[0].name, where, index, np.float32, tuple(output.shape),
                        output.data_ptr())
    # The binding holds raw pointers only: the closure keeps both tensors alive as long as it is used.
    return lambda: (session.run_with_iobinding(binding), dev, output)


def interleave(calls: dict, sync, iterations: int, warmup: int) -> dict[str, list[float]]:
    """Each round runs every call once in a rotating order; each call is timed to the GPU's finish."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
            sync()
    times = {name: [] for name in names}
    for done in range(iterations):
        for name in names[done % len(names):] + names[: done % len(names)]:
            sync()
            start = time.perf_counter()
            calls[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def markdown(report: dict) -> str:
    machine = report["machine"]
    gpu = machine.get("gpu") or {}
    lines = [f"GPU: {gpu.get('name', 'none (dry run)')}, driver {gpu.get('driver')}, CUDA {gpu.get('cuda')};"
             f" CPU: {machine['cpu']}; {', '.join(f'{k} {v}' for k, v in machine['libraries'].items())}  ",
             f"medians of {report['iterations']} interleaved rounds after {report['warmup']} warm-up rounds,"
             " each call synchronised with the GPU", ""]
    sizes = sorted({row["batch"] for row in report["rows"]})
    variants = list(dict.fromkeys(row["variant"] for row in report["rows"]))
    cell = {(row["variant"], row["batch"]): row["p50_ms"] for row in report["rows"]}
    lines += ["| variant | " + " | ".join(f"batch {s} ms" for s in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for variant in variants:
        values = [f"{cell[variant, s]:.3f}" if (variant, s) in cell else "-" for s in sizes]
        lines.append(f"| {variant} | " + " | ".join(values) + " |")
    floor = "ORT fp32 raw IO binding"
    lines += ["", "predict(device) over raw IO binding: " + ", ".join(
        f"batch {s} {cell['ORT fp32 predict(device)', s] / cell[floor, s]:.2f}x" for s in sizes), ""]
    lines += ["| batch | TF32 | max abs error | error / logit scale | min cosine |", "|---|---|---|---|---|"]
    lines += [f"| {e['batch']} | {e['mode']} | {e['max_abs']:.3g} | {e['max_rel']:.3g} | {e['min_cosine']:.8f} |"
              for e in report["tf32_error"]]
    lines += [f"- failed: {what}: {why}" for what, why in report["failures"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
