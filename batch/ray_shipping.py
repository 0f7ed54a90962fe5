"""The model on Ray's nodes: read by path where every node sees the same file, else shipped as bytes
through Ray's object store and written once per node, named by its sha256.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alexnet_export.batch.classifier import Classifier
from alexnet_export.batch.ray_cluster import what_nodes_see
from alexnet_export.errors import ExportError
from alexnet_export.runtimes.table import backend_for


@dataclass(frozen=True)
class Shipped:
    """The model (and its companions, signature and trusted key) as bytes, for workers that cannot read it."""

    files: dict[str, bytes]  # file name -> bytes; the model's own name first
    sha256: str  # the model file's
    trusted_key: bytes | None


def materialize(shipped) -> Path:
    """The shipped model as files of this node, with their own names (the registry goes by suffix, the
    signature by name), in a folder named by the model's sha256 under the temporary folder: written once
    per node (each file renamed into place whole, so actors starting together never read half a file),
    kept for the next job, and written again when a copy there has other bytes."""
    from alexnet_export.hashing import file_sha256

    shipped = _resolved(shipped)
    folder = Path(tempfile.gettempdir()) / "alexnet-export-shipped" / shipped.sha256[:16]
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / next(iter(shipped.files))
    if model.is_file() and file_sha256(model) == shipped.sha256:
        return model
    for name, data in shipped.files.items():
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, folder / name)
    return model


def materialize_key(shipped) -> Path | None:
    shipped = _resolved(shipped)
    if shipped.trusted_key is None:
        return None
    handle, path = tempfile.mkstemp(prefix="alexnet-export-key-", suffix=".pem")
    with os.fdopen(handle, "wb") as file:
        file.write(shipped.trusted_key)
    return Path(path)


def _resolved(shipped) -> Shipped:
    import ray

    return ray.get(shipped) if isinstance(shipped, ray.ObjectRef) else shipped  # Ray Data pickles the reference


def ship_or_not(classifier: Classifier, trusted_key, ship_model: bool | None, staging: Path,
                 sample: list[str]) -> Shipped | None:
    """Ask every node what it sees; the model's bytes when it must travel (ship_model), else None.
    ExportError when a node cannot see the output's staging folder or the first image."""
    files = backend_for(classifier.model_path).files(classifier.model_path)
    signature = Path(classifier.model_path + ".sig")
    files += [signature] if signature.is_file() else []
    sizes = {str(path): path.stat().st_size for path in files}
    blind = []
    for node, seen in what_nodes_see([*sizes, str(staging), *sample]).items():
        if seen[str(staging)] is not True:
            raise ExportError(f"Ray node {node} cannot see the output folder {staging.parent}: Ray's workers write "
                              "the results, so the output must be on a file system every node shares")
        if sample and seen[sample[0]] is False:
            raise ExportError(f"Ray node {node} cannot read {sample[0]}: the workers read the images by path, so "
                              "they must be on a file system every node shares")
        if any(seen[path] != size for path, size in sizes.items()):
            blind.append(node)
    if ship_model is False and blind:
        raise ExportError(f"Ray node {blind[0]} cannot read {classifier.model_path} (or sees another file there); "
                          "let the model travel through Ray's object store (ship_model)")
    if not (ship_model or blind):
        return None
    key = None if classifier.trusted_key is None else Path(classifier.trusted_key).read_bytes()
    return Shipped({path.name: path.read_bytes() for path in files}, classifier.model_sha256, key)
