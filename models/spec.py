"""What the model expects and what an exported file says about itself. No torch here.

`ArtifactMetadata` is the one schema shared by the exporter (which writes it into the ONNX
`metadata_props`) and the runtimes (which read it back), so an app needs only the .onnx file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
CHANNELS = 3
IMAGE_SIZE = 224
DEFAULT_NUM_CLASSES = 1000
# Checkpoint files the toolkit reads (models/weights.py) and runs eagerly (runtimes/registry.py).
PICKLE_SUFFIXES = (".pt", ".pth")
SAFETENSORS_SUFFIXES = (".safetensors",)
CHECKPOINT_SUFFIXES = PICKLE_SUFFIXES + SAFETENSORS_SUFFIXES

# Every key we write is namespaced so it never collides with keys other tools add.
_KEY_PREFIX = "alexnet_export."
PRECISION_KEY = _KEY_PREFIX + "precision"


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
    layout: str = "NCHW"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

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
    precision: str = "fp32"  # fp32, fp16, int8-tensorrt or int8-cpu

    def __post_init__(self):
        if len(self.labels) != self.num_classes:
            raise ValueError(f"{len(self.labels)} labels for {self.num_classes} classes; expected one label per class")

    def to_props(self) -> dict[str, str]:
        return {
            _KEY_PREFIX + "num_classes": str(self.num_classes),
            _KEY_PREFIX + "labels": json.dumps(list(self.labels)),
            _KEY_PREFIX + "source_weights": self.source_weights,
            _KEY_PREFIX + "preprocessing": self.preprocessing.to_json(),
            _KEY_PREFIX + "tool_versions": json.dumps(self.tool_versions, sort_keys=True),
            PRECISION_KEY: self.precision,
            _KEY_PREFIX + "input": f"{INPUT_NAME}: float32 [batch, {CHANNELS}, {IMAGE_SIZE}, {IMAGE_SIZE}], normalised RGB",
            _KEY_PREFIX + "output": f"{OUTPUT_NAME}: float32 [batch, num_classes], unnormalised scores",
        }

    @classmethod
    def from_props(cls, props: dict[str, str], num_classes: int) -> ArtifactMetadata:
        """Read what `to_props` wrote; fall back to ImageNet defaults for files made elsewhere.

        `num_classes` comes from the graph's output shape and wins over the metadata, which
        is only a description and could be stale.
        """
        get = lambda key: props.get(_KEY_PREFIX + key)  # noqa: E731
        try:
            labels = tuple(json.loads(get("labels"))) if get("labels") else None
            preprocessing = Preprocessing.from_json(get("preprocessing")) if get("preprocessing") else Preprocessing()
            versions = json.loads(get("tool_versions")) if get("tool_versions") else {}
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the model's alexnet_export metadata is malformed: {exc}") from None
        if labels is None or len(labels) != num_classes:
            labels = default_labels(num_classes)
        return cls(
            num_classes=num_classes,
            labels=labels,
            source_weights=get("source_weights") or "unknown (not made by alexnet-export)",
            preprocessing=preprocessing,
            tool_versions=versions,
            precision=get("precision") or "fp32",
        )


def default_labels(num_classes: int) -> tuple[str, ...]:
    """ImageNet names for a 1000-class model, `class_<i>` otherwise."""
    if num_classes == DEFAULT_NUM_CLASSES:
        from alexnet_export.models.labels import imagenet_labels

        return imagenet_labels()
    return tuple(f"class_{i}" for i in range(num_classes))
