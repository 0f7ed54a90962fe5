"""Kills, full disks, read-only folders and long runs."""

import os
import signal
import subprocess
import threading
import time

import numpy as np
import onnx
import pytest

from alexnet_export.errors import ExportError
from alexnet_export.exporter.onnx.convert import export_onnx
from alexnet_export.runtimes import OnnxRuntime
from alexnet_export.runtimes.preprocess import preprocess_batch


def _mount_tmpfs(folder, options):
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()}): needs root in a sandbox")
    return folder


@pytest.fixture
def tiny_disk(tmp_path):
    folder = _mount_tmpfs(tmp_path / "tiny", "size=20m")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def read_only_folder(tmp_path):
    folder = _mount_tmpfs(tmp_path / "ro", "size=1m,ro")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_full_disk_is_one_line_and_leaves_nothing(tiny_disk, small_model, small_metadata, cli):
    (tiny_disk / "model.onnx").write_bytes(b"previous")
    with pytest.raises(ExportError, match="cannot write .*model.onnx: No space left on device; nothing was written"):
        export_onnx(small_model, tiny_disk / "model.onnx", small_metadata, verify=False)
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["model.onnx"]
    assert (tiny_disk / "model.onnx").read_bytes() == b"previous"
    result = cli("onnx", "--num-classes", "10", "--no-verify", "-o", tiny_disk / "cli.onnx")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "No space left on device" in result.stderr.strip().splitlines()[-1]
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["model.onnx"]


def test_read_only_folder_is_one_line(read_only_folder, cli):
    result = cli("onnx", "--num-classes", "10", "-o", read_only_folder / "m.onnx")
    # known before any work (exporter/arguments.py tries the folder first): a usage mistake naming --output
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot write in the output folder" in last and last.endswith("(--output)")
    assert list(read_only_folder.iterdir()) == []


@pytest.mark.parametrize("delay", [1.5, 4.0, 6.5])
def test_sigkill_during_export_never_leaves_a_partial_model(tmp_path, small_onnx, delay, console):
    from alexnet_export.hashing import file_sha256

    target = tmp_path / "model.onnx"
    target.write_bytes(small_onnx.read_bytes())  # the previous, good version
    old = file_sha256(target)
    _run_and_kill([console, "onnx", "--num-classes", "10", "--seed", "5", "-o", str(target)], tmp_path, delay)
    if file_sha256(target) != old:  # the kill came after the rename: then it is the whole new model
        onnx.checker.check_model(str(target), full_check=True)
        OnnxRuntime(target).predict(np.zeros((1, 3, 224, 224), np.float32))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.onnx"]
    assert all(name.startswith(".model.onnx.") and name.endswith(".partial") for name in leftovers), leftovers


def test_sigkill_during_calibration_leaves_only_whole_cache_files(tmp_path, calib_dir, console):
    import json

    cache = tmp_path / "cache"
    command = [console, "onnx", "--num-classes", "10", "--precision", "int8", "--calib-dir", str(calib_dir),
               "--calib-count", "64", "--cache-dir", str(cache), "-o", str(tmp_path / "m.onnx")]
    _run_and_kill(command, tmp_path, 9.0)
    for path in cache.glob("*.json") if cache.exists() else []:
        json.loads(path.read_text())  # complete, or not there at all
    assert not (tmp_path / "m.onnx").exists() or onnx.load(str(tmp_path / "m.onnx"))


def _run_and_kill(command, cwd, delay):
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _soak(runtime, images, predictions):
    def rss_kib():
        with open("/proc/self/status") as handle:
            return int(next(line.split()[1] for line in handle if line.startswith("VmRSS")))

    batch = preprocess_batch(images[:1], runtime.metadata.preprocessing)
    warm = max(50, predictions // 10)
    for _ in range(warm):
        runtime.predict(batch)
    start_rss, start_fds, start_threads = rss_kib(), len(os.listdir("/proc/self/fd")), threading.active_count()
    samples = []
    for index in range(predictions):
        runtime.predict(batch)
        if index % max(1, predictions // 10) == 0:
            samples.append(rss_kib())
    return start_rss, samples, rss_kib(), start_fds, len(os.listdir("/proc/self/fd")), start_threads, threading.active_count()


def _check_soak(report):
    start_rss, samples, end_rss, start_fds, end_fds, start_threads, end_threads = report
    print(f"RSS after warm-up {start_rss / 1024:.1f} MB, samples {[round(s / 1024, 1) for s in samples]} MB,"
          f" end {end_rss / 1024:.1f} MB; fds {start_fds}->{end_fds}; threads {start_threads}->{end_threads}")
    assert end_rss - start_rss < 20 * 1024  # a plateau: under 20 MB of drift
    assert end_fds == start_fds and end_threads == start_threads


def test_soak_reduced(onnx_runtime, real_images):
    _check_soak(_soak(onnx_runtime, real_images, 300))


@pytest.mark.slow
def test_soak_full(onnx_runtime, real_images):
    _check_soak(_soak(onnx_runtime, real_images, 10_000))
