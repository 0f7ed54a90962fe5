"""Images/s of the local batch job (`alexnet-export classify`) against decoding and inference in turn.

Makes --images photo-like JPEGs (500 x 375, random crops of the photographs scikit-image ships,
quality 90) unless --folder is given, then alternates, --runs times each:
  decoding only  read, resize, crop and normalise every image (one thread), no model run
  inference only the model on the decoded batches
  in turn        one thread: decode a batch, run it, decode the next (Classifier per batch)
  job            classify_collection with its defaults (decode threads = CPUs up to 4, spinning off)
  job, 1 decoder classify_collection(decode_threads=1)
  job, spinning  classify_collection(spinning=True): ONNX Runtime's default
Rates count the images from the first batch to the last result (model loading and hashing are
not counted: they are paid once per run). Run:
    .venv/bin/python benchmarks/batch_throughput.py MODEL.onnx [--images 400] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from alexnet_export.batch import Classifier, classify_collection
from alexnet_export.events import Advance


def make_images(folder: Path, count: int) -> None:
    from importlib.resources import files

    data = Path(str(files("skimage") / "data"))
    photos = [data / name for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                                       "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg", "brick.png")]
    rng = np.random.default_rng(0)
    images = [Image.open(p).convert("RGB") for p in photos]
    for index in range(count):
        image = images[index % len(images)]
        width, height = image.size
        crop_w, crop_h = int(width * rng.uniform(0.5, 1)), int(height * rng.uniform(0.5, 1))
        left, top = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
        image.crop((left, top, left + crop_w, top + crop_h)).resize((500, 375)).save(folder / f"{index:04d}.jpg",
                                                                                     quality=90)


def in_turn(model: Path, paths: list[str], batch_size: int) -> float:
    classifier = Classifier(model, spinning=False)
    classifier.open()
    started = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        classifier({"path": paths[start : start + batch_size]})
    return len(paths) / (time.perf_counter() - started)


def decode_only(model: Path, paths: list[str], batch_size: int) -> float:
    classifier = Classifier(model)
    classifier.open()
    started = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        classifier.decode(paths[start : start + batch_size])
    return len(paths) / (time.perf_counter() - started)


def inference_only(model: Path, paths: list[str], batch_size: int) -> float:
    classifier = Classifier(model, spinning=False)
    decoded = [classifier.decode(paths[start : start + batch_size]) for start in range(0, len(paths), batch_size)]
    started = time.perf_counter()
    for batch in decoded:
        classifier.classify_decoded(batch)
    return len(paths) / (time.perf_counter() - started)


def job(model: Path, folder: Path, output: Path, **options) -> float:
    marks = []

    def on_event(event):
        if isinstance(event, Advance):
            marks.append((time.perf_counter(), event.done))

    classify_collection(model, folder, output, on_event=on_event, **options)
    (first, _), (last, done) = marks[0], marks[-1]
    for part in output.iterdir():
        part.unlink()
    output.rmdir()
    return done / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "images"
        if args.folder is None:
            folder.mkdir()
            make_images(folder, args.images)
        paths = sorted(str(p) for p in folder.glob("*.jpg"))
        output = Path(scratch) / "results.parquet"
        variants = {
            "decoding only (1 thread)": lambda: decode_only(args.model, paths, args.batch_size),
            "inference only": lambda: inference_only(args.model, paths, args.batch_size),
            "in turn (1 thread)": lambda: in_turn(args.model, paths, args.batch_size),
            "job (defaults)": lambda: job(args.model, folder, output, batch_size=args.batch_size),
            "job, 1 decode thread": lambda: job(args.model, folder, output, batch_size=args.batch_size,
                                                decode_threads=1),
            "job, spinning on": lambda: job(args.model, folder, output, batch_size=args.batch_size, spinning=True),
        }
        rates: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, run in variants.items():
                rates[name].append(run())
    print(f"{len(paths)} JPEGs, batch {args.batch_size}, {args.model.name}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print("| variant | images/s (median) | runs |\n| --- | --- | --- |")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |")


if __name__ == "__main__":
    main()
