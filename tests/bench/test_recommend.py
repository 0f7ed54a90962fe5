"""The bench's recommendation: the fastest model per batch whose numbers pass its precision's gate."""

from alexnet_export.bench.recommend import GateCheck, check_gates, recommend
from alexnet_export.bench.results import Row
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.exporter.onnx.quantize import to_fp16
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime


def _row(model, precision, batch, images_per_s):
    return Row(model=model, precision=precision, device="cpu", file_mb=1.0, batch=batch, p50_ms=batch / images_per_s * 1e3,
               p90_ms=0, p99_ms=0, images_per_s=images_per_s, roofline_fraction=None, rounds=3)


def test_a_model_that_computes_something_else_fails_its_gate(onnx_runtime, torch_runtime):
    other = TorchRuntime(seeded_alexnet(10, seed=99))  # same shapes, other weights: fast or not, wrong
    checks = check_gates([("small.onnx", onnx_runtime), ("same.pt", torch_runtime), ("other.pt", other)])
    assert [(c.model, c.passed) for c in checks] == [("small.onnx", True), ("same.pt", True), ("other.pt", False)]
    assert "fails the fp32 parity gate" in checks[2].detail and checks[2].report.min_cosine < 0.9999


def test_without_an_fp32_model_nothing_is_checked(small_onnx, tmp_path):
    to_fp16(small_onnx, tmp_path / "m.fp16.onnx")
    (check,) = check_gates([("m.fp16.onnx", OnnxRuntime(tmp_path / "m.fp16.onnx"))])
    assert (check.precision, check.passed) == ("fp16", False) and "no FP32 model" in check.detail


def test_the_fastest_that_passed_is_picked_per_batch():
    rows = [_row("ref.onnx", "fp32", 1, 50), _row("fast.onnx", "int8-cpu", 1, 200), _row("ok.xml", "int8-openvino", 1, 120),
            _row("ref.onnx", "fp32", 16, 100), _row("fast.onnx", "int8-cpu", 16, 300), _row("ok.xml", "int8-openvino", 16, 250)]
    checks = [GateCheck("ref.onnx", "fp32", True, "reference"), GateCheck("fast.onnx", "int8-cpu", False, "fails"),
              GateCheck("ok.xml", "int8-openvino", True, "int8 gate passed")]
    picks = recommend(rows, checks)
    assert [(p.batch, p.model, p.over_reference) for p in picks] == [(1, "ok.xml", 2.4), (16, "ok.xml", 2.5)]
    assert picks[0].describe() == "batch 1: ok.xml (int8-openvino, 120.0 img/s, 2.40x the FP32 reference)"


def test_bench_times_a_pixel_file_on_pixels_and_leaves_its_gate_to_verify(small_onnx, pixel_onnx):
    from alexnet_export.bench.harness import Settings, run_benchmark

    result = run_benchmark([small_onnx, pixel_onnx], Settings(batch_sizes=(1,), threads=1, warmup=0, iterations=2,
                                                              cold_start=False))
    assert [(row.model, row.batch) for row in result.results] == [("small.onnx", 1), ("small.uint8.onnx", 1)]
    assert [r.model for r in result.classify] == ["small.onnx", "small.uint8.onnx"]
    (pixel_check,) = [check for check in result.gates if check.model == "small.uint8.onnx"]
    assert not pixel_check.passed and "another input format" in pixel_check.detail
