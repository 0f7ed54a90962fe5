"""A file's precision is decided once, from its graph, when a runtime opens it; everyone reads
`runtime.precision`, so a file quantized by another tool is INT8 everywhere."""

import numpy as np
import onnx
import pytest

from alexnet_export.errors import ModelLoadError
from alexnet_export.models.spec import PRECISION_KEY
from alexnet_export.models.precisions import FOREIGN_INT8, FP16, FP32, INT8_CPU, INT8_TENSORRT
from alexnet_export.runtimes import OnnxRuntime
from alexnet_export.runtimes.onnx.reader import read_graph_facts


@pytest.fixture(scope="module")
def ranges(small_onnx, calib_dir, small_metadata, calibration_cache):
    from alexnet_export.exporter.calibration.ranges import calibration_ranges, load_calibration_set

    calibration_set = load_calibration_set(calib_dir, 64, small_metadata.preprocessing)
    return calibration_ranges(small_onnx, calibration_set, "percentile", calibration_cache)


@pytest.fixture(scope="module")
def made_here(small_onnx, ranges, tmp_path_factory):
    """The exporter's FP16 and two INT8 files of the 10-class model, by precision."""
    from alexnet_export.exporter.onnx.quantize import to_fp16, to_int8_cpu, to_int8_tensorrt

    folder = tmp_path_factory.mktemp("precisions")
    to_fp16(small_onnx, folder / "fp16.onnx")
    to_int8_tensorrt(small_onnx, ranges, folder / "int8-tensorrt.onnx")
    to_int8_cpu(small_onnx, ranges, folder / "int8-cpu.onnx")
    return {FP32: small_onnx, **{p: folder / f"{p}.onnx" for p in (FP16, INT8_TENSORRT, INT8_CPU)}}


class RandomBatches:
    """onnxruntime.quantization's CalibrationDataReader protocol: a few random batches, then None."""

    def __init__(self, count=4):
        rng = np.random.default_rng(0)
        self.batches = iter([{"images": rng.normal(size=(2, 3, 224, 224)).astype(np.float32)} for _ in range(count)])

    def get_next(self):
        return next(self.batches, None)


@pytest.fixture(scope="module")
def quantized_elsewhere(small_onnx, tmp_path_factory):
    """The FP32 export quantized with ONNX Runtime's own quantize_static: its metadata still says fp32."""
    from onnxruntime.quantization import quantize_static

    path = tmp_path_factory.mktemp("foreign") / "foreign.int8.onnx"
    quantize_static(str(small_onnx), str(path), RandomBatches())
    return path


@pytest.mark.parametrize("precision", [FP32, FP16, INT8_TENSORRT, INT8_CPU])
def test_runtime_reports_what_the_exporter_made(made_here, precision):
    assert OnnxRuntime(made_here[precision], providers=["CPUExecutionProvider"]).precision == precision


def test_a_file_quantized_elsewhere_is_int8_whatever_its_label_says(quantized_elsewhere):
    labels = {p.value for p in onnx.load(str(quantized_elsewhere)).metadata_props if p.key == PRECISION_KEY}
    assert labels == {FP32}  # the stale label the FP32 export wrote
    runtime = OnnxRuntime(quantized_elsewhere, providers=["CPUExecutionProvider"])
    assert runtime.precision == FOREIGN_INT8 and runtime.metadata.precision == FP32


def test_a_stale_label_loses_to_the_graph_both_ways(made_here, tmp_path):
    """FP16 labelled fp32 is FP16; FP32 labelled int8-cpu is FP32."""
    for source, label, expected in ((made_here[FP16], FP32, FP16), (made_here[FP32], INT8_CPU, FP32)):
        model = onnx.load(str(source))
        for prop in model.metadata_props:
            if prop.key == PRECISION_KEY:
                prop.value = label
        relabelled = tmp_path / f"{expected}-labelled-{label}.onnx"
        onnx.save_model(model, str(relabelled))
        assert OnnxRuntime(relabelled, providers=["CPUExecutionProvider"]).precision == expected


def test_the_graph_reader_agrees_with_onnx_on_the_metadata(made_here):
    for path in made_here.values():
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        assert read_graph_facts(path).metadata_props == props


def test_a_file_that_is_not_protobuf_is_a_load_error(small_onnx, tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(small_onnx.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="cannot read the graph of .*truncated.onnx"):
        read_graph_facts(truncated)


def test_int8_everywhere_bench_rows_and_triton_config(quantized_elsewhere, tmp_path):
    from alexnet_export.bench.harness import Settings, run_benchmark
    from alexnet_export.serving.triton_repo import ServingOptions, add_onnx

    settings = Settings(batch_sizes=(1,), threads=1, warmup=0, iterations=1, cold_start=False)
    result = run_benchmark([quantized_elsewhere], settings)
    (model,), (row,), (classify,) = result.models, result.results, result.classify
    assert model.precision == row.precision == classify.precision == FOREIGN_INT8
    assert row.roofline_fraction is None  # the roofline is the FP32 rate
    entry = add_onnx(tmp_path / "repo", quantized_elsewhere, ServingOptions(kind="gpu", onnx_tensorrt=True))
    config = (entry.folder / "config.pbtxt").read_text()
    assert 'parameters { key: "precision_mode" value: "INT8" }' in config
