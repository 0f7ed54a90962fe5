"""Cold start and peak memory, measured in a fresh interpreter as an app would pay them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alexnet_export.bench.results import ColdStart

# Runs in the child: import, load, first inference (timed together), then one run per batch
# size so the peak resident memory includes the largest batch.
_CHILD = r"""
import json, sys, time
start = time.perf_counter()
from alexnet_export.runtimes.registry import open_runtime
runtime = open_runtime(sys.argv[1], **json.loads(sys.argv[2]))
runtime.predict(runtime.zeros())
cold = time.perf_counter() - start
for size in json.loads(sys.argv[3]):
    runtime.predict(runtime.zeros(size))
# VmHWM is this process's own high-water mark; ru_maxrss would carry the forking parent's.
try:
    status = open("/proc/self/status").read()
    kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
except (OSError, StopIteration):
    import resource
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": cold, "peak_rss_mb": kib / 1024}))
"""


def cold_start(path: Path, options: dict, batch_sizes: list[int], timeout: float = 600) -> ColdStart:
    """The cold start and peak memory of `path` opened with `options` (JSON values), or the child's error."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), json.dumps(options), json.dumps(batch_sizes)],
        capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return ColdStart(error=lines[-1] if lines else f"exit {result.returncode}")
    return ColdStart(**json.loads(result.stdout.strip().splitlines()[-1]))
