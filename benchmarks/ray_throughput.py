"""Images/s of `classify` on Ray against the local job, with the pieces that explain them.

Makes --images photo-like JPEGs (500 x 375, crops of the photographs scikit-image ships, as
benchmarks/batch_throughput.py does) and, unless given, the seeded 1000-class FP32 file
(`alexnet-export onnx`) and the CPU INT8 file (`alexnet-export onnx --precision int8`, calibrated
on --calib-images more such JPEGs). Then alternates, --runs times each:
  decoding only         read, resize, crop, normalise every image in one thread, no model
  inference only        the model (ONNX Runtime, 1 thread and 2) on the decoded batches
  local job             classify_collection with its defaults (2 decode threads, spinning off)
  Ray start-up          ray.init() of a local Ray and ray.shutdown(), nothing run
  Ray, N workers        classify_on_ray(address=None, workers=N): a local Ray started for the run,
                        N actors of 1 CPU (and 1 inference thread) each; FP32 and INT8 for N = 1
  Ray, 1 worker, 1 call the same with one batch in flight per actor instead of two
The Ray runs classify --ray-images JPEGs (more, so that the actors' start is a small part of the
run). For each: the whole call, its set-up (a local Ray started, the nodes asked what they see),
the time to the first part (actors started, model opened, the write task's process started), the
job's rate (ClassifyResult.images_per_second: from the first batch to the last part) and the rate
of its second half (from the part that brings the output to half the rows to the last part). The
second is no steady rate: the one write task hands parts over in bursts, so it overstates (up to
576 images/s for 2 INT8 workers that ran at 207 in all); docs/batch.md uses the job's rate.

Ray must run on loopback only here, so the script re-runs itself as PID 1 of network and PID
namespaces of its own (`unshare --net --pid --fork --mount-proc`; root, or user namespaces).
    .venv/bin/python benchmarks/ray_throughput.py [--fp32 alexnet.onnx] [--int8 alexnet.int8-cpu.onnx]
                                                  [--images 600] [--ray-images 2400] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from batch_throughput import decode_only, job, make_images  # noqa: E402  (a sibling script)

from alexnet_export.batch import Classifier, classify_on_ray  # noqa: E402
from alexnet_export.batch import ray_job  # noqa: E402
from alexnet_export.events import Advance  # noqa: E402

NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]
RAY_ROWS_PER_PART = 100  # parts adopted one by one: the first one says when results start to arrive


def inference_only(model: Path, paths: list[str], batch_size: int, threads: int) -> float:
    classifier = Classifier(model, spinning=False, threads=threads)
    decoded = [classifier.decode(paths[start : start + batch_size]) for start in range(0, len(paths), batch_size)]
    started = time.perf_counter()
    for batch in decoded:
        classifier.classify_decoded(batch)
    return len(paths) / (time.perf_counter() - started)


def ray_startup() -> float:
    import ray

    started = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    ray.shutdown()
    return time.perf_counter() - started


def on_ray(model: Path, folder: Path, output: Path, workers: int, batch_size: int, calls: int) -> dict:
    marks = []

    def on_event(event):
        if isinstance(event, Advance) and event.done:
            marks.append((time.perf_counter(), event.done))

    ray_job._CALLS_PER_WORKER = calls
    started = time.perf_counter()
    result = classify_on_ray(model, folder, output, workers=workers, batch_size=batch_size, on_event=on_event,
                             rows_per_part=RAY_ROWS_PER_PART)
    first = marks[0][0]
    half = next((when, done) for when, done in marks if done >= marks[-1][1] / 2)
    second_half = (marks[-1][1] - half[1]) / (marks[-1][0] - half[0])
    for part in output.iterdir():
        part.unlink()
    output.rmdir()
    set_up = result.seconds - result.classifying_seconds
    return {"whole call s": result.seconds, "set-up s (Ray started, nodes asked)": set_up,
            "to the first part s (actors start, model opens, writer starts)": first - started - set_up,
            "job images/s (first batch to last part)": result.images_per_second,
            "second half images/s (half the rows in parts to all)": second_half}


def export(scratch: Path, calib_images: int) -> tuple[Path, Path]:
    console = Path(sys.executable).parent / "alexnet-export"
    fp32, int8, calib = scratch / "alexnet.onnx", scratch / "alexnet.int8-cpu.onnx", scratch / "calib"
    calib.mkdir()
    make_images(calib, calib_images)
    subprocess.run([console, "onnx", "-o", fp32], check=True, capture_output=True)
    subprocess.run([console, "onnx", "--precision", "int8", "--calib-dir", calib, "-o", int8], check=True,
                   capture_output=True)
    return fp32, int8


def measure(args) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # A local ray.init() of Ray 2.60 turns token authentication on and writes ~/.ray/auth_token when there
    # is none; nothing outside this network namespace can reach this Ray, so it stays off here.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        fp32, int8 = (args.fp32, args.int8) if args.fp32 and args.int8 else export(scratch, args.calib_images)
        folder = scratch / "images"
        folder.mkdir()
        make_images(folder, args.images)
        paths = sorted(str(p) for p in folder.glob("*.jpg"))
        many = scratch / "many"
        many.mkdir()
        make_images(many, args.ray_images)
        output = scratch / "results.parquet"
        size = args.batch_size
        variants = {
            "decoding only (1 thread)": lambda: decode_only(fp32, paths, size),
            "inference only, FP32, 1 thread": lambda: inference_only(fp32, paths, size, 1),
            "inference only, FP32, 2 threads": lambda: inference_only(fp32, paths, size, 2),
            "inference only, INT8, 1 thread": lambda: inference_only(int8, paths, size, 1),
            "local job, FP32 (defaults)": lambda: job(fp32, folder, output, batch_size=size),
            "local job, INT8 (defaults)": lambda: job(int8, folder, output, batch_size=size),
            "Ray start-up and shut-down, s": ray_startup,
            "Ray, 1 worker, FP32": lambda: on_ray(fp32, many, output, 1, size, 2),
            "Ray, 2 workers, FP32": lambda: on_ray(fp32, many, output, 2, size, 2),
            "Ray, 1 worker, INT8": lambda: on_ray(int8, many, output, 1, size, 2),
            "Ray, 2 workers, INT8": lambda: on_ray(int8, many, output, 2, size, 2),
            "Ray, 1 worker, FP32, 1 batch in flight": lambda: on_ray(fp32, many, output, 1, size, 1),
        }
        figures: dict[str, list] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, run in variants.items():
                figures[name].append(run())
                print(f"{name}: {figures[name][-1]}", file=sys.stderr, flush=True)
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    print(f"{len(paths)} JPEGs 500 x 375 ({args.ray_images} for Ray), batch {size}, {cpu}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} at the end; medians of {args.runs} alternating runs")
    print("| variant | median | runs |\n| --- | --- | --- |")
    for name, values in figures.items():
        if isinstance(values[0], dict):
            for key in values[0]:
                column = [value[key] for value in values]
                print(f"| {name}: {key} | {statistics.median(column):.1f} | {', '.join(f'{v:.1f}' for v in column)} |")
        else:
            print(f"| {name} | {statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", type=Path)
    parser.add_argument("--int8", type=Path)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--ray-images", type=int, default=2400)
    parser.add_argument("--calib-images", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", type=Path, help="Also write every figure here.")
    args = parser.parse_args()
    if os.getpid() != 1:  # not yet in namespaces of our own: run again inside them
        os.execvp(NAMESPACE[0], [*NAMESPACE, sys.executable, *sys.argv])
    measure(args)


if __name__ == "__main__":
    main()
