"""benchmarks/wrapper_overhead.py runs end to end, briefly, and prints its table with the machine's load."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_short_run_prints_one_row_per_backend_with_its_overhead(capsys):
    overhead = _load("wrapper_overhead")
    overhead.main(["--classes", "10", "--rounds", "3", "--warmup", "1", "--backends", "onnx,torch"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CPU: ") and any(line.startswith("load average (1, 5, 15 min) before") for line in lines)
    rows = {line.split()[0]: line for line in lines if re.match(r"(onnx|torch) +\d", line)}
    assert set(rows) == {"onnx", "torch"}
    assert "session.run_with_iobinding" in rows["onnx"] and re.search(r"[+-]\d+\.\d%", rows["torch"])


def test_an_unknown_backend_is_a_usage_error():
    with pytest.raises(SystemExit) as exited:
        _load("wrapper_overhead").main(["--backends", "onnx,tflite"])
    assert exited.value.code == 2
