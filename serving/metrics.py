"""`GET /metrics` for `serve`: Prometheus text format through prometheus-client.

Names follow Triton's `nv_inference_*` where they mean the same, so a dashboard built for Triton
reads this server too; prometheus-client adds `_total` to every counter, as OpenMetrics requires
(Triton's own exporter writes e.g. `nv_inference_count` without it). Each app has its own
CollectorRegistry, never the process-wide one, so several servers (and tests) in one process
count apart.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Model runs take about 1 to 100 ms on CPUs and queue waits up to --max-queue-delay-ms plus a run.
SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_MICRO = 1e6


class ServerMetrics:
    """The counters of one served model. Labels: model and version (as Triton's), endpoint
    (infer or classify) on requests, and the HTTP status on failures."""

    def __init__(self, model: str, version: str):
        self.registry = CollectorRegistry()
        self._model = {"model": model, "version": version}
        request = ("model", "version", "endpoint")
        model_labels = ("model", "version")

        def counter(name: str, help_text: str, labels=model_labels) -> Counter:
            return Counter(name, help_text, labels, registry=self.registry)

        def histogram(name: str, help_text: str, buckets) -> Histogram:
            return Histogram(name, help_text, model_labels, buckets=buckets, registry=self.registry)

        self.success = counter("nv_inference_request_success", "Inference requests answered 2xx", request)
        self.failure = counter("nv_inference_request_failure", "Inference requests answered with an error",
                               (*request, "status"))
        self.request_us = counter("nv_inference_request_duration_us",
                                  "Cumulative time from request to answer, successful requests, microseconds", request)
        self.images = counter("nv_inference_count", "Images inferred (a batch of n counts n)")
        self.runs = counter("nv_inference_exec_count", "Model runs (batches)")
        self.queue_us = counter("nv_inference_queue_duration_us", "Cumulative time requests waited for a model run,"
                                " microseconds")
        self.compute_us = counter("nv_inference_compute_infer_duration_us",
                                  "Cumulative model run time, microseconds, counted once per request as Triton does")
        self.queue_seconds = histogram("alexnet_export_queue_duration_seconds",
                                       "Time each request waited for its model run", SECONDS_BUCKETS)
        self.compute_seconds = histogram("alexnet_export_compute_duration_seconds", "Time of each model run",
                                         SECONDS_BUCKETS)
        self.batch_size = histogram("alexnet_export_batch_size", "Images per model run", BATCH_BUCKETS)
        self.in_flight = Gauge("alexnet_export_requests_in_flight", "Inference requests received and not yet answered",
                               request, registry=self.registry)

    def on_run(self, waited: list[float], images: int, seconds: float) -> None:
        """What the batcher reports after each model run (serving/batcher.py)."""
        labels = self._model
        self.images.labels(**labels).inc(images)
        self.runs.labels(**labels).inc()
        self.queue_us.labels(**labels).inc(sum(waited) * _MICRO)
        self.compute_us.labels(**labels).inc(seconds * _MICRO * len(waited))
        for wait in waited:
            self.queue_seconds.labels(**labels).observe(wait)
        self.compute_seconds.labels(**labels).observe(seconds)
        self.batch_size.labels(**labels).observe(images)

    def answered(self, endpoint: str, status: int, seconds: float) -> None:
        labels = {**self._model, "endpoint": endpoint}
        if status < 400:
            self.success.labels(**labels).inc()
            self.request_us.labels(**labels).inc(seconds * _MICRO)
        else:
            self.failure.labels(**labels, status=str(status)).inc()

    def requests_in_flight(self, endpoint: str) -> Gauge:
        return self.in_flight.labels(**self._model, endpoint=endpoint)

    def text(self) -> bytes:
        return generate_latest(self.registry)
