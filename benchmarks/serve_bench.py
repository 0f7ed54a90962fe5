"""Throughput and latency of `alexnet-export serve`, with and without dynamic batching, one command:

    python benchmarks/serve_bench.py [MODEL.onnx] [--concurrency 1,4,16] [--rounds 3] [--seconds 3]

Without MODEL it exports the seeded 1000-class model (`alexnet-export onnx`, about 40 s) to
benchmarks/work/serve/alexnet.onnx once. For each mode it starts the real server on a free
loopback port; for each concurrency C, C client threads (one keep-alive connection each) send
one-image binary requests back to back (the wire format tritonclient uses): a warm-up, then
`rounds` timed rounds. Throughput is the median over rounds; p50/p99 latency over every timed
request; mean batch is images per model run, from the server's statistics. The clients run on
the same machine as the server and take some of its CPU. Writes benchmarks/results/serve.{md,json}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "alexnet-export")
MODES = {
    "dynamic batching": ["--max-batch", "16", "--max-queue-delay-ms", "5"],
    "no batching": ["--no-batching", "--max-batch", "16"],
    "batching, 2 workers": ["--max-batch", "16", "--max-queue-delay-ms", "5", "--workers", "2"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, nargs="?")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per concurrency")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    model = args.model or default_model()
    levels = [int(c) for c in args.concurrency.split(",")]
    body, headers = request_body()
    rows = []
    for mode, options in MODES.items():
        server = Server(model, options)
        try:
            for concurrency in levels:
                row = measure(server, body, headers, concurrency, args)
                row["mode"] = mode
                rows.append(row)
                print(f"{mode:20} c={concurrency:<3} {row['images_per_s']:7.1f} img/s  p50 {row['p50_ms']:7.1f} ms"
                      f"  p99 {row['p99_ms']:7.1f} ms  mean batch {row['mean_batch']:.1f}", flush=True)
        finally:
            server.stop()
    write(args.out, model, rows, args)


def default_model() -> Path:
    path = ROOT / "benchmarks" / "work" / "serve" / "alexnet.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"$ alexnet-export onnx -o {path}", flush=True)
        subprocess.run([CLI, "onnx", "-o", str(path)], check=True)
    return path


def request_body() -> tuple[bytes, dict]:
    images = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3, 224, 224],
                                     "parameters": {"binary_data_size": images.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + images.tobytes(), {"Inference-Header-Content-Length": str(len(header)),
                                       "Content-Type": "application/octet-stream"}


class Server:
    def __init__(self, model: Path, options: list[str]):
        self.process = subprocess.Popen([CLI, "serve", str(model), "--port", "0", *options],
                                        stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:
            print(line.rstrip(), flush=True)
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                break
        else:
            raise SystemExit("the server did not start")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stats(self) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/v2/models/alexnet/stats")
        stats = json.loads(connection.getresponse().read())["model_stats"][0]
        connection.close()
        return stats

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def measure(server: Server, body: bytes, headers: dict, concurrency: int, args) -> dict:
    blast(server.port, body, headers, concurrency, args.warmup)
    before = server.stats()
    rates, latencies = [], []
    for _ in range(args.rounds):
        times = blast(server.port, body, headers, concurrency, args.seconds)
        rates.append(len(times) / args.seconds)
        latencies += times
    after = server.stats()
    runs = after["execution_count"] - before["execution_count"]
    images = after["inference_count"] - before["inference_count"]
    return {
        "concurrency": concurrency,
        "images_per_s": statistics.median(rates),
        "rounds_images_per_s": rates,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "requests": len(latencies),
        "mean_batch": images / max(runs, 1),
    }


def blast(port: int, body: bytes, headers: dict, concurrency: int, seconds: float) -> list[float]:
    """Latencies (s) of the requests that `concurrency` closed-loop clients completed within `seconds`."""
    deadline = time.perf_counter() + seconds
    results: list[list[float]] = [[] for _ in range(concurrency)]

    def client(times: list[float]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            start = time.perf_counter()
            connection.request("POST", "/v2/models/alexnet/infer", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            end = time.perf_counter()
            if response.status != 200:
                raise SystemExit(f"the server answered {response.status}")
            if end > deadline:
                break
            times.append(end - start)
        connection.close()

    threads = [threading.Thread(target=client, args=(times,)) for times in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [t for times in results for t in times]


def write(out: Path, model: Path, rows: list[dict], args) -> None:
    from alexnet_export.bench.machine import describe_machine

    out.mkdir(parents=True, exist_ok=True)
    machine = describe_machine(threads=0)  # the server uses ONNX Runtime's default: every core
    report = {"date": date.today().isoformat(), "model": model.name, "machine": machine,
              "settings": {"modes": MODES, "rounds": args.rounds, "seconds": args.seconds, "warmup": args.warmup,
                           "request": "1 image, binary FP32 in and out"}, "results": rows}
    (out / "serve.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"`alexnet-export serve {model.name}`, {report['date']}, {machine['cpu']} ({machine['cores']} cores);"
             f" clients on the same machine; one-image binary requests; median of {args.rounds} rounds of"
             f" {args.seconds:g} s after {args.warmup:g} s warm-up.", "",
             "| mode | clients | img/s | p50 ms | p99 ms | mean batch |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['concurrency']} | {r['images_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f}"
              f" | {r['mean_batch']:.1f} |" for r in rows]
    (out / "serve.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
