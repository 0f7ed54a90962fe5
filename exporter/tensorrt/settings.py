"""TensorRT build settings: what an engine build is asked (batch range, workspace, builder, targets),
checked before any work, and the GPUs each builder's settings make an engine target.

TensorRT for RTX builds ahead of time for compute capabilities (by default its own set, Turing
only when asked); TensorRT builds for the GPU it runs on, or wider with hardware compatibility.
exporter/tensorrt/convert.py builds the engine with these settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alexnet_export.errors import ArgumentError, ExportError
from alexnet_export.runtimes.tensorrt.sidecar import AMPERE, HARDWARE_COMPATIBILITY, Targets, capability_key
from alexnet_export.runtimes.tensorrt.support import BUILDER_WORDS, Gpu, builder_of, tensorrt_log, tensorrt_name

# NVIDIA builds for Turing only when asked: "NVIDIA Turing devices are not supported without further
# configuration" (TensorRT for RTX, cpu-engines.html); every other compute capability the builder knows
# is in its default set.
TURING = "7.5"
_CAPABILITY = re.compile(r"^\d+\.\d$")


@dataclass(frozen=True)
class BuildSettings:
    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    workspace_mib: int = 1024
    builder: str | None = None  # "tensorrt" or "tensorrt-rtx"; None: TensorRT if installed, else TensorRT for RTX
    compute_capabilities: tuple[str, ...] = ()  # TensorRT for RTX's targets, "8.6"...; (): the builder's default set
    hardware_compatibility: str = "none"  # TensorRT: none, ampere+ or same-compute-capability
    version_compatible: bool = False  # TensorRT: the engine also runs with later releases

    def __post_init__(self):
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            batches = f"min={self.min_batch}, opt={self.opt_batch}, max={self.max_batch}"
            raise ArgumentError(f"batch sizes need 1 <= min <= opt <= max; got {batches}")
        if self.workspace_mib < 1:
            raise ArgumentError(f"workspace is {self.workspace_mib} MiB; expected at least 1", argument="workspace")
        if self.builder is not None and self.builder not in BUILDER_WORDS:
            raise ArgumentError(f"builder {self.builder!r} is unknown; expected one of {', '.join(BUILDER_WORDS)}",
                                argument="builder")
        malformed = [str(value) for value in self.compute_capabilities if not _CAPABILITY.match(str(value))]
        if malformed:
            raise ArgumentError(f"compute capability {', '.join(malformed)} is not a MAJOR.MINOR number like 8.6",
                                argument="compute_capabilities")
        if len(set(self.compute_capabilities)) != len(self.compute_capabilities):
            raise ArgumentError(f"compute capabilities {', '.join(self.compute_capabilities)} name one twice",
                                argument="compute_capabilities")
        if self.hardware_compatibility not in HARDWARE_COMPATIBILITY:
            raise ArgumentError(f"hardware compatibility {self.hardware_compatibility!r} is unknown; expected one of"
                                f" {', '.join(HARDWARE_COMPATIBILITY)}", argument="hardware_compatibility")

    @property
    def batch(self) -> dict:
        return {"min": self.min_batch, "opt": self.opt_batch, "max": self.max_batch}


def check_build_settings(trt, settings: BuildSettings) -> None:
    """Each builder's own options, refused on the other one, and compute capabilities the builder
    does not know: what can be checked before any work."""
    name = tensorrt_name(trt)
    if builder_of(trt).ahead_of_time:
        if settings.hardware_compatibility != "none":
            raise ArgumentError(f"hardware compatibility is TensorRT's; {name} targets compute capabilities"
                                " instead", argument="hardware_compatibility")
        if settings.version_compatible:
            raise ArgumentError(f"{name} has no version-compatible engines: its engines run only with the release"
                                " that built them", argument="version_compatible")
        known = builder_capabilities(trt)
        unknown = [cc for cc in settings.compute_capabilities if cc not in known]
        if unknown:
            raise ArgumentError(f"{name} does not build for compute capability {', '.join(unknown)}; it builds for"
                                f" {', '.join(known)}", argument="compute_capabilities")
    elif settings.compute_capabilities:
        raise ArgumentError(f"{name} builds for the GPU it runs on; compute capabilities are TensorRT for RTX's"
                            " (or use hardware_compatibility)", argument="compute_capabilities")


def builder_capabilities(trt) -> dict[str, object]:
    """TensorRT for RTX's ComputeCapability members by number: {"7.5": SM75, "8.0": SM80, ...}."""
    found = {}
    for member_name, member in trt.ComputeCapability.__members__.items():
        digits = member_name.removeprefix("SM")
        if digits.isdigit():  # not NONE or CURRENT (CURRENT builds on and for the GPU present: not ahead of time)
            found[f"{digits[:-1]}.{digits[-1]}"] = member
    return dict(sorted(found.items(), key=lambda item: capability_key(item[0])))


def default_targets(trt) -> Targets:
    """What an engine targets when no compute capability is asked for, read from the builder."""
    if not builder_of(trt).ahead_of_time:
        raise ExportError(f"{tensorrt_name(trt)} targets the GPU it builds on", argument="builder")
    return Targets(tuple(cc for cc in builder_capabilities(trt) if cc != TURING), builder_default=True)


def rtx_targets(trt, config, settings: BuildSettings) -> Targets:
    if not settings.compute_capabilities:
        return default_targets(trt)  # the config's list stays empty: the builder's own default
    known = builder_capabilities(trt)  # check_build_settings refused the others
    wanted = sorted(settings.compute_capabilities, key=capability_key)
    config.num_compute_capabilities = len(wanted)
    for index, cc in enumerate(wanted):
        if not config.set_compute_capability(known[cc], index):
            raise ExportError(f"{tensorrt_name(trt)} refused compute capability {cc}: {tensorrt_log(trt).errors()}",
                              argument="compute_capabilities")
    by_member = {member: cc for cc, member in known.items()}
    return Targets(tuple(by_member[config.get_compute_capability(i)] for i in range(config.num_compute_capabilities)))


def gpu_targets(trt, config, settings: BuildSettings, gpu: Gpu) -> Targets:
    level = settings.hardware_compatibility
    if level == "ampere+" and capability_key(gpu.compute_capability) < capability_key(AMPERE):
        raise ExportError(f"hardware compatibility ampere+ is built on an Ampere or newer GPU (compute capability"
                          f" {AMPERE} on); this one is {gpu.describe()}", argument="hardware_compatibility")
    if level != "none":
        member = getattr(trt.HardwareCompatibilityLevel, HARDWARE_COMPATIBILITY[level], None)
        if member is None:
            raise ExportError(f"{tensorrt_name(trt)} has no hardware compatibility level {level}",
                              argument="hardware_compatibility")
        config.hardware_compatibility_level = member
    if settings.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if level == "ampere+":
        return Targets((AMPERE,), and_newer=True)
    return Targets((gpu.compute_capability,), gpu_name=gpu.name if level == "none" else None)
