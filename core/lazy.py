"""Package faces that import on first use: a package's `__init__.py` names what it offers, and a name's
module (with the library it needs: torch, onnxruntime, OpenVINO, ...) is imported when the name is
first asked for, so importing one backend's package never imports another backend's library."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Callable


def lazy_names(module: str, homes: dict[str, str], base: str | None = None,
               before: Callable[[], None] | None = None) -> Callable[[str], object]:
    """A `__getattr__` for `module`: each name of `homes` ({name: submodule}) is imported from
    `base.submodule` (base: `module` itself, for a package's face) when first asked for, then kept.
    before: run first each time a name is imported (a check that its extra is installed, which then
    fails in one line naming it instead of deep inside the import)."""
    base = base or module

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if before is not None:
            before()
        value = getattr(import_module(f"{base}.{homes[name]}"), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
