"""How close an in-graph resize (ONNX Resize on ONNX Runtime's CPU provider) gets to Pillow's.

The question behind `--input-format uint8`: should the pixel file take any image size and resize
inside (shorter side to 256, bilinear, centre crop 224), or take 224x224 after the app's resize and
crop? Per test photo: Pillow's resize and crop (runtimes/preprocess.py) against ONNX Resize
(linear, half_pixel, with and without the opset-18 `antialias` attribute), in pixel values and in
the seeded 10-class model's logits. Run: .venv/bin/python benchmarks/in_graph_resize.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import onnxruntime as ort
from onnx import TensorProto, helper

from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes.preprocess import load_image, normalise, resize_and_crop

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
          "retina.jpg", "brick.png", "grass.png", "gravel.png", "ihc.png", "camera.png", "coins.png", "page.png",
          "moon.png")


def resize_graph(antialias: int, dtype: int) -> bytes:
    """uint8 (1, H, W, 3) and the target sizes -> the resized image, NCHW, in `dtype` (FLOAT or UINT8)."""
    nodes = [helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2])]
    source = "nchw"
    if dtype == TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["nchw"], ["nchw_float"], to=TensorProto.FLOAT))
        source = "nchw_float"
    nodes.append(helper.make_node("Resize", [source, "", "", "sizes"], ["resized"], mode="linear",
                                  coordinate_transformation_mode="half_pixel", antialias=antialias))
    graph = helper.make_graph(nodes, "resize", [
        helper.make_tensor_value_info("pixels", TensorProto.UINT8, [1, "h", "w", 3]),
        helper.make_tensor_value_info("sizes", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("resized", dtype, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)  # what ORT 1.31 reads
    return model.SerializeToString()


def in_graph(session, image: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """The same size and crop arithmetic as preprocess.resize_and_crop, the resampling by ONNX Runtime."""
    height, width = image.shape[:2]
    size = ((int(spec.resize * height / width), spec.resize) if width <= height
            else (spec.resize, int(spec.resize * width / height)))
    out = session.run(None, {"pixels": image[None], "sizes": np.array([1, 3, *size], np.int64)})[0][0]
    top, left = int(round((size[0] - spec.crop) / 2.0)), int(round((size[1] - spec.crop) / 2.0))
    crop = out[:, top : top + spec.crop, left : left + spec.crop].transpose(1, 2, 0)
    return np.clip(np.round(crop), 0, 255).astype(np.uint8)  # what a uint8 pipeline would hand on


def main() -> None:
    from importlib.resources import files

    from alexnet_export.exporter.onnx.convert import export_onnx, tool_versions
    from alexnet_export.models.alexnet import seeded_alexnet
    from alexnet_export.models.spec import ArtifactMetadata, default_labels

    spec = Preprocessing()
    images = [np.asarray(load_image(Path(str(files("skimage") / "data" / name)))) for name in PHOTOS]
    with tempfile.TemporaryDirectory() as folder:
        metadata = ArtifactMetadata(10, default_labels(10), "random init, seed 3", tool_versions=tool_versions())
        path = Path(folder) / "m.onnx"
        export_onnx(seeded_alexnet(10, seed=3), path, metadata, verify=False)
        model = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference_pixels = np.stack([resize_and_crop(load_image(image), spec) for image in images])
    reference = model.run(None, {"images": np.stack([normalise(p, spec) for p in reference_pixels])})[0]
    scale = float(np.abs(reference).max())
    print(f"{len(images)} photos, {min(i.shape[0] for i in images)}..{max(i.shape[0] for i in images)} px high; "
          f"onnxruntime {ort.__version__}")
    print(f"{'ONNX Resize':32} {'pixels: mean':>13} {'max':>5} {'logits: max/scale':>18} {'top-1 same':>11}")
    for dtype, dtype_name in ((TensorProto.FLOAT, "float"), (TensorProto.UINT8, "uint8")):
        for antialias in (0, 1):
            name = f"linear, antialias={antialias}, {dtype_name}"
            try:
                session = ort.InferenceSession(resize_graph(antialias, dtype), providers=["CPUExecutionProvider"])
                pixels = np.stack([in_graph(session, image, spec) for image in images])
            except Exception as exc:  # what the runtime refuses is the measurement
                print(f"{name:32} refused: {str(exc).splitlines()[0][:90]}")
                continue
            diff = np.abs(pixels.astype(np.int16) - reference_pixels.astype(np.int16))
            logits = model.run(None, {"images": np.stack([normalise(p, spec) for p in pixels])})[0]
            error = float(np.abs(logits - reference).max()) / scale
            same = int((logits.argmax(1) == reference.argmax(1)).sum())
            print(f"{name:32} {diff.mean():13.2f} {int(diff.max()):5d} {error:18.4f} {same:>8}/{len(images)}")


if __name__ == "__main__":
    main()
