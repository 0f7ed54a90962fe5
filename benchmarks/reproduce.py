"""Reproduce the performance tables of docs/performance.md from scratch, with one command:

    python benchmarks/reproduce.py [--out benchmarks/results] [--iterations 20] [--threads 2]

Makes everything in OUT: photo crops for calibration (from the photographs scikit-image ships),
a seeded checkpoint, the toolkit's FP32 (native and pooled LRN), FP16 and CPU INT8 files through
the CLI as a user would, and what a user would otherwise have: `torch.onnx.export`'s default graph and ONNX
Runtime's default `quantize_static` settings on the same images. Then one `alexnet-export bench`
run times them all, interleaved, and writes bench.md, bench.json and bench.png.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
          "hubble_deep_field.jpg", "retina.jpg", "brick.png", "grass.png", "gravel.png", "ihc.png", "camera.png",
          "coins.png", "page.png", "moon.png", "color.png", "logo.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,8,16")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    calib = make_photo_crops(out / "calib", per_photo=18)
    checkpoint = out / "seed0.pt"
    save_checkpoint(checkpoint)
    cli = [str(Path(sys.executable).parent / "alexnet-export")]
    common = ["--weights", str(checkpoint)]
    run(cli + ["onnx", *common, "-o", str(out / "alexnet.onnx")])
    run(cli + ["onnx", *common, "--lrn", "pooled", "-o", str(out / "alexnet.cpu.onnx")])
    run(cli + ["onnx", *common, "--precision", "fp16", "-o", str(out / "alexnet.fp16.onnx")])
    run(cli + ["onnx", *common, "--precision", "int8", "--calib-dir", str(calib), "--cache-dir", str(out / "cache"),
               "-o", str(out / "alexnet.int8.onnx")])
    default_export(checkpoint, out / "torch-default.onnx")
    default_quantization(out / "torch-default.onnx", calib, out / "ort-default-int8.onnx")
    models = [checkpoint, out / "alexnet.onnx", out / "alexnet.cpu.onnx", out / "torch-default.onnx", out / "alexnet.fp16.onnx",
              out / "alexnet.int8.onnx", out / "ort-default-int8.onnx"]
    run(cli + ["bench", *map(str, models), "--batch-sizes", args.batch_sizes, "--threads", str(args.threads),
               "--iterations", str(args.iterations), "--json", str(out / "bench.json"),
               "--markdown", str(out / "bench.md"), "--plot", str(out / "bench.png")])
    shutil.rmtree(calib)


def run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def make_photo_crops(folder: Path, per_photo: int) -> Path:
    """Seeded random crops (some mirrored) of scikit-image's bundled photographs, as JPEGs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in PHOTOS:
        photo = np.asarray(Image.open(str(files("skimage") / "data" / name)).convert("RGB"))
        height, width = photo.shape[:2]
        for index in range(per_photo):
            h, w = int(rng.integers(height // 4, height + 1)), int(rng.integers(width // 4, width + 1))
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            crop = photo[top : top + h, left : left + w]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{Path(name).stem}_{index}.jpg", quality=90)
    return folder


def save_checkpoint(path: Path) -> None:
    import torch

    from alexnet_export.models.alexnet import seeded_alexnet

    torch.save(seeded_alexnet(1000, seed=0).state_dict(), path)


def default_export(checkpoint: Path, path: Path) -> None:
    """What the PyTorch documentation's example does: the default exporter, dynamic batch."""
    import torch

    from alexnet_export.models.alexnet import AlexNet

    model = AlexNet(1000)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    print(f"$ torch.onnx.export(model, ...) -> {path}", flush=True)
    torch.onnx.export(model, (torch.zeros(2, 3, 224, 224),), str(path), input_names=["images"],
                      output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))


def default_quantization(fp32: Path, calib: Path, path: Path) -> None:
    """ONNX Runtime's quantize_static with its defaults, calibrated on the same images."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes.preprocess import preprocess_batch

    images = preprocess_batch(sorted(calib.glob("*.jpg"))[:256], Preprocessing())

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(images)

        def get_next(self):
            row = next(self.rows, None)
            return None if row is None else {"images": row[None]}

    print(f"$ quantize_static({fp32.name}, ...) -> {path}", flush=True)
    quantize_static(str(fp32), str(path), Reader())


if __name__ == "__main__":
    main()
