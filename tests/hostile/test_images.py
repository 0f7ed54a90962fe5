"""Hostile and unusual images through the CLI's predict: a result or a one-line error, never a traceback."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from alexnet_export.runtimes.preprocess import load_image


def _png_header_only(width, height):
    """A PNG whose IHDR declares width x height pixels, with almost no data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _save(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _exif_rotated():
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(Image.new("RGB", (200, 100), "white"), "JPEG", exif=exif)


GOOD = {
    "one-pixel.png": lambda: _save(Image.new("RGB", (1, 1), "red"), "PNG"),
    "cmyk.jpg": lambda: _save(Image.new("CMYK", (120, 90), (0, 120, 200, 10)), "JPEG"),
    "palette.png": lambda: _save(Image.new("RGB", (80, 60), "green").convert("P"), "PNG"),
    "sixteen-bit.png": lambda: _save(Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)), "PNG"),
    "rgba.png": lambda: _save(Image.new("RGBA", (70, 50), (10, 20, 30, 0)), "PNG"),
    "grey.png": lambda: _save(Image.new("L", (70, 50), 128), "PNG"),
    "exif-rotated.jpg": _exif_rotated,
}
BAD = {
    "truncated.jpg": (lambda: _save(Image.new("RGB", (300, 300), "red"), "JPEG")[:300], r"truncated.jpg"),
    "zero-by-zero.png": (lambda: _png_header_only(0, 0), r"zero-by-zero.png"),
    "bomb.png": (lambda: _png_header_only(100_000, 100_000), r"bomb.png .*refusing to decode"),
    "wide.png": (lambda: _png_header_only(9_000, 9_000), r"declares 9000x9000 pixels; refusing to decode"),
    "not-an-image.jpg": (lambda: b"%PDF-1.4 definitely not an image" * 10, r"cannot read .*not-an-image.jpg as an image"),
    "image.tga": (lambda: _save(Image.new("RGB", (20, 20)), "TGA"), r"image.tga is TGA; expected one of JPEG, PNG"),
}


def test_unusual_but_valid_images_are_classified(cli, tmp_path, small_onnx):
    for name, make in GOOD.items():
        (tmp_path / name).write_bytes(make())
    result = cli("predict", small_onnx, *GOOD, "--top-k", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [e["image"] for e in entries] == list(GOOD)
    assert all(0 < e["predictions"][0]["probability"] <= 1 for e in entries)


@pytest.mark.parametrize("name", list(BAD))
def test_bad_images_are_one_line_errors(cli, tmp_path, small_onnx, name):
    make, pattern = BAD[name]
    (tmp_path / name).write_bytes(make())
    result = cli("predict", small_onnx, name, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    import re

    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert re.search(pattern, last), last


def test_sixteen_bit_grey_keeps_its_tones(tmp_path):
    (tmp_path / "g.png").write_bytes(GOOD["sixteen-bit.png"]())
    pixels = np.asarray(load_image(tmp_path / "g.png"))
    assert 0 < pixels.mean() < 255 and len(np.unique(pixels)) > 100  # not clipped to white


def test_bomb_is_refused_without_decoding(tmp_path):
    import resource
    import time

    (tmp_path / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(ValueError, match="refusing to decode"):
        load_image(tmp_path / "bomb.png")
    assert time.perf_counter() - start < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: no 30 GB canvas
