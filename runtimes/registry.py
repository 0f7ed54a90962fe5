"""Opening a model file: the backend its suffix names (runtimes/table.py), the options it takes,
and, when a trusted key is given or set, its signature verified before anything of it is read.

The table itself lives in runtimes/table.py, below signing, which reads its companion files.
"""

from __future__ import annotations

from pathlib import Path

from alexnet_export.runtimes.table import Backend, backend_for
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.signing.verify import check_before_open


def open_runtime(path: str | Path, *, trusted_key: str | Path | None = None, backend: Backend | None = None,
                 **options) -> Runtime:
    """The runtime for `path` (OnnxRuntime, TorchRuntime, TensorRTRuntime, OpenVinoRuntime, ExecuTorchRuntime
    or LiteRtRuntime, by suffix) with `options`. An option its backend does not take is an OptionError before anything
    loads; then `path` is verified against `trusted_key`, or $ALEXNET_EXPORT_TRUSTED_KEY when that is
    set (runtimes/signing/verify.py), before the runtime class is even imported.
    backend: for a file whose name does not say (the exporter's staged .partial files)."""
    backend = backend or backend_for(path)
    backend.check_options(path, options)
    check_before_open(path, trusted_key)
    return backend.runtime_class()(path, **options)
