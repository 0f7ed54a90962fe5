"""What the toolkit's wrapper costs at batch 1: each runtime's `predict` against the backend's own
lowest-overhead call on the same loaded model, interleaved.

    .venv/bin/python benchmarks/wrapper_overhead.py [--rounds 200] [--warmup 20] [--classes 1000]
        [--threads N] [--backends onnx,openvino,openvino-int8,executorch,litert,torch]

Exports the seeded AlexNet (random weights, no downloads) into a temporary folder, once per backend
installed here: the .pte and .tflite for batch 1, the .onnx and the IRs made from it with a dynamic
batch, as `alexnet-export onnx` and `openvino` make them (the OpenVINO INT8 IR is calibrated on
synthetic images). It opens each file with the toolkit's runtime. The raw call drives that runtime's
own loaded session, compiled model, method or interpreter, so both sides run the same native code
on the same threads and only the Python between differs:
    onnx           session.run_with_iobinding on a binding made once (input bound in place, CPU output)
    openvino(-int8) an infer request's infer(share_inputs=True, share_outputs=True), output copied
    executorch     method.execute on a torch view of the batch made once
    litert         interpreter set_tensor (the batch already NHWC), invoke, get_tensor
    torch          the module called under torch.inference_mode
`predict` takes the toolkit's float32 NCHW batch and checks it (dtype, shape, NaN/inf), so what it adds
includes those checks and, for LiteRT, the NHWC transpose. Each round runs both calls of every backend
back to back, in alternating order; medians over --rounds after --warmup rounds. Prints the CPU, its
SIMD flags and the load average before and after: figures taken while other work runs are not final.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

import numpy as np

BACKENDS = ("onnx", "openvino", "openvino-int8", "executorch", "litert", "torch")
NEEDS = {"onnx": "onnxruntime", "openvino": "openvino", "openvino-int8": "openvino", "executorch": "executorch",
         "litert": "ai_edge_litert", "torch": "torch"}


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    name = re.search(r"model name\s*:\s*(.+)", info).group(1).strip()
    flags = set(re.search(r"flags\s*:\s*(.+)", info).group(1).split())
    simd = [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile") if flag in flags]
    return f"{name}, {len(re.findall('^processor', info, re.M))} CPUs, {' '.join(simd) or 'no AVX2/AVX-512'}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


@dataclass
class Case:
    backend: str
    raw_call: str  # what the raw side calls, for the table
    raw: Callable[[], object]
    wrapped: Callable[[], object]
    runtime: object


def synthetic_calibration(folder: Path, count: int = 80) -> Path:
    from PIL import Image

    from alexnet_export.runtimes.verification.samples import synthetic_images

    images = folder / "calibration"
    images.mkdir()
    for index, image in enumerate(synthetic_images(count, seed=5)):
        Image.fromarray(image).save(images / f"{index:03d}.png")
    return images


def export(backend: str, folder: Path, classes: int, made: dict[str, Path]) -> Path | None:
    """The file `backend` runs (None for torch, which runs the module), exported into `folder`."""
    from alexnet_export.exporter.pipeline import (CalibrationOptions, ModelSource, export_executorch, export_litert,
                                                  export_onnx_file, export_openvino_ir)

    source = ModelSource(num_classes=classes)
    if backend in ("onnx", "openvino", "openvino-int8") and "onnx" not in made:
        made["onnx"] = export_onnx_file(folder / "alexnet.onnx", source, verify=False).path
    if backend == "onnx":
        return made["onnx"]
    if backend == "openvino":
        return export_openvino_ir(folder / "alexnet.xml", fp32_onnx=made["onnx"]).path
    if backend == "openvino-int8":
        calibration = CalibrationOptions(synthetic_calibration(folder), 64, cache_dir=folder)
        return export_openvino_ir(folder / "alexnet.int8.xml", fp32_onnx=made["onnx"], precision="int8-openvino",
                                  calibration=calibration).path
    if backend == "executorch":
        return export_executorch(folder / "alexnet.pte", source, max_batch=1).path
    if backend == "litert":
        return export_litert(folder / "alexnet.tflite", source).path
    return None


def case(backend: str, path: Path | None, classes: int, threads: int | None, batch: np.ndarray) -> Case:
    """The runtime for `path` and the raw call on the same loaded model, both fed `batch`."""
    from alexnet_export.runtimes import TorchRuntime, open_runtime

    if backend == "torch":
        import torch

        runtime = TorchRuntime(None, num_classes=classes, threads=threads)
        tensor = torch.from_numpy(batch)

        def raw():
            with torch.inference_mode():
                return runtime.model(tensor)
        return Case(backend, "model(x) under inference_mode", raw, lambda: runtime.predict(batch), runtime)
    options = {"threads": threads} if threads is not None else {}
    if backend == "onnx":
        options["spinning"] = False  # as bench and serve run it
    runtime = open_runtime(path, **options)
    if backend == "onnx":
        session = runtime.session
        binding = session.io_binding()
        binding.bind_cpu_input(session.get_inputs()[0].name, batch)
        binding.bind_output(session.get_outputs()[0].name, "cpu")

        def raw():
            session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0]
        label = "session.run_with_iobinding"
    elif backend.startswith("openvino"):
        request = runtime._compiled.create_infer_request()

        def raw():
            return request.infer({0: batch}, share_inputs=True, share_outputs=True)[0].copy()
        label = "request.infer(share_inputs, share_outputs)"
    elif backend == "executorch":
        import torch

        method, tensor = runtime._method, torch.from_numpy(batch)

        def raw():
            return method.execute([tensor])[0]
        label = "method.execute"
    else:  # litert
        interpreter = runtime._interpreter
        source, target = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
        fed = np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if runtime.layout == "NHWC" else batch

        def raw():
            interpreter.set_tensor(source, fed)
            interpreter.invoke()
            return interpreter.get_tensor(target)
        label = "set_tensor, invoke, get_tensor"
    return Case(backend, label, raw, lambda: runtime.predict(batch), runtime)


def measure(cases: list[Case], rounds: int, warmup: int) -> dict[str, tuple[float, float]]:
    """Per backend, the median seconds of (raw, wrapped) over `rounds`, after `warmup` rounds."""
    times = {item.backend: ([], []) for item in cases}
    for index in range(warmup + rounds):
        for item in cases:
            order = ((0, item.raw), (1, item.wrapped)) if index % 2 == 0 else ((1, item.wrapped), (0, item.raw))
            for side, call in order:
                started = time.perf_counter()
                call()
                elapsed = time.perf_counter() - started
                if index >= warmup:
                    times[item.backend][side].append(elapsed)
    return {backend: (statistics.median(raw), statistics.median(wrapped)) for backend, (raw, wrapped) in times.items()}


def table(cases: list[Case], medians: dict[str, tuple[float, float]]) -> list[str]:
    lines = [f"{'backend':14} {'raw ms':>8} {'predict ms':>10} {'+us':>7} {'overhead':>9}  raw call; device"]
    for item in cases:
        raw, wrapped = medians[item.backend]
        lines.append(f"{item.backend:14} {raw * 1e3:8.3f} {wrapped * 1e3:10.3f} {(wrapped - raw) * 1e6:7.0f}"
                     f" {100 * (wrapped / raw - 1):+8.1f}%  {item.raw_call}; {item.runtime.device}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="each runtime's threads (default: its own)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, of {', '.join(BACKENDS)}")
    args = parser.parse_args(argv)
    asked = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = [name for name in asked if name not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; expected some of {', '.join(BACKENDS)}")
    missing = [name for name in asked if find_spec(NEEDS[name]) is None]
    batch = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        made: dict[str, Path] = {}
        cases = [case(name, export(name, Path(scratch), args.classes, made), args.classes, args.threads, batch)
                 for name in asked if name not in missing]
        before = load()
        medians = measure(cases, args.rounds, args.warmup)
        after = load()
        for item in cases:
            item.runtime.close()
    print(f"CPU: {cpu()}")
    print(f"AlexNet ({args.classes} classes, random weights), batch 1, {args.threads or 'default'} threads;"
          f" medians of {args.rounds} interleaved rounds after {args.warmup}")
    for line in table(cases, medians):
        print(line)
    if missing:
        print(f"not installed here, skipped: {', '.join(missing)}")
    print(f"load average (1, 5, 15 min) before timing: {before}; after: {after}")
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("other work was running (load average above half the CPUs): these figures are not final")


if __name__ == "__main__":
    main()
