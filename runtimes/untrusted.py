"""Load model files from elsewhere without risking the calling process.

A malformed ONNX file can crash or hang ONNX Runtime's native code, which no Python `except`
catches. `probe` loads the file and runs one inference in a child process under memory and
time limits and reports what happened; `load_untrusted` loads it in-process only when the
probe ran cleanly. Imports nothing beyond the standard library until the file has passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from alexnet_export.errors import ModelLoadError

RAN, CLEAN_ERROR, UNEXPECTED_ERROR, CRASH, TIMEOUT = "ran", "clean error", "unexpected error", "crash", "timeout"
_EXIT_CLEAN, _EXIT_UNEXPECTED = 3, 4

_CHILD = r"""
import sys
from alexnet_export.errors import AlexNetExportError
try:
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime
    runtime = OnnxRuntime(sys.argv[1], providers=["CPUExecutionProvider"], threads=1)
    runtime.predict(runtime.zeros())
except AlexNetExportError as exc:
    print(exc)
    sys.exit(3)
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(4)
"""


@dataclass(frozen=True)
class ProbeResult:
    outcome: str  # one of RAN, CLEAN_ERROR, UNEXPECTED_ERROR, CRASH, TIMEOUT
    detail: str


def probe(path: str | Path, *, timeout_s: float = 120, memory_mb: int = 4096) -> ProbeResult:
    """Load `path` and run one inference in a child process limited to `memory_mb` of address
    space and `timeout_s` seconds."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=timeout_s,
            preexec_fn=_limits(memory_mb) if os.name == "posix" else None,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(TIMEOUT, f"no answer within {timeout_s:.0f}s")
    detail = " ".join((result.stdout or result.stderr).split())[-300:]
    if result.returncode == 0:
        return ProbeResult(RAN, "")
    if result.returncode == _EXIT_CLEAN:
        return ProbeResult(CLEAN_ERROR, detail)
    if result.returncode == _EXIT_UNEXPECTED:
        return ProbeResult(UNEXPECTED_ERROR, detail)
    how = f"signal {-result.returncode}" if result.returncode < 0 else f"exit {result.returncode}"
    return ProbeResult(CRASH, f"{how}: {' '.join(result.stderr.split())[-300:]}")


def load_untrusted(path: str | Path, *, timeout_s: float = 120, memory_mb: int = 4096,
                   trusted_key: str | Path | None = None, **options):
    """An OnnxRuntime for `path`, after a child process loaded and ran it without harm; with
    `trusted_key` (or $ALEXNET_EXPORT_TRUSTED_KEY) its signature is verified before either."""
    from alexnet_export.runtimes.signing import check_before_open

    check_before_open(path, trusted_key)
    result = probe(path, timeout_s=timeout_s, memory_mb=memory_mb)
    if result.outcome != RAN:
        raise ModelLoadError(f"refused {path}: in a sandboxed trial it gave a {result.outcome} ({result.detail})")
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime

    return OnnxRuntime(path, **options)


def _limits(memory_mb: int):
    def apply() -> None:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dumps from crashing children

    return apply
