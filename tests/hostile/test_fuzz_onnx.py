"""Byte-mutated copies of an exported model, each loaded and run in a sandboxed child process.

CI runs 24 cases; the full run is
    ALEXNET_FUZZ_CASES=1000 ALEXNET_FUZZ_REPORT=fuzz.json .venv/bin/python -m pytest tests/hostile/test_fuzz_onnx.py --slow -s
"""

import json
import os
from collections import Counter

import numpy as np
import pytest

from alexnet_export.errors import ModelLoadError
from alexnet_export.runtimes.untrusted import CRASH, RAN, TIMEOUT, UNEXPECTED_ERROR, load_untrusted, probe

FUZZ_SEED = 20261127


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """A few bytes changed, mostly where the graph's structure lives (the start: nodes; the end:
    inputs, outputs, opsets, metadata); sometimes a truncation."""
    if rng.random() < 0.1:
        return data[: int(rng.integers(0, len(data)))]
    buffer = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        region = rng.random()
        if region < 0.4:
            position = int(rng.integers(0, min(4096, len(buffer))))
        elif region < 0.8:
            position = int(rng.integers(max(0, len(buffer) - 65536), len(buffer)))
        else:
            position = int(rng.integers(0, len(buffer)))
        buffer[position] = int(rng.integers(0, 256)) if rng.random() < 0.5 else buffer[position] ^ (1 << int(rng.integers(0, 8)))
    return bytes(buffer)


def _fuzz(model_path, folder, cases: int) -> dict:
    data = model_path.read_bytes()
    rng = np.random.default_rng(FUZZ_SEED)
    counts, findings = Counter(), []
    refused_one = False
    for index in range(cases):
        path = folder / "case.onnx"
        path.write_bytes(mutate(data, rng))
        result = probe(path, timeout_s=90)
        counts[result.outcome] += 1
        if result.outcome in (CRASH, TIMEOUT, UNEXPECTED_ERROR):
            keep = folder / f"case-{index:04d}.onnx"
            path.rename(keep)
            findings.append({"case": index, "outcome": result.outcome, "detail": result.detail, "file": str(keep)})
        elif result.outcome != RAN and not refused_one:
            with pytest.raises(ModelLoadError, match="refused"):
                load_untrusted(path)
            refused_one = True
    report = {"cases": cases, "seed": FUZZ_SEED, "outcomes": dict(counts), "findings": findings}
    print(json.dumps(report, indent=2))
    if os.environ.get("ALEXNET_FUZZ_REPORT"):
        with open(os.environ["ALEXNET_FUZZ_REPORT"], "w") as handle:
            json.dump(report, handle, indent=2)
    return report


def _check(report):
    assert sum(report["outcomes"].values()) == report["cases"]  # the parent survived every case
    # Every Python-level failure must surface as one of our clean errors; crashes and hangs are
    # ONNX Runtime's and are contained by the child process.
    assert report["outcomes"].get(UNEXPECTED_ERROR, 0) == 0, report["findings"]


def test_fuzz_reduced(small_onnx, tmp_path):
    _check(_fuzz(small_onnx, tmp_path, int(os.environ.get("ALEXNET_FUZZ_CASES", "24"))))


@pytest.mark.slow
def test_fuzz_full(small_onnx, tmp_path):
    _check(_fuzz(small_onnx, tmp_path, max(1000, int(os.environ.get("ALEXNET_FUZZ_CASES", "1000")))))


def test_probe_contains_a_crashing_child(tmp_path, monkeypatch):
    """A child that dies of a signal is reported as a crash, and the caller lives on."""
    import alexnet_export.runtimes.untrusted as untrusted

    monkeypatch.setattr(untrusted, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    result = untrusted.probe(tmp_path / "any.onnx")
    assert result.outcome == CRASH and "signal 11" in result.detail
    with pytest.raises(ModelLoadError, match="crash"):
        untrusted.load_untrusted(tmp_path / "any.onnx")


def test_cli_sandbox_refuses_a_broken_model_and_runs_a_good_one(cli, small_onnx, tmp_path):
    from PIL import Image

    Image.new("RGB", (50, 40), "blue").save(tmp_path / "x.png")
    (tmp_path / "broken.onnx").write_bytes(small_onnx.read_bytes()[:5000])
    bad = cli("predict", "broken.onnx", "x.png", "--sandbox", cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "refused broken.onnx: in a sandboxed trial it gave a clean error" in bad.stderr
    good = cli("predict", small_onnx, "x.png", "--sandbox", "--top-k", "1", cwd=tmp_path)
    assert good.returncode == 0 and "%" in good.stdout


def test_sandbox_probes_a_pixel_file_with_pixels(cli, pixel_onnx, tmp_path):
    """The sandbox's probe feeds each file the input it takes: a valid uint8 pixel file runs."""
    from PIL import Image

    assert probe(pixel_onnx).outcome == RAN
    Image.new("RGB", (300, 260), "green").save(tmp_path / "x.png")
    result = cli("predict", pixel_onnx, "x.png", "--sandbox", "--top-k", "1", cwd=tmp_path)
    assert result.returncode == 0 and "%" in result.stdout, result.stderr
