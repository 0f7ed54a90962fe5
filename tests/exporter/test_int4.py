"""INT4 block-wise weights for fc6-fc8 (exporter/onnx/int4.py): the Gemm -> MatMul rewrite keeps the
arithmetic, the file holds three MatMulNBits, reads back as int4 everywhere and passes its gate."""

from __future__ import annotations

import numpy as np
import onnx

from alexnet_export.models.precisions import INT4


def test_gemm_to_matmul_rewrite_keeps_the_logits(tmp_path, small_onnx, onnx_runtime):
    from alexnet_export.exporter.onnx.int4 import gemms_to_matmuls
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime

    model = onnx.load(str(small_onnx))
    assert gemms_to_matmuls(model) == 3
    assert not [node for node in model.graph.node if node.op_type == "Gemm"]
    rewritten = tmp_path / "matmul.onnx"
    onnx.save_model(model, str(rewritten))
    inputs = np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
    expected = onnx_runtime.predict(inputs)
    got = OnnxRuntime(rewritten, providers=["CPUExecutionProvider"]).predict(inputs)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_int4_file_has_three_matmulnbits_reads_back_as_int4_and_passes_its_gate(tmp_path, small_onnx):
    from alexnet_export.exporter.pipeline import make_precision_file
    from alexnet_export.models.precisions import precision
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime
    from alexnet_export.runtimes.onnx.reader import read_graph_facts

    result = make_precision_file(small_onnx, INT4, tmp_path / "small.int4.onnx")
    assert result.path.name == "small.int4.onnx" and result.precision == INT4
    assert not result.report.failures(precision(INT4).gate)
    graph = onnx.load(str(result.path)).graph
    nbits = [node for node in graph.node if node.op_type == "MatMulNBits"]
    assert len(nbits) == 3
    assert {onnx.helper.get_attribute_value(a) for node in nbits for a in node.attribute if a.name == "bits"} == {4}
    assert read_graph_facts(result.path).precision == INT4
    assert OnnxRuntime(result.path, providers=["CPUExecutionProvider"]).precision == INT4
    # fc6-fc8 hold 172 of the 10-class file's 181 MB: in 4 bits (with a scale and zero point per 16) it is under a third
    assert result.path.stat().st_size < small_onnx.stat().st_size / 3
