"""The light install (no export extra) in a fresh virtual environment, made once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def light_wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from this checkout (pure Python, so it installs on any platform)."""
    folder = tmp_path_factory.mktemp("wheel")
    # In pip's isolated build environment (pyproject's setuptools>=69): a fresh venv's own setuptools
    # (65 on Python 3.11) cannot build wheels.
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(folder)],
                           capture_output=True, text=True)
    if built.returncode:
        pytest.fail(f"pip wheel of this checkout failed: {built.stderr[-2000:]}")
    (wheel,) = folder.glob("alexnet_export-*.whl")
    return wheel


@pytest.fixture(scope="session")
def light_venv(tmp_path_factory, light_wheel) -> Path:
    """A fresh virtual environment with `pip install alexnet-export` and nothing else: its bin folder."""
    venv = tmp_path_factory.mktemp("light") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(light_wheel)],
                               capture_output=True, text=True)
    if installed.returncode:
        pytest.fail(f"pip install of the light wheel failed: {installed.stderr[-2000:]}")
    return venv / "bin"


@pytest.fixture(scope="session")
def aarch64_sandbox(light_wheel):
    """The aarch64 sandbox (bench/aarch64_sandbox.sh) with the light wheel's requirements, built once
    and cached between runs; skips, with the script's reason, where this machine cannot build it."""
    from alexnet_export.bench.aarch64 import SandboxUnavailable, make_sandbox
    from alexnet_export.bench.aarch64_wheels import wheel_requirements

    try:
        return make_sandbox(requirements=wheel_requirements(light_wheel))
    except SandboxUnavailable as exc:
        pytest.skip(f"no aarch64 sandbox on this machine: {exc}")


@pytest.fixture(scope="session")
def ncnn_pairs(request) -> dict:
    """{"ncnn-int8": .int8.ncnn.param} (tests/conftest.py's int8_ncnn); {} where ncnn is not installed (the
    sandbox then has no ncnn either). The INT8 pair only: its ARM kernels are the ones that differ, and the
    FP32 pair's 181 MB under emulation would cost CI about a minute (docs/ncnn.md has the FP32 figures,
    measured by hand)."""
    try:
        import ncnn  # noqa: F401
    except ImportError:
        return {}
    return {"ncnn-int8": request.getfixturevalue("int8_ncnn").path}
