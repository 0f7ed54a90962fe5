"""Image in, model input out, with Pillow and numpy only.

The same transform as torchvision's ImageNet evaluation pipeline: shorter side resized to
`resize` (bilinear, antialiased), centre crop, RGB scaled to [0, 1], normalised, CHW. For a file
that takes pixels (Preprocessing.takes_pixels) only the resize and crop run here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from alexnet_export.errors import ArgumentError, InputError
from alexnet_export.models.spec import Preprocessing

ImageSource = Union[str, Path, bytes, Image.Image, np.ndarray]

# Refuse images larger than this before decoding them: a small file can declare a huge canvas.
MAX_PIXELS = 64_000_000
# Shorter side to `resize` makes a 1 x 20000 image 256 x 5,120,000: gigabytes from a 157-byte PNG.
# Images thinner than 64:1 are refused before resizing.
MAX_ASPECT_RATIO = 64
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")


class FolderError(ArgumentError, InputError):
    """A folder the arguments name is missing or holds no images: a mistake in the arguments (exit 2 in
    the CLI, with the flag `argument` names), in every command alike; still an InputError to catch."""


class MissingImageError(ArgumentError, InputError):
    """An image file the arguments name does not exist: a mistake in the arguments (exit 2 in the CLI), as a
    missing folder is; still an InputError to catch (a batch job records it as that image's error)."""


def find_images(folder: str | Path, what: str = "image folder", argument: str | None = None) -> list[Path]:
    """Image files below `folder`, recursively (an ImageFolder tree works), in a stable order.
    A missing folder is a FolderError naming `argument`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FolderError(f"{what} {folder} does not exist or is not a folder", argument=argument)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def require_images(folder: str | Path, what: str = "image folder", argument: str | None = None) -> list[Path]:
    """find_images, and a FolderError naming `argument` when the folder holds no image file: the one
    rule for a named folder without images (`verify --images`, `classify`'s folders)."""
    paths = find_images(folder, what, argument)
    if not paths:
        raise FolderError(f"found no image files under {folder}; expected files with one of the suffixes"
                          f" {', '.join(IMAGE_SUFFIXES)} (folders are searched recursively)", argument=argument)
    return paths


def image_problem(path: str | Path) -> str | None:
    """Why the file at `path` cannot be an input image, read from its header alone (nothing is
    decoded, so a damaged body is found only when it is read), or None."""
    try:
        _opened(Path(path), str(path)).close()
    except InputError as exc:
        return str(exc)
    return None


def load_image(source: ImageSource) -> Image.Image:
    """An RGB PIL image from a path, the bytes of an image file, a PIL image or an HxWx3 uint8 array."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise InputError(f"image array has dtype {source.dtype} and shape {source.shape}; expected uint8 HxWx3 RGB")
        image = Image.fromarray(np.ascontiguousarray(source), mode="RGB")
    elif isinstance(source, (str, Path)):
        image = _open_file(Path(source), str(source))
    elif isinstance(source, (bytes, bytearray)):  # an upload: the same checks as a file
        image = _open_file(io.BytesIO(source), "data")
    else:
        raise InputError(f"cannot use a {type(source).__name__} as an image; expected a path, image file bytes,"
                         " PIL image or uint8 array")
    if image.width < 1 or image.height < 1:
        raise InputError(f"image is {image.width}x{image.height}; expected at least 1x1 pixels")
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. Pillow's convert("RGB") clips 16-bit and 32-bit grey values at 255, which
    turns a 16-bit photo white; scale those down instead."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


def _open_file(file: Path | BinaryIO, path: str) -> Image.Image:
    """`file` is a path or an in-memory file; `path` names it in messages."""
    image = _opened(file, path)
    try:
        image.load()
        # Phones store rotation in EXIF; apply it so the crop sees what the user saw.
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot decode {path}: {exc}") from None


def _opened(file: Path | BinaryIO, path: str) -> Image.Image:
    """The image's header read and checked (format, declared size); the pixels are not decoded yet."""
    try:
        image = Image.open(file)  # reads the header only
    except FileNotFoundError:
        raise MissingImageError(f"image {path} does not exist") from None
    except Image.DecompressionBombError as exc:  # Pillow's own check, at twice its pixel limit
        raise InputError(f"image {path} is too large to decode safely ({exc}); refusing to decode it") from None
    except UnidentifiedImageError as exc:  # for an in-memory file Pillow's message shows an object address
        detail = exc if isinstance(file, Path) else "not a format Pillow recognises"
        raise InputError(f"cannot read {path} as an image: {detail}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path} as an image: {exc}") from None
    problem = None
    if image.format not in ALLOWED_FORMATS:
        problem = f"image {path} is {image.format}; expected one of {', '.join(ALLOWED_FORMATS)}"
    elif image.width * image.height > MAX_PIXELS:
        problem = f"image {path} declares {image.width}x{image.height} pixels; refusing to decode more than {MAX_PIXELS:,}"
    if problem is not None:
        image.close()
        raise InputError(problem)
    return image


def preprocess(image: Image.Image, spec: Preprocessing) -> np.ndarray:
    """One RGB image -> the model's input row: float32 (3, crop, crop), or for a file that takes
    pixels, uint8 (crop, crop, 3), which its graph normalises (exporter/onnx/pixels.py)."""
    pixels = resize_and_crop(image, spec)
    return pixels if spec.takes_pixels else normalise(pixels, spec)


def resize_and_crop(image: Image.Image, spec: Preprocessing) -> np.ndarray:
    """One RGB image -> uint8 (crop, crop, 3): the shorter side to `resize`, then the centre crop."""
    width, height = image.size
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise InputError(f"image is {width}x{height}, thinner than {MAX_ASPECT_RATIO}:1; expected a photo-like aspect "
                         "ratio (its shorter side is scaled to the model's input, which would make it enormous)")
    # torchvision's rule: the shorter side becomes `resize`, the longer one is truncated.
    if width <= height:
        new_size = (spec.resize, int(spec.resize * height / width))
    else:
        new_size = (int(spec.resize * width / height), spec.resize)
    resized = image.resize(new_size, Image.Resampling.BILINEAR)
    left = int(round((new_size[0] - spec.crop) / 2.0))
    top = int(round((new_size[1] - spec.crop) / 2.0))
    return np.asarray(resized.crop((left, top, left + spec.crop, top + spec.crop)), dtype=np.uint8)


def normalise(pixels: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """uint8 (crop, crop, 3) -> float32 (3, crop, crop): scaled, normalised, CHW. A pixel file's
    graph does the same float32 operations in the same order (exporter/onnx/pixels.py)."""
    values = pixels.astype(np.float32) * np.float32(spec.scale)
    values = (values - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(values.transpose(2, 0, 1))


def preprocess_batch(images, spec: Preprocessing) -> np.ndarray:
    return np.stack([preprocess(load_image(image), spec) for image in images])


def preprocess_readable(paths, spec: Preprocessing, tick=lambda n: None) -> tuple[np.ndarray, list[int], list[str]]:
    """Preprocess the files that can be read, skipping the rest: (their images stacked, their
    indices in `paths`, one message per skipped file). `tick(1)` after each file."""
    images, kept, skipped = [], [], []
    for index, path in enumerate(paths):
        try:
            images.append(preprocess(load_image(path), spec))
            kept.append(index)
        except InputError as exc:
            skipped.append(str(exc))
        tick(1)
    stacked = np.stack(images) if images else np.empty((0, *spec.input_dims), spec.input_dtype)
    return stacked, kept, skipped
