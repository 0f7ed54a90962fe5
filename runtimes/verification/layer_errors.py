"""Per-layer error between a reference and a candidate form of the model: where an FP16/INT8
file loses accuracy, or where an export departs from eager PyTorch.

Each side is a `LayerSource`: a function from a batch of inputs to every layer's output
(runtimes/verification/layers.py names them). ONNX files are read with their layer tensors added as graph
outputs, eager models with forward hooks. Figures accumulate batch by batch, so any number of
images fits in memory.

Why not onnxruntime.quantization.qdq_loss_debug: its matching pairs a tensor with its own Q/DQ
pair by name, so it sees only quantized tensors (none in an FP16 file, half the layers in the
TensorRT file, and the CPU file renames Conv outputs when it folds their ReLU), and its augmented
model fetches every input of the chosen op types, the dequantized weight matrices included, per
batch. The layer map here finds the same layer in every file; the SQNR is its formula.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from alexnet_export.extras import require
from alexnet_export.runtimes.verification.layers import BY_NAME, LAYERS, LayerError, find_layers

LayerSource = Callable[[np.ndarray], dict[str, np.ndarray]]
# A layer of an FP32 export departs from eager PyTorch when its output is off by more than this
# share of its largest value, or its cosine falls below this: float reordering alone stays under
# 3e-6 of the scale and above 0.999999 (tests/exporter/test_onnx_export.py measures both).
FP32_LAYER_MAX_REL, FP32_LAYER_MIN_COSINE = 1e-4, 0.9999
FLOOR_DB = -99.0  # SQNR when the candidate is all noise or worse; reported instead of -inf
CEILING_DB = 200.0  # SQNR of identical outputs; reported instead of +inf


@dataclass(frozen=True)
class LayerFigures:
    layer: str
    sqnr_db: float  # 10 log10(sum ref^2 / sum (ref - candidate)^2) over every image
    mean_cosine: float  # per image, over the flattened layer output
    min_cosine: float
    max_abs: float
    max_rel: float  # max abs error / max |reference| at this layer
    # Noise power this layer adds, as a fraction of its signal power: relative noise from
    # independent roundings adds up along the network, so this is the layer's share of the
    # output's error (a drop in dB would blame whichever layer comes first).
    noise_added: float


@dataclass(frozen=True)
class LayerReport:
    layers: tuple[LayerFigures, ...]  # network order
    images: int

    @property
    def worst(self) -> LayerFigures:
        """The layer that adds the most noise (the first of equals)."""
        return max(self.layers, key=lambda f: f.noise_added)

    def first_diverging(self, max_rel: float, min_cosine: float) -> LayerFigures | None:
        """The first layer whose output is off by more than max_rel of its scale or below min_cosine."""
        for figures in self.layers:
            if not (figures.max_rel <= max_rel and figures.min_cosine >= min_cosine):
                return figures
        return None

    def table(self) -> str:
        lines = [f"  {'layer':<6} {'SQNR dB':>8} {'noise added':>12} {'cosine mean / min':>21} {'max abs':>10}"]
        worst = self.worst.layer
        for f in self.layers:
            mark = "  <- adds the most" if f.layer == worst and f.noise_added > 0 else ""
            lines.append(f"  {f.layer:<6} {f.sqnr_db:8.1f} {100 * f.noise_added:11.3g}% {f.mean_cosine:10.6f} / {f.min_cosine:.6f}"
                         f" {f.max_abs:10.3g}{mark}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"images": self.images, "worst": self.worst.layer, "layers": [asdict(f) for f in self.layers]}


def compare_layers(reference: LayerSource, candidate: LayerSource, batches: Iterable[np.ndarray]) -> LayerReport:
    """Run both sources on the same batches and measure every layer's output."""
    sums: dict[str, dict] = {}
    images = 0
    for batch in batches:
        expected, actual = reference(batch), candidate(batch)
        images += len(batch)
        for layer in LAYERS:
            ref = expected[layer.name].reshape(len(batch), -1).astype(np.float64)
            cand = actual[layer.name].reshape(len(batch), -1).astype(np.float64)
            s = sums.setdefault(layer.name, {"signal": 0.0, "noise": 0.0, "cosines": [], "max_abs": 0.0, "scale": 0.0})
            s["signal"] += float(np.sum(ref**2))
            s["noise"] += float(np.sum((ref - cand) ** 2))
            s["max_abs"] = max(s["max_abs"], float(np.abs(ref - cand).max()))
            s["scale"] = max(s["scale"], float(np.abs(ref).max()))
            norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
            s["cosines"].extend(np.where(norms > 0, (ref * cand).sum(axis=1) / np.where(norms > 0, norms, 1), 1.0))
    figures, previous = [], 0.0
    for layer in LAYERS:
        s = sums[layer.name]
        relative_noise = s["noise"] / s["signal"] if s["signal"] else 0.0
        figures.append(LayerFigures(layer.name, _sqnr_db(s["signal"], s["noise"]), float(np.mean(s["cosines"])),
                                    float(np.min(s["cosines"])), s["max_abs"], s["max_abs"] / (s["scale"] or 1.0),
                                    max(0.0, relative_noise - previous)))
        previous = relative_noise
    return LayerReport(tuple(figures), images)


def _sqnr_db(signal: float, noise: float) -> float:
    if noise == 0:
        return CEILING_DB
    if signal == 0:
        return FLOOR_DB
    return float(np.clip(10 * np.log10(signal / noise), FLOOR_DB, CEILING_DB))


def onnx_layers(path: str | Path, batch_size: int = 16) -> LayerSource:
    """Every layer's output from an ONNX file on ONNX Runtime's CPU provider."""
    require("onnx", purpose="per-layer errors of an ONNX file")
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    tensors = {name: found.output for name, found in find_layers(model).items()}
    existing = {output.name for output in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in dict.fromkeys(tensors.values()) if t not in existing)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    del model
    input_name = session.get_inputs()[0].name
    names = list(dict.fromkeys(tensors.values()))

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        parts = [session.run(names, {input_name: batch[i : i + batch_size]}) for i in range(0, len(batch), batch_size)]
        values = {name: np.concatenate([part[k] for part in parts]) for k, name in enumerate(names)}
        return {layer: values[tensor] for layer, tensor in tensors.items()}

    return run


def eager_layers(model) -> LayerSource:
    """Every layer's output from an eager AlexNet (torch.nn.Module), by forward hooks."""
    import torch

    modules = {layer.name: model.get_submodule(layer.output_module) for layer in LAYERS}

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        captured = {}
        # The ReLUs work in place: copy each output as it is made, before the next layer reads it.
        hooks = [module.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o.detach().clone()))
                 for name, module in modules.items()]
        try:
            with torch.inference_mode():
                model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        finally:
            for hook in hooks:
                hook.remove()
        return {name: value.numpy() for name, value in captured.items()}

    return run


def describe_layer(figures: LayerFigures) -> str:
    """"conv3 (features.8): SQNR 12.3 dB, cosine 0.91 (min 0.85), max abs error 4.2"."""
    return (f"{figures.layer} ({BY_NAME[figures.layer].module}): SQNR {figures.sqnr_db:.1f} dB,"
            f" cosine {figures.mean_cosine:.4f} (min {figures.min_cosine:.4f}), max abs error {figures.max_abs:.3g}"
            f" ({figures.max_rel:.2g} of the layer's largest value)")


def first_divergence(model, onnx_path: str | Path, inputs: np.ndarray) -> str:
    """Where an FP32 export departs from the eager `model`, for a failed parity gate's message."""
    try:
        report = compare_layers(eager_layers(model), onnx_layers(onnx_path), [inputs])
    except LayerError as exc:
        return f"its layers could not be compared with eager PyTorch's: {exc}"
    first = report.first_diverging(FP32_LAYER_MAX_REL, FP32_LAYER_MIN_COSINE)
    if first is None:
        return "every layer's output matches eager PyTorch's; the difference comes after the last layer"
    return f"the first layer whose output departs from eager PyTorch's is {describe_layer(first)}"
