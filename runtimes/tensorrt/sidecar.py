"""The sidecar JSON beside every engine (alexnet.engine.json): which builder made it, ahead of
time or on which GPU, the GPUs it targets, the precision, batch profile and input, and the source
ONNX with its metadata. And the check that decides, before TensorRT reads a byte of the engine,
whether it runs here. Plain JSON and pure functions: no TensorRT and no GPU needed, so every
refusal is tested on any machine with the GPU identity given.

NVIDIA's rules the check follows:
- TensorRT for RTX: engines run only with the release that built them, on the compute
  capabilities they were built for (docs.nvidia.com/deeplearning/tensorrt-rtx/latest/
  inference-library/engine-compatibility.html, .../cpu-engines.html).
- TensorRT: by default the same version and the GPU model it was built on. Hardware
  compatibility `ampere+` runs on every Ampere or newer GPU (compute capability 8.0 on),
  `same-compute-capability` on any GPU of the build GPU's compute capability
  (HardwareCompatibilityLevel in the API reference). VERSION_COMPATIBLE engines run with the
  same or a newer release of the same major version, and TensorRT 10's with TensorRT 11
  (docs.nvidia.com/deeplearning/tensorrt/latest/getting-started/support-matrix.html, "Engine
  Portability"). Not run here: no GPU and no full TensorRT on the registry this project uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alexnet_export.errors import ModelLoadError
from alexnet_export.runtimes import sidecar as sidecars
from alexnet_export.runtimes.sidecar import Sidecar, SidecarRule, sidecar_path  # noqa: F401 (the engine's sidecar path)
from alexnet_export.runtimes.tensorrt.support import TENSORRT, TENSORRT_RTX, Gpu, builder_named

SIDECAR_FORMAT = 2
REBUILD_HINT = "rebuild it with `alexnet-export trt`"
# TensorRT's HardwareCompatibilityLevel members, by the CLI's words.
HARDWARE_COMPATIBILITY = {"none": "NONE", "ampere+": "AMPERE_PLUS", "same-compute-capability": "SAME_COMPUTE_CAPABILITY"}
AMPERE = "8.0"
# TensorRT 10's version-compatible engines also run with TensorRT 11 (support matrix, "Engine Portability").
_ACROSS_MAJOR = {10: 11}


def capability_key(compute_capability: str) -> tuple[int, ...]:
    """"8.6" -> (8, 6), so that "12.0" sorts after "8.9"."""
    return tuple(int(part) for part in compute_capability.split("."))


@dataclass(frozen=True)
class Targets:
    """The GPUs an engine runs on."""

    compute_capabilities: tuple[str, ...]
    and_newer: bool = False  # every GPU from the lowest named on (hardware compatibility ampere+)
    gpu_name: str | None = None  # only this GPU model (TensorRT without hardware compatibility)
    builder_default: bool = False  # TensorRT for RTX's default set, no compute capability asked for

    def admits(self, gpu: Gpu) -> bool:
        if self.gpu_name is not None and gpu.name != self.gpu_name:
            return False
        if self.and_newer:
            return capability_key(gpu.compute_capability) >= min(map(capability_key, self.compute_capabilities))
        return gpu.compute_capability in self.compute_capabilities

    def describe(self) -> str:
        if self.gpu_name is not None:
            return f"{self.gpu_name} (compute capability {', '.join(self.compute_capabilities)}) only"
        newer = " and newer" if self.and_newer else ""
        return f"compute capability {', '.join(self.compute_capabilities)}{newer}"

    def to_json(self) -> dict:
        return {"compute_capabilities": list(self.compute_capabilities), "and_newer": self.and_newer,
                "gpu_name": self.gpu_name, "builder_default": self.builder_default}

    @classmethod
    def from_json(cls, value: dict) -> Targets:
        return cls(tuple(value["compute_capabilities"]), bool(value.get("and_newer", False)), value.get("gpu_name"),
                   bool(value.get("builder_default", False)))


def _check_fields(fields) -> None:
    builder_named(fields["builder"]["name"]), str(fields["builder"]["version"])
    Targets.from_json(fields["targets"])


def _upgrade(old: dict) -> dict:
    """Older sidecars in this one's layout. Format 1 has the same keys as 2; those written before the
    format field were full TensorRT, built on one GPU, for that GPU only."""
    if old.get("format") == 1:
        return {**old, "format": SIDECAR_FORMAT}
    if "format" in old or "tensorrt_version" not in old:
        return old
    gpu = Gpu(str(old.get("gpu_name")), str(old.get("compute_capability")))
    return {**old, "format": SIDECAR_FORMAT,
            "builder": {"name": TENSORRT.name, "version": str(old["tensorrt_version"]), "version_compatible": False},
            "ahead_of_time": False, "built_on": {"name": gpu.name, "compute_capability": gpu.compute_capability},
            "targets": Targets((gpu.compute_capability,), gpu_name=gpu.name).to_json(), "hardware_compatibility": "none"}


# The engine's own check that the pair belongs together is its build (check_runs_here), not a byte count.
SIDECAR = SidecarRule(SIDECAR_FORMAT, "an engine loads only with the sidecar of its build", REBUILD_HINT,
                      required=("builder", "targets"), check=_check_fields, upgrade=_upgrade)


def new_sidecar(*, builder: str, version: str, built_on: Gpu | None, targets: Targets,
                hardware_compatibility: str | None, version_compatible: bool, precision: str, batch: dict,
                input_tensor: dict, source_onnx: str, source_onnx_sha256: str, built_at: str,
                metadata: dict[str, str]) -> Sidecar:
    """The sidecar of a new engine; `built_on` None: built ahead of time without a GPU."""
    return sidecars.new_sidecar(
        SIDECAR, precision=precision, batch=batch, metadata=metadata,
        builder={"name": builder, "version": version, "version_compatible": version_compatible},
        ahead_of_time=built_on is None,
        built_on=None if built_on is None else {"name": built_on.name, "compute_capability": built_on.compute_capability},
        targets=targets.to_json(), hardware_compatibility=hardware_compatibility, input=input_tensor,
        source_onnx=source_onnx, source_onnx_sha256=source_onnx_sha256, built_at=built_at)


def read_sidecar(engine_path: str | Path) -> Sidecar:
    """The sidecar beside `engine_path`, checked for the keys every reader needs."""
    return sidecars.read_sidecar(engine_path, SIDECAR)


def builder_description(sidecar: Sidecar) -> str:
    """"TensorRT for RTX 1.7.1.116, ahead of time without a GPU" or "TensorRT 10.13.0 on NVIDIA L4"."""
    builder, built_on = sidecar["builder"], sidecar.get("built_on")
    where = f"on {built_on['name']}" if built_on else "ahead of time without a GPU"
    return f"{builder['name']} {builder['version']}, {where}"


def check_targets(sidecar: Sidecar, gpu: Gpu, engine: str = "this engine") -> None:
    """ModelLoadError unless `gpu` is one the engine was built for."""
    targets = Targets.from_json(sidecar["targets"])
    if not targets.admits(gpu):
        rtx = sidecar["builder"]["name"] == TENSORRT_RTX.name
        remedy = (f"rebuild it for this GPU (`alexnet-export trt --compute-capability {gpu.compute_capability}`"
                  f" where TensorRT for RTX supports it, else `--builder tensorrt` on this GPU)" if rtx
                  else f"{REBUILD_HINT} on this GPU")
        raise ModelLoadError(f"{engine} targets {targets.describe()} ({builder_description(sidecar)}); this GPU is"
                             f" {gpu.describe()}: {remedy}")


def check_builder_version(sidecar: Sidecar, installed: str, engine: str = "this engine") -> None:
    """ModelLoadError unless the installed builder (same kind as the sidecar's) runs the engine."""
    builder = sidecar["builder"]
    built, compatible = str(builder["version"]), bool(builder.get("version_compatible"))
    if runs_with(built, installed, compatible):
        return
    allowed = f"{builder['name']} {built} and newer {_majors(built)}" if compatible else f"{builder['name']} {built} only"
    raise ModelLoadError(f"{engine} was built by {builder_description(sidecar)} and runs with {allowed};"
                         f" this machine has {builder['name']} {installed}: {REBUILD_HINT} here, or install"
                         f" {builder['name']} {built}")


def runs_with(built: str, installed: str, version_compatible: bool) -> bool:
    """Whether an engine built by version `built` runs with version `installed` of the same builder."""
    if not version_compatible:
        return built == installed
    made, have = _version_key(built), _version_key(installed)
    return have >= made and have[0] in (made[0], _ACROSS_MAJOR.get(made[0]))


def _majors(version: str) -> str:
    major = _version_key(version)[0]
    later = _ACROSS_MAJOR.get(major)
    return f"{major}.x" + (f" or {later}.x" if later else "")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def check_runs_here(sidecar: Sidecar, gpu: Gpu, installed: str, engine: str = "this engine") -> None:
    """Both checks, targets first: what the runtime asks before it deserialises anything."""
    check_targets(sidecar, gpu, engine)
    check_builder_version(sidecar, installed, engine)
