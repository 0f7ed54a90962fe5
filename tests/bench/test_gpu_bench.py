"""benchmarks/gpu_bench.py where there is no GPU: it refuses in one line, before making any file."""

import subprocess
import sys
from pathlib import Path

import pytest

from alexnet_export.bench.device import cuda_available

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_bench.py"


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA: the script would run")
def test_without_cuda_it_refuses_and_says_how_to_check_it(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("gpu_bench.py needs a CUDA GPU: torch sees no CUDA GPU; run it on the GPU host,"
                                     " or --dry-run to check it here")
    assert not (tmp_path / "out").exists()
