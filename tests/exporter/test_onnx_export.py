import json

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from alexnet_export.errors import ArgumentError, ExportError, ParityError
from alexnet_export.exporter.onnx.convert import export_onnx
from alexnet_export.models.alexnet import AlexNet, seeded_alexnet
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime
from alexnet_export.runtimes.preprocess import preprocess_batch

CHAIN = [
    "Conv", "Relu", "MaxPool", "LRN",
    "Conv", "Relu", "MaxPool", "LRN",
    "Conv", "Relu", "Conv", "Relu", "Conv", "Relu", "MaxPool",
    "Reshape", "Gemm", "Relu", "Gemm", "Relu", "Gemm",
]


@pytest.fixture(scope="module")
def proto(small_onnx):
    return onnx.load(str(small_onnx))


def test_graph_is_the_plain_chain_with_native_lrn(proto):
    assert [node.op_type for node in proto.graph.node] == CHAIN
    for node in proto.graph.node:
        if node.op_type == "LRN":
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            assert attributes["size"] == 5 and attributes["beta"] == 0.75 and attributes["bias"] == 2.0
            assert attributes["alpha"] == pytest.approx(1e-4)
    assert not proto.functions
    groups = [helper.get_attribute_value(a) for n in proto.graph.node if n.op_type == "Conv"
              for a in n.attribute if a.name == "group"]
    assert groups.count(2) == 3


def test_io_names_types_and_dynamic_batch(proto):
    (image_input,), (logits,) = proto.graph.input, proto.graph.output
    assert image_input.name == "images" and logits.name == "logits"
    assert image_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = image_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 224, 224]
    assert [d.dim_value for d in logits.type.tensor_type.shape.dim[1:]] == [10]


def test_file_is_self_contained_and_passes_the_full_checker(small_onnx, proto):
    assert [p.name for p in small_onnx.parent.iterdir()] == [small_onnx.name]  # no .onnx.data sidecar
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    onnx.checker.check_model(str(small_onnx), full_check=True)


def test_metadata_describes_the_model(proto, small_metadata):
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["alexnet_export.num_classes"] == "10"
    assert json.loads(props["alexnet_export.labels"]) == list(small_metadata.labels)
    assert props["alexnet_export.source_weights"] == "random init, seed 3"
    preprocessing = json.loads(props["alexnet_export.preprocessing"])
    assert preprocessing["resize"] == 256 and preprocessing["crop"] == 224 and preprocessing["color"] == "RGB"
    assert preprocessing["mean"] == [0.485, 0.456, 0.406] and preprocessing["std"] == [0.229, 0.224, 0.225]
    assert preprocessing["layout"] == "NCHW"
    versions = json.loads(props["alexnet_export.tool_versions"])
    assert versions["torch"] == torch.__version__ and versions["onnx"] == onnx.__version__
    assert proto.producer_name == "alexnet-export"


def test_exporter_debug_annotations_are_stripped(proto):
    # The exporter records stack traces with local paths on every node.
    assert all(not node.metadata_props for node in proto.graph.node)


def test_export_reports_parity(small_export):
    report = small_export.report
    assert report.samples == 9 and report.max_abs < 1e-4 and report.min_cosine > 0.9999


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_parity_on_real_images_at_several_batch_sizes(onnx_runtime, torch_runtime, real_images, batch):
    inputs = preprocess_batch(real_images[:batch] if batch < len(real_images) else real_images, onnx_runtime.metadata.preprocessing)
    expected, actual = torch_runtime.predict(inputs), onnx_runtime.predict(inputs)
    scale = np.abs(expected).max()
    assert scale > 0.1  # Kaiming init: logits on a trained model's scale, so the gate means something
    assert np.abs(expected - actual).max() <= 1e-4
    assert np.abs(expected - actual).max() / scale <= 1e-5
    assert (expected.argmax(1) == actual.argmax(1)).all()


def test_fixed_batch_export(tmp_path, small_model, small_metadata):
    result = export_onnx(small_model, tmp_path / "fixed.onnx", small_metadata, batch=4, opset=21)
    proto = onnx.load(str(result.path))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    assert proto.opset_import[0].version == 21
    runtime = OnnxRuntime(result.path)
    assert runtime.bounds.minimum == runtime.bounds.maximum == 4
    assert result.report.samples == 4


def test_checkpoint_weights_survive_export(tmp_path, small_metadata):
    """Weights that are not the session's model: the ONNX must carry exactly these."""
    model = seeded_alexnet(10, seed=11)
    result = export_onnx(model, tmp_path / "m.onnx", small_metadata, verify=False)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(result.path)).graph.initializer}
    np.testing.assert_array_equal(weights["features.0.weight"], model.features[0].weight.detach().numpy())
    np.testing.assert_array_equal(weights["classifier.6.bias"], model.classifier[6].bias.detach().numpy())


class _DiffersWhenExported(AlexNet):
    """A model whose traced graph is not its eager one: export must catch this, not ship it."""

    def __init__(self, change):
        super().__init__(10)
        self.load_state_dict(seeded_alexnet(10, seed=3).state_dict())
        self.change = change

    def forward(self, x):
        logits = super().forward(x)
        return self.change(logits) if torch.compiler.is_exporting() else logits


def test_failed_parity_leaves_the_old_file_and_no_partial(tmp_path, small_metadata):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous version")
    # An extra Relu keeps the graph within the promised operators, so only parity can catch it.
    with pytest.raises(ParityError, match="fails the fp32 parity gate") as caught:
        export_onnx(_DiffersWhenExported(torch.relu).eval(), target, small_metadata)
    assert caught.value.report.max_rel > 1e-3
    assert "the first layer whose output departs from eager PyTorch's is fc8 (classifier.6)" in str(caught.value)
    assert target.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


class _Conv4BiasWhenExported(torch.nn.Conv2d):
    """conv4 with another bias in the traced graph only: the export departs from eager at conv4."""

    def forward(self, x):
        return self._conv_forward(x, self.weight, self.bias + 0.05 if torch.compiler.is_exporting() else self.bias)


def test_failed_parity_names_the_first_layer_that_departs(tmp_path, small_metadata):
    model = seeded_alexnet(10, seed=3)
    conv4 = model.features[10]
    model.features[10] = _Conv4BiasWhenExported(conv4.in_channels, conv4.out_channels, 3, padding=1, groups=2)
    model.features[10].load_state_dict(conv4.state_dict())
    with pytest.raises(ParityError, match=r"first layer whose output departs from eager PyTorch's is conv4"
                                          r" \(features\.10\): SQNR [0-9.]+ dB, cosine 0\.99"):
        export_onnx(model.eval(), tmp_path / "m.onnx", small_metadata)
    assert list(tmp_path.iterdir()) == []


def test_a_good_export_matches_eager_at_every_layer(small_model, small_onnx, real_images):
    from alexnet_export.runtimes.verification.layer_errors import (
        FP32_LAYER_MAX_REL,
        FP32_LAYER_MIN_COSINE,
        compare_layers,
        eager_layers,
        onnx_layers,
    )

    report = compare_layers(eager_layers(small_model), onnx_layers(small_onnx),
                            [preprocess_batch(real_images[:8], Preprocessing())])
    assert report.first_diverging(FP32_LAYER_MAX_REL, FP32_LAYER_MIN_COSINE) is None
    # The thresholds sit well clear of float reordering (runtimes/verification/layer_errors.py's comment).
    assert max(f.max_rel for f in report.layers) < 3e-6 and min(f.min_cosine for f in report.layers) > 0.999999


def test_unexpected_operators_are_refused(tmp_path, small_metadata):
    with pytest.raises(ExportError, match=r"unexpected operators \['Mul'\]"):
        export_onnx(_DiffersWhenExported(lambda logits: logits * 1.01).eval(), tmp_path / "m.onnx", small_metadata)
    assert list(tmp_path.iterdir()) == []


def test_bad_opset_batch_and_folder_write_nothing(tmp_path, small_model, small_metadata):
    with pytest.raises(ExportError, match="opset 12 is not supported; expected 18..23"):
        export_onnx(small_model, tmp_path / "a.onnx", small_metadata, opset=12)
    with pytest.raises(ExportError, match="batch size 0 is invalid"):
        export_onnx(small_model, tmp_path / "a.onnx", small_metadata, batch=0)
    with pytest.raises(ArgumentError, match="output folder .*missing does not exist"):
        export_onnx(small_model, tmp_path / "missing" / "a.onnx", small_metadata, verify=False)
    assert list(tmp_path.iterdir()) == []


def test_eager_model_is_left_untouched(tmp_path, small_metadata, real_images):
    """Export swaps LRN for its exportable forms on a copy: the caller's model is the same after."""
    model = seeded_alexnet(10, seed=3)  # its own model: exported here, shared with no other test
    modules_before = [(name, module, type(module)) for name, module in model.named_modules()]
    weights_before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    inputs = preprocess_batch(real_images[:2], small_metadata.preprocessing)
    logits_before = TorchRuntime(model).predict(inputs)

    for lrn in ("native", "pooled"):
        result = export_onnx(model, tmp_path / f"{lrn}.onnx", small_metadata, lrn=lrn)
        assert result.path.is_file() and result.report.samples > 0

    assert [(name, module, type(module)) for name, module in model.named_modules()] == modules_before
    assert sum(type(m) is torch.nn.LocalResponseNorm for _, m, _ in modules_before) == 2
    weights_after = model.state_dict()
    assert list(weights_after) == list(weights_before)
    for name, tensor in weights_before.items():
        assert torch.equal(weights_after[name], tensor), name
    assert not model.training
    np.testing.assert_array_equal(TorchRuntime(model).predict(inputs), logits_before)


def test_pooled_lrn_export_matches_eager_without_lrn_nodes(tmp_path, small_model, small_metadata, real_images):
    result = export_onnx(small_model, tmp_path / "cpu.onnx", small_metadata, lrn="pooled")
    proto = onnx.load(str(result.path))
    ops = [node.op_type for node in proto.graph.node]
    assert "LRN" not in ops and ops.count("AveragePool") == 2 and ops.count("Pow") == 2
    assert "Shape" not in ops and "If" not in ops
    assert {p.key: p.value for p in proto.metadata_props}["alexnet_export.lrn"] == "pooled"
    assert result.report.max_abs <= 1e-4
    runtime = OnnxRuntime(result.path)
    batch = preprocess_batch(real_images[:4], runtime.metadata.preprocessing)
    np.testing.assert_allclose(runtime.predict(batch), TorchRuntime(small_model).predict(batch), atol=1e-4)
    with pytest.raises(ExportError, match="LRN form 'fast' is unknown"):
        export_onnx(small_model, tmp_path / "x.onnx", small_metadata, lrn="fast")
