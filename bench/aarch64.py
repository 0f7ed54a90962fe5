"""Model files on ONNX Runtime's (or LiteRT's, or ExecuTorch's) aarch64 kernels, under emulation on an x86_64 Linux
machine, compared with this machine's: `alexnet-export verify --on aarch64` and tests/edge/test_aarch64.py.

bench/aarch64_sandbox.sh makes the sandbox from the package registries (cached in a folder):
Debian's arm64 Python 3.11 run by qemu-aarch64, with the aarch64 wheels of the light install.
The toolkit goes in beside it: a wheel's contents, or a copy of the running package. One emulated
interpreter runs every file of a check (bench/aarch64_runner.py), since starting it and importing
ONNX Runtime takes seconds under emulation. What goes in, pinned to this machine's releases, is
bench/aarch64_wheels.py's: ONNX Runtime, numpy and Pillow (and LiteRT's interpreter, where it is
installed here); for .pte files a layer with ExecuTorch and torch, made the first time one is checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.resources import as_file, files
from pathlib import Path
from typing import Sequence

import numpy as np

from alexnet_export.bench.aarch64_wheels import LAYERS, Layer, installed_requirements, pins
from alexnet_export.errors import AlexNetExportError, ArgumentError, InputError
from alexnet_export.events import Listener, Step, ignore
from alexnet_export.models.precisions import ParityGate, gate_for
from alexnet_export.runtimes.verification.parity import ParityReport, compare_logits
from alexnet_export.runtimes.preprocess import preprocess_readable

PLATFORM = "aarch64"
DEFAULT_FOLDER_ENV = "ALEXNET_EXPORT_AARCH64_DIR"
# The runner's layers: what the emulated interpreter imports of the toolkit.
RUNNER_PACKAGES = ("alexnet_export.models", "alexnet_export.runtimes", "alexnet_export.bench")
CANNOT_BUILD_HERE = 2  # the script's exit status for "this machine cannot make the sandbox"


class SandboxUnavailable(AlexNetExportError, RuntimeError):
    """This machine cannot make the aarch64 sandbox (not x86_64 Linux, no apt-get, no network)."""


class SandboxError(AlexNetExportError, RuntimeError):
    """Making the sandbox, or running a file in it, failed."""


@dataclass(frozen=True)
class Sandbox:
    python: Path  # the emulated interpreter's launcher (FOLDER/bin/python3)
    folder: Path


@dataclass(frozen=True)
class Run:
    """One file's results on aarch64."""

    logits: np.ndarray
    classified: list  # per image, top-k [label, probability] pairs
    precision: str
    device: str
    labels: list  # the file's class names, as read there


@dataclass(frozen=True)
class Runs:
    files: tuple[Run, ...]
    machine: str  # what the emulated interpreter reports: "aarch64"
    onnxruntime: str
    seconds: float  # the emulated process, start to end


@dataclass(frozen=True)
class PlatformCheck:
    """A file on this machine's CPU kernels against the same file on aarch64's, same inputs."""

    model: str
    platform: str
    here: str  # this machine and its ONNX Runtime, e.g. "x86_64, ONNX Runtime 1.31.1"
    there: str
    precision: str
    gate: ParityGate
    report: ParityReport
    failures: tuple[str, ...]  # empty when the file passed its gate there
    skipped: tuple[str, ...]  # unreadable images
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"model": self.model, "platform": self.platform, "here": self.here, "there": self.there,
                "precision": self.precision, "gate": self.gate.name, "passed": self.passed,
                "failures": list(self.failures), "report": self.report.__dict__, "skipped": list(self.skipped),
                "seconds": self.seconds}


def default_folder() -> Path:
    return Path(os.environ.get(DEFAULT_FOLDER_ENV) or Path.home() / ".cache" / "alexnet-export" / PLATFORM)


def make_sandbox(folder: str | Path | None = None, requirements: Sequence[str] | None = None,
                 layer: Layer | None = None, on_event: Listener = ignore) -> Sandbox:
    """Builds (or finds, cached) the sandbox in `folder` with `requirements` (default: the installed
    toolkit's own) plus the pins, and `layer` over them where given (its interpreter is the one
    returned); SandboxUnavailable says in one line why this machine cannot."""
    folder = Path(folder) if folder is not None else default_folder()
    if requirements is None:
        requirements = installed_requirements()
    try:
        layer_arguments = layer.arguments() if layer else []
    except PackageNotFoundError as exc:
        raise SandboxUnavailable(f"{exc.name} is not installed here: no release of it to pin there") from None
    bash = shutil.which("bash")
    if bash is None:
        raise SandboxUnavailable(f"the {PLATFORM} sandbox needs bash, which this machine lacks")
    with as_file(files("alexnet_export.bench") / "aarch64_sandbox.sh") as script:
        process = subprocess.Popen([bash, str(script), str(folder), *requirements, *pins(), *layer_arguments],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHON": sys.executable})
        last = ""
        for line in process.stderr:  # progress, one line per stage; the last is the failure
            last = line.strip() or last
            on_event(Step(last.removeprefix("aarch64 sandbox: ")))
        output = process.stdout.read()
        status = process.wait()
    if status == CANNOT_BUILD_HERE:
        raise SandboxUnavailable(last)
    if status:
        raise SandboxError(last or f"the aarch64 sandbox script failed with exit status {status}")
    return Sandbox(Path(output.strip().splitlines()[-1]), folder)


def stage_toolkit(destination: Path, wheel: str | Path | None = None) -> Path:
    """The toolkit for the emulated interpreter's path: a (pure Python) wheel unpacked, or, without
    one, the running package's modules that the runner imports; compiled here, since this
    interpreter's bytecode is what an emulated Python 3.11 reads, and compiling there is slow."""
    import compileall

    destination.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(destination)
    else:
        root = Path(importlib.util.find_spec("alexnet_export").submodule_search_locations[0])
        package = destination / "alexnet_export"
        package.mkdir()
        for module in root.glob("*.py"):
            shutil.copy2(module, package / module.name)
        for name in RUNNER_PACKAGES:
            source = Path(importlib.util.find_spec(name).submodule_search_locations[0])
            shutil.copytree(source, package / name.rsplit(".", 1)[1], ignore=shutil.ignore_patterns("__pycache__"))
    if sys.version_info[:2] == (3, 11):
        compileall.compile_dir(destination, quiet=2)
    return destination


def run_files(sandbox: Sandbox, toolkit: Path, items: Sequence[dict], arrays: dict[str, np.ndarray],
              timeout: float = 1800) -> Runs:
    """Runs `items` (the runner's job entries: model, input, classify, top_k) in one emulated process."""
    import time

    with tempfile.TemporaryDirectory(prefix="aarch64-job-") as work:
        work = Path(work)
        np.savez(work / "in.npz", **arrays)
        job = {"inputs": str(work / "in.npz"), "output": str(work / "out.npz"), "report": str(work / "out.json"),
               "files": [{**item, "model": str(Path(item["model"]).resolve()),
                          "classify": [str(Path(p).resolve()) for p in item.get("classify", [])]} for item in items]}
        (work / "job.json").write_text(json.dumps(job))
        started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(toolkit)}
        env.pop("ALEXNET_EXPORT_TRUSTED_KEY", None)  # the file was checked here before it went there
        try:
            result = subprocess.run([str(sandbox.python), "-m", "alexnet_export.bench.aarch64_runner",
                                     str(work / "job.json")], capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise SandboxError(f"the emulated run took more than {timeout:g} s") from None
        seconds = time.perf_counter() - started
        if result.returncode:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            raise SandboxError(f"the emulated run failed (exit status {result.returncode}): "
                               f"{lines[-1] if lines else 'no message'}")
        report = json.loads((work / "out.json").read_text())
        with np.load(work / "out.npz") as out:
            logits = [out[f"logits_{i}"] for i in range(len(items))]
    runs = tuple(Run(logits[i], entry["classified"], entry["precision"], entry["device"], entry["labels"])
                 for i, entry in enumerate(report["files"]))
    return Runs(runs, report["machine"], report["onnxruntime"], seconds)


def check_on_aarch64(model: str | Path, images: Sequence[str | Path], *, folder: str | Path | None = None,
                     trusted_key: str | Path | None = None, on_event: Listener = ignore) -> PlatformCheck:
    """Runs `model` (a kind the backend table marks `aarch64`: .onnx, .ort, .tflite, .pte) on `images` here, on the CPU, and on aarch64 under
    emulation, and compares the logits by the gate of the file's precision (models/precisions.py)."""
    from alexnet_export.runtimes.table import BACKENDS, backend_for, file_kinds
    from alexnet_export.runtimes.registry import open_runtime

    model = Path(model)
    backend = backend_for(model)
    if not backend.aarch64:
        kinds = file_kinds([b for b in BACKENDS if b.aarch64])
        raise ArgumentError(f"{model} is {backend.description}; the {PLATFORM} check runs {kinds}",
                            argument="model")
    # This machine's CPU kernels against aarch64's: a GPU here would measure the GPU instead.
    runtime = open_runtime(model, trusted_key=trusted_key, **backend.taken(providers=["CPUExecutionProvider"]))
    inputs, _, skipped = preprocess_readable(list(images), runtime.metadata.preprocessing)
    if not len(inputs):
        raise InputError(f"none of the {len(images)} images could be read"
                         + (f" (first problem: {skipped[0]})" if skipped else ""), argument="images")
    here = runtime.predict_in_allowed_batches(inputs)
    sandbox = make_sandbox(folder, layer=LAYERS.get(backend.name), on_event=on_event)
    on_event(Step(f"running {model.name} on {len(inputs)} images on {PLATFORM} under emulation"))
    with tempfile.TemporaryDirectory(prefix="aarch64-toolkit-") as toolkit:
        runs = run_files(sandbox, stage_toolkit(Path(toolkit)), [{"model": model, "input": "x"}], {"x": inputs})
    gate = gate_for(runtime.precision)
    report = compare_logits(here, runs.files[0].logits)
    return PlatformCheck(
        model=str(model), platform=PLATFORM,
        here=f"{platform.machine()}, {_runs_on(backend.name, runtime.device)}",
        there=f"{runs.machine} under {qemu_version(sandbox)}, {_runs_on(backend.name, runs.files[0].device, runs)}",
        precision=runtime.precision, gate=gate, report=report, failures=tuple(report.failures(gate)),
        skipped=tuple(skipped), seconds=runs.seconds)


def _runs_on(backend: str, device: str, runs: Runs | None = None) -> str:
    """What ran the file: "ONNX Runtime 1.31.1, CPUExecutionProvider", or the LiteRT or ExecuTorch runtime's device."""
    if backend not in ("onnx", "ort"):
        return device
    if runs is None:
        import onnxruntime

        return f"ONNX Runtime {onnxruntime.__version__}, {device}"
    return f"ONNX Runtime {runs.onnxruntime}, {device}"


def qemu_version(sandbox: Sandbox) -> str:
    """"qemu-aarch64 10.0.13", as the sandbox's stamp records the Debian package."""
    stamp = (sandbox.folder / "root.stamp").read_text().splitlines()
    found = next((line.split("=", 1)[1] for line in stamp if line.startswith("qemu-user=")), "unknown")
    return f"qemu-aarch64 {found.split(':')[-1].split('+')[0]}"
