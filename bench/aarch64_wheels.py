"""What the aarch64 sandbox (bench/aarch64_sandbox.sh) installs: the light install's requirements,
what computes the logits pinned to this machine's releases (so a difference is the platform's, not a
release's), and per backend the layer of heavier wheels its runtime needs there."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

# What computes the logits, pinned to this machine's release (distribution names as pip takes them): the
# light install's runtime and image libraries, then `pinned()` adds the runtimes of the backend table's
# kinds that `verify --on aarch64` runs without a layer of their own (LiteRT's interpreter and the like: light
# wheels with aarch64 builds), each where it is installed here.
CORE_PINNED = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu"), "numpy": ("numpy",), "pillow": ("pillow",)}


@dataclass(frozen=True)
class Layer:
    """One runtime's heavier wheels over the sandbox's site, made only when a file of it is checked:
    `pinned` with their dependencies, `no_deps` without theirs; each pinned to this machine's release."""

    name: str
    pinned: tuple[str, ...]
    no_deps: tuple[str, ...]

    def arguments(self) -> list[str]:
        """The script's arguments for it; PackageNotFoundError names a distribution not installed here."""
        return ["--layer", self.name, *map(pin, self.pinned), "--no-deps", *map(pin, self.no_deps)]


# Per backend (runtimes/table.py names), the layer its runtime needs there. ExecuTorch's Python
# bindings link libtorch, and PyPI's only aarch64 torch wheel is a CUDA build: torch goes in with its
# dependencies (the CUDA libraries its libraries link, about 2.9 GB of wheels with it). executorch goes
# in without its own: pip evaluates their markers for this machine and asks for coremltools (Linux
# x86_64 only, no aarch64 wheel); what `import executorch.runtime` needs of them is listed here.
LAYERS = {"executorch": Layer("executorch", pinned=("torch",),
                            no_deps=("executorch", "torchao", "flatbuffers", "ruamel.yaml", "tabulate"))}


def installed_requirements() -> list[str]:
    return [r for r in requires("alexnet-export") or [] if "extra ==" not in r]


def wheel_requirements(wheel: str | Path) -> list[str]:
    """The light install's requirements of a wheel (its Requires-Dist without extras)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    return [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]


def extra_distributions(extra: str) -> list[str]:
    """The distributions the toolkit's `extra` adds, from its installed metadata (pyproject's extras)."""
    marker = re.compile(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]")
    names = [re.match(r"[A-Za-z0-9._-]+", r).group(0).lower() for r in requires("alexnet-export") or [] if marker.search(r)]
    return [name for name in names if name != "alexnet-export"]


def pinned() -> dict[str, tuple[str, ...]]:
    """CORE_PINNED and, per table row `verify --on aarch64` runs without a layer, its extra's distributions."""
    from alexnet_export.runtimes.table import BACKENDS

    found = dict(CORE_PINNED)
    for backend in BACKENDS:
        if backend.aarch64 and backend.extra and backend.name not in LAYERS:
            found.update({name: (name,) for name in extra_distributions(backend.extra)})
    return found


def pins() -> list[str]:
    found = []
    for name, distributions in pinned().items():
        for distribution in distributions:
            try:
                found.append(f"{name}=={version(distribution)}")
                break
            except PackageNotFoundError:
                continue
    return found


def pin(name: str) -> str:
    """"name==release" of the distribution installed here, without a local label ("2.13.0+cpu" is
    PyPI's 2.13.0)."""
    return f"{name}=={version(name).split('+')[0]}"
