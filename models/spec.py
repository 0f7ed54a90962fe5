"""What the model expects and what an exported file says about itself. No torch here.

`ArtifactMetadata` is the one schema shared by the exporter (which writes it into the ONNX
`metadata_props`) and the runtimes (which read it back), so an app needs only the .onnx file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from alexnet_export.models.precisions import FP32, precision

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
CHANNELS = 3
IMAGE_SIZE = 224
IMAGE_DIMS = (CHANNELS, IMAGE_SIZE, IMAGE_SIZE)  # one input row; the batch dimension comes first
DEFAULT_NUM_CLASSES = 1000
# Checkpoint files the toolkit reads (models/weights.py) and runs eagerly (the checkpoint row of runtimes/table.py).
PICKLE_SUFFIXES = (".pt", ".pth")
SAFETENSORS_SUFFIXES = (".safetensors",)
CHECKPOINT_SUFFIXES = PICKLE_SUFFIXES + SAFETENSORS_SUFFIXES

# Every key we write is namespaced so it never collides with keys other tools add.
_KEY_PREFIX = "alexnet_export."
NUM_CLASSES_KEY = _KEY_PREFIX + "num_classes"
LABELS_KEY = _KEY_PREFIX + "labels"
SOURCE_WEIGHTS_KEY = _KEY_PREFIX + "source_weights"
PREPROCESSING_KEY = _KEY_PREFIX + "preprocessing"
TOOL_VERSIONS_KEY = _KEY_PREFIX + "tool_versions"
PRECISION_KEY = _KEY_PREFIX + "precision"
INPUT_KEY = _KEY_PREFIX + "input"
OUTPUT_KEY = _KEY_PREFIX + "output"
LRN_KEY = _KEY_PREFIX + "lrn"  # "native" or "pooled" (exporter/rewrites/lrn_pooled.py)
CALIBRATION_KEY = _KEY_PREFIX + "calibration"  # method and ranges file of an INT8 file
FLOAT_LAYERS_KEY = _KEY_PREFIX + "float_layers"  # layers an INT8 file keeps in float: "conv4,fc8"

# What a file's input takes: FLOAT_INPUT, the normalised float32 NCHW batch; or PIXEL_INPUT, the
# uint8 RGB pixels (batch, crop, crop, 3) of images already resized and cropped, which the graph
# scales and normalises itself (exporter/onnx/pixels.py), so an app needs no numerics of its own.
FLOAT_INPUT, PIXEL_INPUT = "float32", "uint8"
INPUT_FORMATS = (FLOAT_INPUT, PIXEL_INPUT)


def precision_file_name(stem: str, word: str, extension: str = "onnx", input_format: str = FLOAT_INPUT) -> str:
    """The default file name of a model in precision `word`: alexnet.onnx, alexnet.fp16.onnx,
    alexnet.int8-cpu.onnx, alexnet.int8-tensorrt.onnx; the two INT8 formats never share a name.
    OpenVINO IRs (extension "xml"): alexnet.xml, alexnet.bf16.xml, alexnet.int8.xml; ExecuTorch
    programs ("pte"): alexnet.pte, alexnet.int8.pte; LiteRT ("tflite"): alexnet.tflite, alexnet.fp16.tflite,
    alexnet.int8.tflite. Files that take pixels say so:
    alexnet.uint8.onnx, alexnet.fp16.uint8.onnx."""
    part = precision(word).name_part
    words = [stem] + ([part] if part else []) + ([PIXEL_INPUT] if input_format == PIXEL_INPUT else [])
    return ".".join([*words, extension])


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes one input row: torchvision's classic ImageNet evaluation transform."""

    resize: int = 256  # shorter side, before the crop
    crop: int = IMAGE_SIZE  # centre crop, square
    interpolation: str = "bilinear"
    color: str = "RGB"
    scale: float = 1 / 255  # uint8 -> [0, 1] before normalising
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    layout: str = "NCHW"  # of the normalised tensor the network sees, made by the app or in the graph
    input_format: str = FLOAT_INPUT  # what the file's input takes: one of INPUT_FORMATS

    @property
    def takes_pixels(self) -> bool:
        return self.input_format == PIXEL_INPUT

    @property
    def input_dims(self) -> tuple[int, int, int]:
        """One input row: (3, crop, crop) normalised floats, or (crop, crop, 3) uint8 pixels."""
        return (self.crop, self.crop, CHANNELS) if self.takes_pixels else (CHANNELS, self.crop, self.crop)

    @property
    def input_dtype(self) -> str:
        return "uint8" if self.takes_pixels else "float32"

    def to_json(self) -> str:
        values = asdict(self)
        if not self.takes_pixels:  # float files read as before, also by releases without the field;
            del values["input_format"]  # those refuse a pixel file (unknown field) instead of feeding it floats
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"preprocessing metadata must be a JSON object, got {type(values).__name__}")
        known = {name for name in cls.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown preprocessing fields {sorted(unknown)}; expected a subset of {sorted(known)}")
        for name in ("mean", "std"):
            if name in values:
                values[name] = tuple(float(v) for v in values[name])
                if len(values[name]) != CHANNELS:
                    raise ValueError(f"preprocessing {name} needs {CHANNELS} values, got {len(values[name])}")
        spec = cls(**values)
        if spec.input_format not in INPUT_FORMATS:
            raise ValueError(f"preprocessing input_format {spec.input_format!r} is unknown; expected one of"
                             f" {', '.join(INPUT_FORMATS)}")
        if spec.crop > spec.resize or spec.crop <= 0:
            raise ValueError(f"preprocessing crop {spec.crop} must be positive and at most resize {spec.resize}")
        if spec.color != "RGB" or spec.layout != "NCHW" or spec.interpolation != "bilinear":
            raise ValueError(
                f"unsupported preprocessing color/layout/interpolation {spec.color}/{spec.layout}/{spec.interpolation};"
                " expected RGB/NCHW/bilinear"
            )
        return spec


@dataclass(frozen=True)
class ArtifactMetadata:
    """The self-description stored in an exported model."""

    num_classes: int
    labels: tuple[str, ...]
    source_weights: str  # "sha256:<hex> (<file name>)" or "random init, seed N"
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    tool_versions: dict[str, str] = field(default_factory=dict)
    precision: str = FP32  # the label written at export; runtimes report what the graph holds

    def __post_init__(self):
        if len(self.labels) != self.num_classes:
            raise ValueError(f"{len(self.labels)} labels for {self.num_classes} classes; expected one label per class")

    def to_props(self) -> dict[str, str]:
        spec = self.preprocessing
        dims = ", ".join(map(str, spec.input_dims))
        described = ("RGB pixels after resize and crop, normalised inside" if spec.takes_pixels
                     else "normalised RGB")
        return {
            NUM_CLASSES_KEY: str(self.num_classes),
            LABELS_KEY: json.dumps(list(self.labels)),
            SOURCE_WEIGHTS_KEY: self.source_weights,
            PREPROCESSING_KEY: self.preprocessing.to_json(),
            TOOL_VERSIONS_KEY: json.dumps(self.tool_versions, sort_keys=True),
            PRECISION_KEY: self.precision,
            INPUT_KEY: f"{INPUT_NAME}: {spec.input_dtype} [batch, {dims}], {described}",
            OUTPUT_KEY: f"{OUTPUT_NAME}: float32 [batch, num_classes], unnormalised scores",
        }

    @classmethod
    def from_props(cls, props: dict[str, str], num_classes: int | None = None) -> ArtifactMetadata:
        """Read what `to_props` wrote; fall back to ImageNet defaults for files made elsewhere.

        `num_classes` comes from the graph's output shape where there is one, and wins over the
        metadata, which is only a description and could be stale; None reads the metadata's
        count (DEFAULT_NUM_CLASSES when it has none).
        """
        get = props.get
        try:
            if num_classes is None:
                num_classes = int(get(NUM_CLASSES_KEY) or DEFAULT_NUM_CLASSES)
            labels = tuple(json.loads(get(LABELS_KEY))) if get(LABELS_KEY) else None
            preprocessing = Preprocessing.from_json(get(PREPROCESSING_KEY)) if get(PREPROCESSING_KEY) else Preprocessing()
            versions = json.loads(get(TOOL_VERSIONS_KEY)) if get(TOOL_VERSIONS_KEY) else {}
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the model's alexnet_export metadata is malformed: {exc}") from None
        if num_classes < 1:
            raise ValueError(f"the model's alexnet_export metadata gives {num_classes} classes; expected at least 1")
        if labels is None or len(labels) != num_classes:
            labels = default_labels(num_classes)
        return cls(
            num_classes=num_classes,
            labels=labels,
            source_weights=get(SOURCE_WEIGHTS_KEY) or "unknown (not made by alexnet-export)",
            preprocessing=preprocessing,
            tool_versions=versions,
            precision=get(PRECISION_KEY) or FP32,
        )

    def for_classes(self, num_classes: int) -> ArtifactMetadata:
        """This metadata for a graph with `num_classes` outputs, which win over the description (as in
        from_props): itself when they agree, else with the default labels of that count."""
        if num_classes == self.num_classes:
            return self
        return replace(self, num_classes=num_classes, labels=default_labels(num_classes))


def default_labels(num_classes: int) -> tuple[str, ...]:
    """ImageNet names for a 1000-class model, `class_<i>` otherwise."""
    if num_classes == DEFAULT_NUM_CLASSES:
        from alexnet_export.models.labels import imagenet_labels

        return imagenet_labels()
    return tuple(f"class_{i}" for i in range(num_classes))
