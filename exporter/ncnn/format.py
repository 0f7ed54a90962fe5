"""ncnn's two files, written: the .param text (one line per layer) and the .bin (every layer's
weights in .param order). Every fact comes from ncnn's own sources (github.com/Tencent/ncnn):

- .param: the magic 7767517, then "layer_count blob_count", then per layer
  "Type name n_in n_out bottoms... tops... key=value ..." (docs/developer-guide/
  param-and-model-file-structure.md). A value is at most 15 characters, read as a float when it
  holds '.' or 'e', else as an integer; an array is "key=a,b,c" (src/paramdict.cpp).
- .bin: for each layer the blobs its load_model() reads, each padded to 4 bytes. A weight blob
  starts with a 4-byte tag: 0 float32, 0x01306B47 float16, 0x000D4B38 int8 (src/modelbin.cpp,
  tools/modelwriter.h); biases and INT8 scales are raw float32 with no tag.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = 7767517
TAG_FP32, TAG_FP16, TAG_INT8 = 0x00000000, 0x01306B47, 0x000D4B38
FP32, FP16, INT8 = "fp32", "fp16", "int8"  # how a weight blob is stored
_TAGS = {FP32: (TAG_FP32, "<f4"), FP16: (TAG_FP16, "<f2"), INT8: (TAG_INT8, "i1")}
MAX_TOKEN = 15  # characters in one value (src/paramdict.cpp reads "%15[^,\n ]")


def value_text(value) -> str:
    """One .param value: an integer as is, a float as the shortest text that reads back as the same
    float32, always with '.' or 'e' so ncnn reads it as a float."""
    if isinstance(value, (bool, int, np.integer)):
        return str(int(value))
    number = np.float32(value)
    text = np.format_float_positional(number, unique=True, trim="0")  # "2.0", "0.0001"
    if len(text) > MAX_TOKEN:
        text = np.format_float_scientific(number, unique=True, trim="0")  # "1.5e-07"
    if len(text) > MAX_TOKEN:
        raise ValueError(f"{value!r} does not fit ncnn's {MAX_TOKEN}-character value")
    return text


class BinWriter:
    """The .bin, blob by blob, each padded to 4 bytes."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def _append(self, data: bytes) -> None:
        self._chunks.append(data + b"\0" * (-len(data) % 4))

    def weight(self, array: np.ndarray, stored: str) -> None:
        """A tagged weight blob; INT8 weights come quantized already (exporter/ncnn/quantize.py)."""
        tag, dtype = _TAGS[stored]
        array = np.ascontiguousarray(array).reshape(-1)
        if stored == INT8 and array.dtype != np.int8:
            raise TypeError("INT8 weights must be quantized before they are written")
        self._append(struct.pack("<I", tag) + array.astype(dtype).tobytes())

    def raw(self, array: np.ndarray) -> None:
        """An untagged float32 blob: a bias, or INT8 scales."""
        self._append(np.ascontiguousarray(array, dtype="<f4").reshape(-1).tobytes())

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)


@dataclass
class ParamWriter:
    """The .param's layer lines, in order; blobs are counted as they are named."""

    lines: list[str] = field(default_factory=list)
    blobs: dict[str, None] = field(default_factory=dict)  # an ordered set

    def layer(self, kind: str, name: str, bottoms: list[str], tops: list[str], params: dict) -> None:
        values = " ".join(f"{key}={_values(value)}" for key, value in params.items())
        self.lines.append(f"{kind:<20} {name:<16} {len(bottoms)} {len(tops)} {' '.join(bottoms + tops)} {values}".rstrip())
        self.blobs.update(dict.fromkeys(bottoms + tops))

    def text(self) -> str:
        return "\n".join([str(MAGIC), f"{len(self.lines)} {len(self.blobs)}", *self.lines]) + "\n"


def _values(value) -> str:
    return ",".join(map(value_text, value)) if isinstance(value, (list, tuple)) else value_text(value)
