"""A verified float ONNX file -> the same model taking uint8 RGB pixels, NHWC, normalised inside.

The graph gains Cast -> Mul(scale) -> Sub(mean) -> Div(std) -> Transpose in front of the network:
the same float32 operations in the same order as runtimes/preprocess.normalise, so the pixel file
fed a resized and cropped image computes what the float file computes fed Python's preprocessing
(measured: identical logits). The resize and crop stay with the app: see docs/ARCHITECTURE.md
("Pixels in") for why, with the measurements. Any precision file works, since all take float32.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from alexnet_export.errors import ExportError
from alexnet_export.events import Listener, Step, Verified, ignore
from alexnet_export.atomic import atomic_output
from alexnet_export.runtimes.verification.samples import synthetic_images
from alexnet_export.runtimes.verification.parity import ParityReport, compare_logits, enforce
from alexnet_export.models.precisions import FP32_GATE
from alexnet_export.models.spec import (
    CHANNELS,
    INPUT_KEY,
    INPUT_NAME,
    PIXEL_INPUT,
    PREPROCESSING_KEY,
    ArtifactMetadata,
)
from alexnet_export.runtimes.preprocess import load_image, normalise, resize_and_crop

VERIFY_IMAGES = 8
_NORMALISED = "normalised_images"  # the network's float input, now made inside the graph


def with_pixel_input(proto: onnx.ModelProto, metadata: ArtifactMetadata) -> onnx.ModelProto:
    """A copy of the float model `proto` whose input `images` is uint8 (batch, crop, crop, 3)."""
    spec = metadata.preprocessing
    graph = proto.graph
    if [i.name for i in graph.input] != [INPUT_NAME] or graph.input[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ExportError(f"the model's inputs are {[i.name for i in graph.input]}; expected one float {INPUT_NAME!r}")
    pixels = replace(spec, input_format=PIXEL_INPUT)
    result = onnx.ModelProto()
    result.CopyFrom(proto)
    graph = result.graph
    for node in graph.node:
        node.input[:] = [_NORMALISED if name == INPUT_NAME else name for name in node.input]
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    new_input = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [None, spec.crop, spec.crop, CHANNELS])
    new_input.type.tensor_type.shape.dim[0].CopyFrom(batch)  # dynamic or fixed, as the float file
    del graph.input[:]
    graph.input.append(new_input)
    constants = {
        "pixel_scale": np.asarray(spec.scale, np.float32),
        "pixel_mean": np.asarray(spec.mean, np.float32),  # broadcasts over the last (channel) axis
        "pixel_std": np.asarray(spec.std, np.float32),
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    prefix = [
        helper.make_node("Cast", [INPUT_NAME], ["pixels_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["pixels_float", "pixel_scale"], ["pixels_scaled"]),
        helper.make_node("Sub", ["pixels_scaled", "pixel_mean"], ["pixels_centred"]),
        helper.make_node("Div", ["pixels_centred", "pixel_std"], ["pixels_normalised"]),
        helper.make_node("Transpose", ["pixels_normalised"], [_NORMALISED], perm=[0, 3, 1, 2]),
    ]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(prefix + nodes)
    # The preprocessing record (its input_format) and the input's description say what the file takes.
    described = replace(metadata, preprocessing=pixels).to_props()
    for prop in result.metadata_props:
        if prop.key in (PREPROCESSING_KEY, INPUT_KEY):
            prop.value = described[prop.key]
    onnx.checker.check_model(result, full_check=True)
    return result


def write_pixel_file(float_onnx: Path, output: str | Path, *, on_event: Listener = ignore) -> ParityReport:
    """Write the pixel version of `float_onnx` to `output`, verified first: on photo-like images,
    the pixel file fed uint8 crops against the float file fed Python's preprocessing, at the FP32
    gate whatever the precision (the two compute the same numbers). A failure leaves `output` as it was."""
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime

    reference = OnnxRuntime(float_onnx, providers=["CPUExecutionProvider"])
    proto = with_pixel_input(onnx.load(str(float_onnx)), reference.metadata)
    on_event(Step("verifying the uint8 pixel file against the float file fed Python's preprocessing"))
    spec = reference.metadata.preprocessing
    crops = np.stack([resize_and_crop(load_image(image), spec) for image in synthetic_images(VERIFY_IMAGES, seed=99)])
    batch = crops[np.arange(reference.bounds.maximum or len(crops)) % len(crops)]  # a fixed batch: exactly its size
    with atomic_output(output) as temporary:
        onnx.save_model(proto, str(temporary))
        candidate = OnnxRuntime(temporary, providers=["CPUExecutionProvider"])
        expected = reference.predict(np.stack([normalise(row, spec) for row in batch]))
        report = enforce(compare_logits(expected, candidate.predict(batch)), FP32_GATE, "the uint8 pixel file")
    on_event(Verified("parity, float file + Python preprocessing vs uint8 pixel file (ONNX Runtime CPU)", report))
    return report
