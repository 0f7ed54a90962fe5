"""What a file given as a PyTorch checkpoint is, told from its first bytes (and a zip's list of names), so
that a file that is no checkpoint is called what it is instead of failing deep inside torch.load. No torch here.

torch.save writes a zip archive holding `<name>/data.pkl` (PyTorch 1.6 and later) or, in the legacy format,
a binary pickle; anything else is refused before torch reads it.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

HEAD_BYTES = 4096
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# ONNX ModelProto: field 1 (ir_version, a small varint) first, then one of fields 2-8 (producer, domain,
# model version, doc string, graph, opset imports): the bytes every exporter writes first.
_ONNX_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42}
_BINARY_KINDS = (  # (magic at offset 0, what it is)
    (b"\x1f\x8b", "a gzip file"),
    (b"\x93NUMPY", "a NumPy array file (.npy)"),
    (b"\x89HDF", "an HDF5 file (Keras or another framework's weights?)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def not_a_checkpoint(path: str | Path) -> str | None:
    """What `path` is when it plainly is no PyTorch checkpoint ("a text file (it begins 'at.coffee')",
    "an ONNX model", "a zip archive without data.pkl", ...); None for a zip with data.pkl, a pickle, or
    bytes this cannot tell (torch.load decides those)."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if not head:
        return "an empty file"
    if head.startswith(ZIP_MAGIC):
        return _zip_kind(path)
    if head[0] == 0x80 and 2 <= head[1] <= 5:  # a binary pickle: torch's legacy format (or a plain pickle)
        return None
    for magic, kind in _BINARY_KINDS:
        if head.startswith(magic):
            return kind
    if _is_safetensors(head, Path(path).stat().st_size):
        return "a safetensors file (name it .safetensors to load it)"
    if len(head) > 2 and head[0] == 0x08 and head[1] < 0x80 and head[2] in _ONNX_NEXT_TAGS:
        return "an ONNX model (name it .onnx to run it)"
    return _text_kind(head)


def _zip_kind(path: str | Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a damaged or truncated zip archive (a download or copy cut short?)"
    if not any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"a zip archive without data.pkl (it holds {shown or 'nothing'})"
    if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
        return "a TorchScript archive (torch.jit.save): save the model's state_dict() instead"
    return None


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (header_length,) = struct.unpack("<Q", head[:8])
    return 0 < header_length <= size - 8 and head[8:10] == b'{"'


def _text_kind(head: bytes) -> str | None:
    """"a text file (it begins '...')" and its kinds a download leaves (an LFS pointer, an HTML page);
    None for bytes that are no text."""
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut at the end of the head
            return None
        text = head[: exc.start].decode("utf-8")
    if any(not (char.isprintable() or char in "\t\r\n\f") for char in text):
        return None
    stripped = text.lstrip()
    if stripped.startswith("version https://git-lfs"):
        return "a Git LFS pointer, not the weights (fetch them: git lfs pull)"
    if stripped[:15].lower().startswith(("<!doctype html", "<html")):
        return "an HTML page (a download that failed?)"
    first = stripped.splitlines()[0] if stripped else ""
    return f"a text file (it begins {first[:30]!r})" if first else "a text file of blank lines"
