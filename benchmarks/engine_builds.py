"""Engine size and build time of TensorRT for RTX's ahead-of-time builds, on this machine's CPU.

Makes the toolkit's own files of the seeded 1000-class AlexNet (alexnet.onnx, alexnet.fp16.onnx,
alexnet.int8-tensorrt.onnx calibrated on --calib-dir, and the uint8 pixel file), builds each with
`trt`'s defaults (batch profile 1/8/32, the builder's default targets) --runs times, and prints a
Markdown table: engine MB, median build_serialized_network seconds, and the wall time of the whole
build_engine call (parse, build, write). Run:
    .venv/bin/python benchmarks/engine_builds.py [--calib-dir photos/] [--runs 3]
Without --calib-dir it writes 80 crops of the photographs scikit-image ships (a test dependency).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    name = re.search(r"model name\s*:\s*(.+)", info).group(1).strip()
    return f"{name}, {len(re.findall('^processor', info, re.M))} CPUs"


def photo_crops(folder: Path, count: int = 80) -> Path:
    import numpy as np
    from importlib.resources import files
    from PIL import Image

    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
             "retina.jpg", "brick.png", "grass.png", "gravel.png", "ihc.png", "camera.png", "coins.png", "page.png"]
    rng = np.random.default_rng(7)
    (folder / "photos").mkdir()
    for index in range(count):
        image = np.asarray(Image.open(str(files("skimage") / "data" / names[index % len(names)])).convert("RGB"))
        height, width = image.shape[:2]
        h, w = int(rng.integers(height // 3, height + 1)), int(rng.integers(width // 3, width + 1))
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        Image.fromarray(np.ascontiguousarray(image[top:top + h, left:left + w])).save(folder / "photos" / f"{index}.jpg")
    return folder / "photos"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib-dir", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from alexnet_export.exporter.pipeline import export_onnx_file, make_precision_file
    from alexnet_export.exporter.onnx.pixels import write_pixel_file
    from alexnet_export.exporter.tensorrt.convert import build_engine
    from alexnet_export.exporter.tensorrt.settings import BuildSettings
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        calib_dir = args.calib_dir or photo_crops(folder)
        fp32 = export_onnx_file(folder / "alexnet.onnx").path
        write_pixel_file(fp32, folder / "alexnet.uint8.onnx")
        files = {
            "alexnet.onnx (FP32)": fp32,
            "alexnet.fp16.onnx": make_precision_file(fp32, "fp16").path,
            "alexnet.int8-tensorrt.onnx (Q/DQ)": make_precision_file(
                fp32, "int8-tensorrt", calibration=CalibrationOptions(calib_dir, 64)).path,
            "pixel file (`--input-format uint8`)": folder / "alexnet.uint8.onnx",
        }
        settings = BuildSettings(builder="tensorrt-rtx")
        rows = []
        for index, (label, source) in enumerate(files.items()):
            builds, walls = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                result = build_engine(source, folder / f"engine{index}.engine", settings=settings)
                walls.append(time.perf_counter() - started)
                builds.append(result.build_seconds)
            rows.append((label, result, statistics.median(builds), statistics.median(walls)))
        load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"{rows[0][1].builder}, ahead of time; {cpu()}; load average {load} (1/5/15 min); "
              f"profile batch 1/8/32; targets {rows[0][1].targets.describe()}; median of {args.runs}\n")
        print("| file | input | engine | build (build_serialized_network) | build_engine call |")
        print("| --- | --- | --- | --- | --- |")
        for label, result, build, wall in rows:
            spec = "uint8 N,224,224,3" if "uint8" in label else "float32 N,3,224,224"
            print(f"| {label} | {spec} | {result.size_bytes / 1e6:.1f} MB | {build:.1f} s | {wall:.1f} s |")


if __name__ == "__main__":
    main()
