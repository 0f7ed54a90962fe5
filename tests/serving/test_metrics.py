"""serving/metrics.py on its own: the recording calls, read back through prometheus-client's own
registry and its text parser. No server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from alexnet_export.serving.batcher import DynamicBatcher
from alexnet_export.serving.metrics import CONTENT_TYPE, ServerMetrics

MODEL = {"model": "alexnet", "version": "1"}
INFER = {**MODEL, "endpoint": "infer"}
CLASSIFY = {**MODEL, "endpoint": "classify"}


def value(metrics: ServerMetrics, name: str, **labels) -> float | None:
    """A sample's value in this server's registry; None if it has no such sample yet."""
    return metrics.registry.get_sample_value(name, labels)


def bucket(metrics: ServerMetrics, name: str, le: str) -> float | None:
    return value(metrics, f"{name}_bucket", **MODEL, le=le)


def test_nothing_is_counted_before_anything_happens():
    metrics = ServerMetrics("alexnet", "1")
    for name in ("nv_inference_count_total", "nv_inference_exec_count_total", "nv_inference_request_success_total",
                 "alexnet_export_batch_size_count"):
        assert value(metrics, name, **MODEL) is None
    assert value(metrics, "nv_inference_request_success_total", **INFER) is None


def test_a_model_run_counts_images_runs_and_times():
    metrics = ServerMetrics("alexnet", "1")
    metrics.on_run([0.001, 0.003], 3, 0.02)  # two requests, three images, a 20 ms run
    assert value(metrics, "nv_inference_count_total", **MODEL) == 3
    assert value(metrics, "nv_inference_exec_count_total", **MODEL) == 1
    assert value(metrics, "nv_inference_queue_duration_us_total", **MODEL) == pytest.approx(4000)
    # Triton counts a run's compute time once per request in it.
    assert value(metrics, "nv_inference_compute_infer_duration_us_total", **MODEL) == pytest.approx(2 * 20_000)
    # One queue observation per request, one compute and one batch-size observation per run.
    queue = "alexnet_export_queue_duration_seconds"
    assert value(metrics, f"{queue}_count", **MODEL) == 2
    assert value(metrics, f"{queue}_sum", **MODEL) == pytest.approx(0.004)
    assert [bucket(metrics, queue, le) for le in ("0.0005", "0.001", "0.0025", "0.005", "+Inf")] == [0, 1, 1, 2, 2]
    compute = "alexnet_export_compute_duration_seconds"
    assert value(metrics, f"{compute}_count", **MODEL) == 1
    assert [bucket(metrics, compute, le) for le in ("0.01", "0.025")] == [0, 1]
    size = "alexnet_export_batch_size"
    assert value(metrics, f"{size}_sum", **MODEL) == 3
    assert [bucket(metrics, size, le) for le in ("2.0", "4.0", "256.0", "+Inf")] == [0, 1, 1, 1]


def test_runs_add_up():
    metrics = ServerMetrics("alexnet", "1")
    metrics.on_run([0.5], 1, 0.001)
    metrics.on_run([0.01] * 4, 16, 0.2)
    assert value(metrics, "nv_inference_count_total", **MODEL) == 17
    assert value(metrics, "nv_inference_exec_count_total", **MODEL) == 2
    assert value(metrics, "nv_inference_queue_duration_us_total", **MODEL) == pytest.approx(500_000 + 40_000)
    assert value(metrics, "nv_inference_compute_infer_duration_us_total", **MODEL) == pytest.approx(1000 + 4 * 200_000)
    assert value(metrics, "alexnet_export_queue_duration_seconds_count", **MODEL) == 5
    assert value(metrics, "alexnet_export_batch_size_sum", **MODEL) == 17
    assert [bucket(metrics, "alexnet_export_batch_size", le) for le in ("1.0", "8.0", "16.0")] == [1, 1, 2]


def test_answers_count_by_endpoint_and_status_and_only_successes_are_timed():
    metrics = ServerMetrics("alexnet", "1")
    metrics.answered("infer", 200, 0.25)
    metrics.answered("infer", 200, 0.5)
    metrics.answered("infer", 400, 9.0)
    metrics.answered("classify", 503, 1.0)
    metrics.answered("classify", 400, 1.0)
    metrics.answered("classify", 400, 1.0)
    assert value(metrics, "nv_inference_request_success_total", **INFER) == 2
    assert value(metrics, "nv_inference_request_duration_us_total", **INFER) == pytest.approx(750_000)
    assert value(metrics, "nv_inference_request_failure_total", **INFER, status="400") == 1
    assert value(metrics, "nv_inference_request_success_total", **CLASSIFY) is None
    assert value(metrics, "nv_inference_request_duration_us_total", **CLASSIFY) is None
    assert value(metrics, "nv_inference_request_failure_total", **CLASSIFY, status="503") == 1
    assert value(metrics, "nv_inference_request_failure_total", **CLASSIFY, status="400") == 2
    # Answers are not model runs.
    assert value(metrics, "nv_inference_exec_count_total", **MODEL) is None


def test_requests_in_flight_rise_and_fall_even_when_a_handler_fails():
    metrics = ServerMetrics("alexnet", "1")
    gauge = "alexnet_export_requests_in_flight"
    with metrics.requests_in_flight("infer").track_inprogress():
        with metrics.requests_in_flight("infer").track_inprogress():
            assert value(metrics, gauge, **INFER) == 2
            assert value(metrics, gauge, **CLASSIFY) is None
    assert value(metrics, gauge, **INFER) == 0
    with pytest.raises(RuntimeError):
        with metrics.requests_in_flight("classify").track_inprogress():
            assert value(metrics, gauge, **CLASSIFY) == 1
            raise RuntimeError("the handler failed")
    assert value(metrics, gauge, **CLASSIFY) == 0


def test_each_server_counts_apart_and_never_in_the_process_registry():
    first, second = ServerMetrics("alexnet", "1"), ServerMetrics("resnet", "2")
    first.on_run([0.0], 4, 0.01)
    assert value(first, "nv_inference_count_total", **MODEL) == 4
    assert value(second, "nv_inference_count_total", model="resnet", version="2") is None
    assert value(second, "nv_inference_count_total", **MODEL) is None
    assert REGISTRY.get_sample_value("nv_inference_count_total", MODEL) is None


def test_text_is_prometheus_format_with_tritons_names():
    metrics = ServerMetrics("alexnet", "1")
    metrics.on_run([0.002], 2, 0.01)
    metrics.answered("infer", 200, 0.02)
    assert CONTENT_TYPE.startswith("text/plain; version=")
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(metrics.text().decode()) for sample in family.samples}
    model = tuple(sorted(MODEL.items()))
    assert samples[("nv_inference_count_total", model)] == 2
    assert samples[("nv_inference_exec_count_total", model)] == 1
    assert samples[("nv_inference_request_success_total", tuple(sorted(INFER.items())))] == 1
    assert samples[("alexnet_export_batch_size_count", model)] == 1


def test_the_batchers_reports_land_in_the_metrics():
    metrics = ServerMetrics("alexnet", "1")

    async def scenario():
        batcher = DynamicBatcher(lambda images: images[:, :2] * 2, max_batch=4, max_delay=0.05, on_run=metrics.on_run)
        await batcher.start()
        sizes = (1, 2, 3, 1, 4, 2)  # runs of 3 (3 is held), 4, 4 and a last 2 that waits alone
        await asyncio.gather(*(batcher.submit(np.ones((n, 3))) for n in sizes))
        await batcher.close()
        return sizes, batcher.stats

    sizes, stats = asyncio.run(scenario())
    assert value(metrics, "nv_inference_count_total", **MODEL) == sum(sizes) == stats.images
    assert value(metrics, "nv_inference_exec_count_total", **MODEL) == stats.runs
    assert value(metrics, "alexnet_export_batch_size_count", **MODEL) == stats.runs
    assert value(metrics, "alexnet_export_batch_size_sum", **MODEL) == sum(sizes)
    assert value(metrics, "alexnet_export_queue_duration_seconds_count", **MODEL) == len(sizes)
    assert value(metrics, "alexnet_export_compute_duration_seconds_sum", **MODEL) == pytest.approx(stats.run_seconds)
    # The last request waited out its delay (50 ms) for company that never came.
    assert value(metrics, "alexnet_export_queue_duration_seconds_sum", **MODEL) >= 0.05
