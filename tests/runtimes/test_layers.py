"""The paper's layer names on the exported graph: by weight name, and by order when names differ."""

import onnx
import pytest

from alexnet_export.runtimes.verification.layers import LAYERS, WEIGHTED, LayerError, find_layers, weighted_layers


def test_layer_names_map_to_the_exported_nodes_by_weight_and_by_order(small_onnx):
    model = onnx.load(str(small_onnx))
    found = find_layers(model)
    assert list(found) == [layer.name for layer in LAYERS]
    nodes = {node.name: node for node in model.graph.node}
    for layer in LAYERS:
        node = nodes[found[layer.name].node]
        assert node.op_type == layer.op
        if layer.name in WEIGHTED:  # the seed's module owns the weight the node reads
            assert node.input[1] == f"{layer.module}.weight"
    # Each layer's output is what the next layer reads: after its ReLU, and pool5 flattened.
    readers = {name for node in model.graph.node for name in node.input}
    assert found["conv3"].output in readers and nodes[found["conv3"].node].output[0] != found["conv3"].output
    assert found["fc8"].output == "logits"
    # Another exporter's weight names: the order of Conv and Gemm nodes still tells the layers.
    renamed = {init.name: f"onnx::W_{i}" for i, init in enumerate(model.graph.initializer)}
    for init in model.graph.initializer:
        init.name = renamed[init.name]
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    assert find_layers(model) == found


def test_a_graph_that_is_not_alexnet_is_refused(small_onnx):
    model = onnx.load(str(small_onnx))
    gemm = next(node for node in model.graph.node if node.op_type == "Gemm")
    gemm.input[1] = "unknown"
    model.graph.node.remove(next(n for n in model.graph.node if n.op_type == "Conv" and n.input[1] == "features.12.weight"))
    with pytest.raises(LayerError, match="weighted layers are Conv Conv Conv Conv Gemm Gemm Gemm; expected AlexNet's"
                                         " Conv Conv Conv Conv Conv Gemm Gemm Gemm"):
        find_layers(model)


def test_keep_float_names_are_checked():
    assert weighted_layers("fc8, conv4") == ("conv4", "fc8")  # network order
    with pytest.raises(LayerError, match=r"layer 'conv6' is unknown; expected some of conv1, conv2, conv3, conv4,"
                                         r" conv5, fc6, fc7, fc8"):
        weighted_layers(["conv6"])
    with pytest.raises(LayerError, match="layer 'pool1' has no weights to keep in float"):
        weighted_layers(["pool1"])
