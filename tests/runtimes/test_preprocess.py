import io

import numpy as np
import pytest
from PIL import Image

from alexnet_export.errors import InputError
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes.preprocess import MAX_PIXELS, load_image, preprocess

SPEC = Preprocessing()


def test_constant_image_normalises_to_known_values():
    out = preprocess(Image.new("RGB", (500, 375), (255, 128, 0)), SPEC)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = (np.array([255, 128, 0]) / 255 - np.array(SPEC.mean)) / np.array(SPEC.std)
    np.testing.assert_allclose(out.reshape(3, -1).mean(axis=1), expected, rtol=1e-5)


def test_resize_and_centre_crop_follow_torchvision():
    # 300x200 (WxH): shorter side -> 256, longer side int(256 * 300 / 200) = 384; crop at x=80, y=16.
    pixels = np.zeros((200, 300, 3), np.uint8)
    pixels[:, 150:] = 255  # right half white: after the crop the edge sits at 192 - 80 = 112
    out = preprocess(Image.fromarray(pixels), SPEC)
    row = out[0, 112]
    assert row[100] < 0 < row[124]


def test_modes_are_converted_to_rgb():
    for mode in ("L", "RGBA", "P", "CMYK", "I;16", "1"):
        image = Image.new(mode, (64, 48))
        assert load_image(image).mode == "RGB"


def test_exif_rotation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (200, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(path, exif=exif)
    assert load_image(path).size == (100, 200)


def test_uint8_array_and_bad_arrays():
    assert load_image(np.zeros((10, 20, 3), np.uint8)).size == (20, 10)
    with pytest.raises(InputError, match="expected uint8 HxWx3 RGB"):
        load_image(np.zeros((10, 20), np.uint8))
    with pytest.raises(InputError, match="expected uint8 HxWx3 RGB"):
        load_image(np.zeros((10, 20, 3), np.float32))


def test_bad_files(tmp_path):
    (tmp_path / "text.jpg").write_bytes(b"hello, not an image")
    with pytest.raises(InputError, match="cannot read .*text.jpg as an image"):
        load_image(tmp_path / "text.jpg")
    with pytest.raises(InputError, match="does not exist"):
        load_image(tmp_path / "absent.png")
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), "red").save(buffer, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buffer.getvalue()[:200])
    with pytest.raises(InputError, match="truncated.jpg"):
        load_image(tmp_path / "truncated.jpg")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    side = int(MAX_PIXELS**0.5) + 100
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG")  # a few KB on disk, ~64 MP declared
    (tmp_path / "bomb.png").write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match=f"declares {side}x{side} pixels"):
        load_image(tmp_path / "bomb.png")


def test_thin_images_are_refused_before_resizing(tmp_path):
    """Scaling the shorter side to 256 would turn a tiny 1 x 20000 PNG into 256 x 5,120,000."""
    Image.new("L", (1, 20000)).save(tmp_path / "thin.png")
    assert (tmp_path / "thin.png").stat().st_size < 1000
    with pytest.raises(InputError, match=r"image is 1x20000, thinner than 64:1"):
        preprocess(load_image(tmp_path / "thin.png"), SPEC)
    edge = preprocess(Image.new("RGB", (64 * 4, 4)), SPEC)  # exactly 64:1 still works
    assert edge.shape == (3, 224, 224)
