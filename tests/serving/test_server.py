"""`alexnet-export serve`, started as a user would (the console script, a free loopback port) and
driven by Triton's own HTTP client, by raw HTTP as curl sends it, and by bad requests.

"Identical" below means bitwise: each request's logits equal `OnnxRuntime.predict` on that
request's images alone, whatever other requests shared its model run. That holds for ONNX
Runtime's CPU kernels, measured on the development machine at batch 1 to 16: convolutions run
image by image and the fully connected layers' sums run in the same order for every batch size,
so a row does not depend on the rows beside it.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from google.protobuf import text_format

from alexnet_export.models.spec import CHANNELS, IMAGE_SIZE, INPUT_NAME, OUTPUT_NAME
from alexnet_export.serving.tensors import DATATYPE
from alexnet_export.serving.triton_repo import ServingOptions, add_onnx
from prometheus_client.parser import text_string_to_metric_families

tritonclient_http = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http] (the test extra)")

MAX_BATCH = 8
IMAGE_BYTES = CHANNELS * IMAGE_SIZE * IMAGE_SIZE * 4
# The one shape every answer has: {"error": "<one line>"}.
TRACEBACK_SIGNS = ("Traceback", 'File "', "Error(")


@pytest.fixture(scope="module")
def server(console, small_onnx, server_process):
    started = server_process(console, small_onnx, "--max-batch", MAX_BATCH, "--max-queue-delay-ms", 50,
                            "--max-body-mb", 16)
    yield started
    assert started.stop() == 0, "".join(started.log)


@pytest.fixture(scope="module")
def client(server):
    return tritonclient_http.InferenceServerClient(server.address)


def _images(seed, count=1):
    return np.random.default_rng(seed).standard_normal((count, CHANNELS, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)


def _binary_request(images, binary_output=True) -> tuple[bytes, dict]:
    header = json.dumps({
        "inputs": [{"name": INPUT_NAME, "datatype": DATATYPE, "shape": list(images.shape),
                    "parameters": {"binary_data_size": images.nbytes}}],
        "parameters": {"binary_data_output": binary_output}}).encode()
    return header + images.tobytes(), {"Inference-Header-Content-Length": str(len(header)),
                                       "Content-Type": "application/octet-stream"}


def _binary_logits(body: bytes, headers: dict, count: int) -> np.ndarray:
    length = int(headers["inference-header-content-length"])
    output = json.loads(body[:length])["outputs"][0]
    assert output["parameters"]["binary_data_size"] == len(body) - length
    return np.frombuffer(body[length:], "<f4").reshape(count, -1)


def _assert_clean_error(status, body, expected_status, pattern):
    assert status == expected_status, body
    answer = json.loads(body)
    assert list(answer) == ["error"] and "\n" not in answer["error"], answer
    assert re.search(pattern, answer["error"]), answer["error"]
    assert not any(sign in answer["error"] for sign in TRACEBACK_SIGNS), answer["error"]


def test_health_and_metadata_match_the_triton_repository(client, small_onnx, tmp_path, model_config_pb2):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("alexnet")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("alexnet")
    # What `alexnet-export triton` writes for the same file: one client works against both.
    entry = add_onnx(tmp_path, small_onnx, ServingOptions())
    config = text_format.Parse((entry.folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    type_name = model_config_pb2.DataType.Name
    assert metadata["platform"] == config.platform
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        (t.name, type_name(t.data_type).removeprefix("TYPE_"), [-1, *t.dims]) for t in config.input]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["outputs"]] == [
        (t.name, type_name(t.data_type).removeprefix("TYPE_"), [-1, *t.dims]) for t in config.output]


@pytest.mark.parametrize("binary_input, binary_output, compression", [
    (True, True, None), (False, False, None), (True, False, "gzip"), (False, True, "deflate")])
def test_tritonclient_infer_gives_the_wrappers_logits(client, onnx_runtime, binary_input, binary_output, compression):
    images = _images(1, 3)
    tensor = tritonclient_http.InferInput(INPUT_NAME, list(images.shape), DATATYPE)
    tensor.set_data_from_numpy(images, binary_data=binary_input)
    result = client.infer("alexnet", [tensor], request_id="req-7", request_compression_algorithm=compression,
                          outputs=[tritonclient_http.InferRequestedOutput(OUTPUT_NAME, binary_data=binary_output)])
    assert result.get_response()["id"] == "req-7"
    assert np.array_equal(result.as_numpy(OUTPUT_NAME), onnx_runtime.predict(images))


def test_tritonclient_classification_extension(client, onnx_runtime, small_metadata):
    images = _images(2, 2)
    tensor = tritonclient_http.InferInput(INPUT_NAME, list(images.shape), DATATYPE)
    tensor.set_data_from_numpy(images)
    result = client.infer("alexnet", [tensor], outputs=[tritonclient_http.InferRequestedOutput(OUTPUT_NAME,
                                                                                                 class_count=3)])
    expected = onnx_runtime.predict(images)
    for row, strings in zip(expected, result.as_numpy(OUTPUT_NAME)):
        best = np.argsort(-row)[:3]
        assert [s.decode() for s in strings] == [f"{row[i]:f}:{i}:{small_metadata.labels[i]}" for i in best]


def test_curl_style_classify_and_json_infer(server, onnx_runtime, photos):
    image = photos[1].read_bytes()
    status, headers, body = server.request("POST", "/v2/models/alexnet/classify?top_k=3", image,
                                           {"Content-Type": "image/png"})
    assert status == 200 and headers["content-type"] == "application/json", body
    predictions = json.loads(body)["predictions"]
    expected = onnx_runtime.classify(photos[1], top_k=3)[0]
    assert [(p["label"], p["probability"]) for p in predictions] == expected
    images = _images(3, 2)  # JSON with nested lists, as a hand-written request would have them
    request = {"inputs": [{"name": INPUT_NAME, "datatype": DATATYPE, "shape": [2, 3, 224, 224],
                           "data": images.tolist()}]}
    status, _, body = server.request("POST", "/v2/models/alexnet/versions/1/infer", json.dumps(request),
                                     {"Content-Type": "application/json"})
    output = json.loads(body)["outputs"][0]
    assert status == 200 and output["shape"] == [2, 10] and output["datatype"] == DATATYPE
    assert np.array_equal(np.array(output["data"], np.float32).reshape(2, 10), onnx_runtime.predict(images))


def _infer_json(**tensor):
    base = {"name": INPUT_NAME, "datatype": DATATYPE, "shape": [1, 3, 224, 224], "data": [0.0] * (IMAGE_BYTES // 4)}
    return json.dumps({"inputs": [{**base, **tensor}]})


INFER = "/v2/models/alexnet/infer"
JSON = {"Content-Type": "application/json"}
_nan = _images(4)
_nan[0, 0, 0, 0] = np.nan
# What the HTTP layer adds: status codes, content types, encodings, routes, and that the server hands the
# parser its header and settings (--max-batch, the class count). Every malformed body is in
# test_protocol.py, parsed without a server; a few stay here to show a parsing error's way to a 400.
BAD_REQUESTS = {
    "malformed JSON": ("POST", INFER, b'{"inputs": [', JSON, 400, "malformed JSON"),
    "batch over --max-batch": ("POST", INFER, _infer_json(shape=[9, 3, 224, 224]), JSON, 400, "1 to 8 images"),
    "classification over the class count": (
        "POST", INFER, json.dumps({**json.loads(_infer_json()),
                                   "outputs": [{"name": "logits", "parameters": {"classification": 11}}]}),
        JSON, 400, "classification is 11; expected 1 to 10"),
    "binary NaN": ("POST", INFER, *_binary_request(_nan), 400, "1 NaN or infinite"),
    "header length past the body": ("POST", INFER, b"{}", {"Inference-Header-Content-Length": "99"}, 400,
                                    "Inference-Header-Content-Length is '99'"),
    "unknown model": ("POST", "/v2/models/resnet/infer", _infer_json(), JSON, 404, "unknown model 'resnet'"),
    "unknown model metadata": ("GET", "/v2/models/resnet", None, {}, 404, "unknown model 'resnet'"),
    "unknown version": ("GET", "/v2/models/alexnet/versions/2/ready", None, {}, 404, "unknown version '2'"),
    "text/plain to infer": ("POST", INFER, _infer_json(), {"Content-Type": "text/plain"}, 415, "text/plain"),
    "form data (curl -d)": ("POST", INFER, _infer_json(), {"Content-Type": "application/x-www-form-urlencoded"},
                            415, "expected none, application/json, application/octet-stream"),
    "JSON to classify": ("POST", "/v2/models/alexnet/classify", b"{}", JSON, 415, "expected image/"),
    "unknown encoding": ("POST", INFER, b"x", {"Content-Encoding": "br"}, 415, "Content-Encoding br"),
    "broken gzip": ("POST", INFER, b"not gzip", {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
    "not an image": ("POST", "/v2/models/alexnet/classify", b"GIF89a not really", {"Content-Type": "image/gif"},
                     400, "cannot read data as an image"),
    "text as an image": ("POST", "/v2/models/alexnet/classify", b"hello", {"Content-Type": "image/jpeg"}, 400,
                         "not a format Pillow recognises"),
    "empty image": ("POST", "/v2/models/alexnet/classify", b"", {"Content-Type": "image/jpeg"}, 400, "body is empty"),
    "top_k zero": ("POST", "/v2/models/alexnet/classify?top_k=0", b"x", {"Content-Type": "image/png"}, 400,
                   "top_k is '0'; expected an integer from 1 to 10"),
    "unknown path": ("GET", "/v2/repository/index", None, {}, 404, "Not Found"),
    "GET on infer": ("GET", INFER, None, {}, 405, "Method Not Allowed"),
    "loading a model by path": ("POST", "/v2/repository/models/alexnet/load", b"{}", JSON, 404, "Not Found"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_one_line_errors(server, case):
    method, path, body, headers, expected_status, pattern = BAD_REQUESTS[case]
    status, response_headers, answer = server.request(method, path, body, headers)
    _assert_clean_error(status, answer, expected_status, pattern)
    assert response_headers["content-type"] == "application/json"


def test_oversize_bodies_get_413(server):
    path = INFER
    # Declared too large: refused before a byte of the body is read.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", path)
    connection.putheader("Content-Length", str(100 * 2**20))
    connection.endheaders()
    response = connection.getresponse()
    _assert_clean_error(response.status, response.read(), 413, "limit of 16,777,216 bytes")
    connection.close()
    # Chunked, with no length given: cut off once it passes the limit.
    chunks = (b"\0" * 2**20 for _ in range(20))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", path, body=chunks, headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
        response = connection.getresponse()
        _assert_clean_error(response.status, response.read(), 413, "limit")
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the server closed the connection instead of answering 413")
    finally:
        connection.close()
    # A small gzip body that inflates past the limit: stopped at the limit, never inflated whole.
    bomb = gzip.compress(b"\0" * (20 * 2**20))
    status, _, answer = server.request("POST", path, bomb, {"Content-Encoding": "gzip"})
    _assert_clean_error(status, answer, 413, "limit")


def test_a_client_leaving_mid_body_is_not_a_server_error(server):
    logged = len(server.log)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
        client.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{}}".encode())
        client.shutdown(socket.SHUT_WR)
        client.recv(1024)
    status, _, answer = server.request("GET", "/v2/health/ready")
    assert status == 200 and json.loads(answer) == {"ready": True}
    assert "Traceback" not in "".join(server.log[logged:])


def _send_together(server, requests):
    """Send binary requests from one thread each, all at once; their (status, headers, body)."""
    bodies = [_binary_request(images) for images in requests]
    start = threading.Barrier(len(requests))
    answers = [None] * len(requests)

    def send(index):
        start.wait()
        answers[index] = server.request("POST", INFER, *bodies[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def _metrics(server) -> dict:
    """GET /metrics, parsed by prometheus-client: {(sample name, sorted label pairs): value}."""
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version="), body
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


def _metric(samples: dict, name: str, **labels) -> float:
    """The sum of `name` over the samples carrying `labels` (0 when there are none yet)."""
    return sum(value for (sample, pairs), value in samples.items()
               if sample == name and set(labels.items()) <= set(pairs))


def test_concurrent_clients_are_batched_and_get_the_wrappers_logits(server, onnx_runtime):
    requests = [_images(10 + i, 1 + i % 2) for i in range(8)]  # 12 images: fits 8 + 4 or so
    before, scraped_before = server.stats(), _metrics(server)
    during = []
    scraper = threading.Thread(target=lambda: during.extend(_metrics(server) for _ in range(3)))
    scraper.start()
    answers = _send_together(server, requests)
    scraper.join(60)
    after, scraped = server.stats(), _metrics(server)
    for images, (status, headers, body) in zip(requests, answers):
        assert status == 200, body
        assert np.array_equal(_binary_logits(body, headers, len(images)), onnx_runtime.predict(images))
    runs = after["execution_count"] - before["execution_count"]
    assert after["request_count"] - before["request_count"] == len(requests)
    assert after["inference_count"] - before["inference_count"] == 12
    assert runs < len(requests), f"{len(requests)} concurrent requests took {runs} model runs: nothing was merged"
    assert max(s["batch_size"] for s in after["batch_stats"]) <= MAX_BATCH
    # /metrics, scraped during and after, counts what was sent, under Triton's names.
    grew = {name: _metric(scraped, name, model="alexnet") - _metric(scraped_before, name, model="alexnet")
            for name in ("nv_inference_request_success_total", "nv_inference_count_total",
                         "nv_inference_exec_count_total", "alexnet_export_batch_size_count",
                         "alexnet_export_batch_size_sum", "alexnet_export_queue_duration_seconds_count")}
    assert grew == {"nv_inference_request_success_total": 8, "nv_inference_count_total": 12,
                    "nv_inference_exec_count_total": runs, "alexnet_export_batch_size_count": runs,
                    "alexnet_export_batch_size_sum": 12, "alexnet_export_queue_duration_seconds_count": 8}
    assert _metric(scraped, "nv_inference_request_success_total", endpoint="infer") >= 8
    assert _metric(scraped, "nv_inference_compute_infer_duration_us_total") > 0
    assert len(during) == 3 and all(0 <= _metric(s, "alexnet_export_requests_in_flight") <= 8 for s in during)
    assert _metric(scraped, "alexnet_export_requests_in_flight") == 0


def test_without_batching_every_request_runs_alone(console, small_onnx, onnx_runtime, server_process):
    server = server_process(console, small_onnx, "--no-batching", "--workers", 2, "--max-batch", 4)
    try:
        assert "no batching" in server.log[0] and "2 worker(s)" in server.log[0]
        requests = [_images(20 + i, 2) for i in range(6)]
        for images, (status, headers, body) in zip(requests, _send_together(server, requests)):
            assert status == 200 and np.array_equal(_binary_logits(body, headers, 2), onnx_runtime.predict(images))
        stats = server.stats()
        assert stats["execution_count"] == stats["request_count"] == 6
        assert stats["batch_stats"] == [{"batch_size": 2, "compute_infer": {"count": 6}}]
    finally:
        assert server.stop() == 0, "".join(server.log)


def _in_flight(connection: http.client.HTTPConnection) -> float:
    """alexnet_export_requests_in_flight for infer, scraped on `connection` (kept alive: no new connection)."""
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, body
    return sum(sample.value for family in text_string_to_metric_families(body.decode()) for sample in family.samples
               if sample.name == "alexnet_export_requests_in_flight" and sample.labels.get("endpoint") == "infer")


def test_connections_past_the_limit_get_503_and_the_server_recovers(console, small_onnx, server_process):
    # Three connections: one kept alive to watch the server, two clients that open a request and never
    # finish its body. Each client must be admitted before the next connection opens: one that opens
    # first counts against the client still being admitted, which would get the 503.
    server = server_process(console, small_onnx, "--max-connections", 3)
    watcher = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    held = []
    try:
        assert _in_flight(watcher) == 0
        for admitted in (1, 2):
            client = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            client.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
            held.append(client)
            deadline = time.monotonic() + 10
            while (in_flight := _in_flight(watcher)) < admitted:  # its handler waits for the body
                assert time.monotonic() < deadline, f"client {admitted} was not admitted: {in_flight} in flight"
                time.sleep(0.01)
            assert in_flight == admitted
        for client in held:  # both admitted: waiting for their bodies, not answered
            client.settimeout(0.2)
            with pytest.raises(socket.timeout):
                client.recv(100)
        status, _, _ = server.request("GET", "/v2/health/ready")  # the fourth connection
        assert status == 503
        for client in held:
            client.close()
        held.clear()
        deadline = time.monotonic() + 10
        while server.request("GET", "/v2/health/ready")[0] != 200:
            assert time.monotonic() < deadline, "the server did not recover once the connections closed"
            time.sleep(0.1)
    finally:
        watcher.close()
        for client in held:
            client.close()
        assert server.stop() == 0, "".join(server.log)


def test_a_fixed_batch_model_is_padded_and_split(console, tmp_path, small_model, small_metadata, onnx_runtime, server_process):
    from alexnet_export.exporter.onnx.convert import export_onnx

    fixed = export_onnx(small_model, tmp_path / "batch3.onnx", small_metadata, batch=3, verify=False).path
    server = server_process(console, fixed, "--max-batch", 8, "--max-queue-delay-ms", 50)
    try:
        requests = [_images(50, 1), _images(51, 2), _images(52, 5)]  # 8 images: runs of 3, 3 and 2 padded to 3
        for images, (status, headers, body) in zip(requests, _send_together(server, requests)):
            assert status == 200 and np.array_equal(_binary_logits(body, headers, len(images)),
                                                    onnx_runtime.predict(images))
    finally:
        assert server.stop() == 0, "".join(server.log)


def test_a_pixel_file_is_served_uint8_pixels(console, pixel_onnx, pixel_runtime, photos, server_process):
    server = server_process(console, pixel_onnx, "--max-batch", 4)
    try:
        assert "uint8 pixels input" in server.log[0] and "warming up at batch 1, 4 before" in server.log[1]
        client = tritonclient_http.InferenceServerClient(server.address)
        assert client.get_model_metadata("alexnet")["inputs"] == [
            {"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, IMAGE_SIZE, IMAGE_SIZE, CHANNELS]}]
        pixels = np.random.default_rng(5).integers(0, 256, (2, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), dtype=np.uint8)
        tensor = tritonclient_http.InferInput(INPUT_NAME, list(pixels.shape), "UINT8")
        tensor.set_data_from_numpy(pixels)
        assert np.array_equal(client.infer("alexnet", [tensor]).as_numpy(OUTPUT_NAME), pixel_runtime.predict(pixels))
        status, _, body = server.request("POST", INFER, *_binary_request(_images(1)))
        _assert_clean_error(status, body, 400, r"datatype 'FP32'; expected UINT8 \(raw RGB pixels after resize and crop\)")
        request = {"inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [1, IMAGE_SIZE, IMAGE_SIZE, CHANNELS],
                               "data": [0.5] * (IMAGE_SIZE * IMAGE_SIZE * CHANNELS)}]}
        status, _, body = server.request("POST", INFER, json.dumps(request), {"Content-Type": "application/json"})
        _assert_clean_error(status, body, 400, "must be whole numbers 0 to 255")
        status, _, body = server.request("POST", "/v2/models/alexnet/classify?top_k=2", photos[1].read_bytes(),
                                         {"Content-Type": "image/png"})
        assert status == 200, body
        assert [(p["label"], p["probability"]) for p in json.loads(body)["predictions"]] == pixel_runtime.classify(
            photos[1], top_k=2)[0]
        counted = _metrics(server)  # by endpoint and status; the warm-up runs are not requests
        assert _metric(counted, "nv_inference_request_success_total", endpoint="classify") == 1
        assert _metric(counted, "nv_inference_request_success_total", endpoint="infer") == 1
        assert _metric(counted, "nv_inference_request_failure_total", endpoint="infer", status="400") == 2
        assert _metric(counted, "nv_inference_exec_count_total") == 2
    finally:
        assert server.stop() == 0, "".join(server.log)


def test_sigterm_answers_the_request_in_flight_then_exits_0(console, small_onnx, onnx_runtime, server_process):
    # The request waits 1.5 s in the batcher for company, so SIGTERM lands while it is in flight.
    server = server_process(console, small_onnx, "--max-queue-delay-ms", 1500)
    images = _images(30, 2)
    answer = {}
    sender = threading.Thread(target=lambda: answer.update(result=server.request("POST", INFER,
                                                                                 *_binary_request(images))))
    sender.start()
    deadline = time.monotonic() + 10
    while server.stats()["pending_request_count"] == 0:
        assert time.monotonic() < deadline, "the request never reached the batcher"
        time.sleep(0.02)
    server.process.send_signal(signal.SIGTERM)
    sender.join(30)
    status, headers, body = answer["result"]
    assert status == 200 and np.array_equal(_binary_logits(body, headers, 2), onnx_runtime.predict(images))
    assert server.process.wait(timeout=30) == 0
    log = "".join(server.log)
    assert log.rstrip().endswith("stopped") and "Traceback" not in log, log
    with pytest.raises(OSError):
        server.request("GET", "/v2/health/live", timeout=5)


def _fails_when_run(path):
    """A model ONNX Runtime loads (images [N,3,224,224] -> logits [N,10]) that fails on one image:
    its Reshape to [-1, 10] needs the pixel count to divide by 10, and 150,528 does not."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["images", "shape"], ["logits"])], "fails",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 10])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))
    return path


def test_unexpected_failures_are_logged_not_shown(console, cli, tmp_path, server_process):
    failing = _fails_when_run(tmp_path / "fails.onnx")
    server = server_process(console, failing, "--no-warmup")  # the warm-up would stop it before any request
    try:
        for _ in range(2):  # the batcher survives a failed run
            status, _, body = server.request("POST", INFER, *_binary_request(_images(40)))
            _assert_clean_error(status, body, 500, "^internal error$")
        assert server.request("GET", "/v2/health/ready")[0] == 200
        failures = _metrics(server)
        assert _metric(failures, "nv_inference_request_failure_total", endpoint="infer", status="500") == 2
    finally:
        assert server.stop() == 0
    log = "".join(server.log)
    assert "Traceback" in log and "ONNX Runtime failed on a batch of 1" in log  # the details stay in the log
    # With the warm-up, as Triton does with model_warmup, a model that cannot run is never marked ready.
    result = cli("serve", failing, "--port", 0, timeout=120)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and last.startswith("Error: the model failed its warm-up run at batch 1: ONNX"
                                                      " Runtime failed on a batch of 1"), result.stderr


def test_cli_failures_are_one_line(cli, server, tmp_path):
    help_text = cli("serve", "--help")
    assert help_text.returncode == 0 and "Examples:" in help_text.stdout and "alexnet-export serve" in help_text.stdout
    result = cli("serve", tmp_path / "absent.onnx")  # a file the arguments name is missing: a usage mistake
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"Error: model file {tmp_path / 'absent.onnx'} does not exist or is not a file"]
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    result = cli("serve", tmp_path / "broken.onnx")
    assert result.returncode == 1 and result.stderr.startswith("Error: ONNX Runtime cannot load")
    assert len(result.stderr.strip().splitlines()) == 1


def test_port_in_use_and_public_address_warning(cli, server, small_onnx):
    result = cli("serve", small_onnx, "--port", server.port)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{server.port}: the port is in use (another server?)"]
    # 0.0.0.0 on the same port fails to bind too, so nothing ever listens beyond loopback here.
    result = cli("serve", small_onnx, "--host", "0.0.0.0", "--port", server.port)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 2
    assert lines[0].startswith("warning: listening on 0.0.0.0, reachable from other machines")
    assert lines[1].startswith("Error: cannot listen on 0.0.0.0")


def test_listening_socket_is_tcp_so_answers_are_not_delayed():
    # asyncio sets TCP_NODELAY only on connections of a socket made with proto IPPROTO_TCP; without it
    # every answer waited 40 ms for the client's delayed ACK (measured: GET /v2/health/live 44 ms, 0.24 ms with).
    from alexnet_export.serving.server import listen

    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


SERVE_WITHOUT_TORCH = """
import sys, importlib.abc, json, threading, urllib.request
BLOCKED = {"torch", "onnx", "onnxscript", "safetensors"}  # uvicorn itself needs click
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
import uvicorn
from alexnet_export.runtimes.registry import open_runtime
from alexnet_export.serving.app import ServeSettings, create_app
from alexnet_export.serving.server import listen
sock = listen("127.0.0.1", 0)
server = uvicorn.Server(uvicorn.Config(create_app(open_runtime(sys.argv[1], spinning=False), ServeSettings()),
                                       log_level="warning", lifespan="on"))
thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
thread.start()
while not server.started:
    pass
request = urllib.request.Request(f"http://127.0.0.1:{sock.getsockname()[1]}/v2/models/alexnet/classify?top_k=2",
                                 data=open(sys.argv[2], "rb").read(), headers={"Content-Type": "image/png"})
answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
server.should_exit = True
thread.join()
heavy = sorted(m for m in ("torch", "onnx", "onnxscript") if m in sys.modules)
print(json.dumps({"top": answer["predictions"], "heavy": heavy}))
"""


def test_serving_an_onnx_model_never_imports_torch(small_onnx, photos):
    result = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_TORCH, str(small_onnx), str(photos[1])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(out["top"]) == 2 and out["heavy"] == []
    light = subprocess.run([sys.executable, "-c", "import sys, alexnet_export.cli.main, alexnet_export.serving.triton_repo;"
                            "print(sorted(m for m in ('starlette', 'uvicorn', 'torch') if m in sys.modules))"],
                           capture_output=True, text=True, timeout=60)
    assert light.stdout.strip() == "[]", light.stderr
