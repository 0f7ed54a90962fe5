"""Fixtures shared by the serving tests."""

import http.client
import importlib.util
import json
import queue
import re
import signal
import subprocess
import threading
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest


def write_tensorrt_engine(path: Path, labels: list[str], max_batch: int = 32) -> Path:
    """Engine bytes and the sidecar of a TensorRT build (its older format), enough for a Triton
    repository's tensorrt_plan model: Triton is not run here, so the bytes are never loaded."""
    from alexnet_export.runtimes.engine_sidecar import sidecar_path

    path.write_bytes(b"engine bytes")
    sidecar_path(path).write_text(json.dumps({
        "tensorrt_version": "10.13.0", "gpu_name": "NVIDIA L4", "compute_capability": "8.9", "precision": "fp16",
        "batch": {"min": 1, "opt": 8, "max": max_batch}, "source_onnx_sha256": "0" * 64,
        "metadata": {"alexnet_export.num_classes": str(len(labels)), "alexnet_export.labels": json.dumps(labels)}}))
    return path


@pytest.fixture(scope="session")
def tensorrt_engine():
    """write_tensorrt_engine(path, labels, max_batch=32): a TensorRT engine as Triton's repository takes it."""
    return write_tensorrt_engine


@pytest.fixture(scope="session")
def model_config_pb2():
    """Triton's ModelConfig protobuf. tritonclient ships the generated module under tritonclient/grpc;
    importing that package needs grpc, so load the one file directly."""
    path = Path(str(distribution("tritonclient").locate_file("tritonclient/grpc/model_config_pb2.py")))
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ServerProcess:
    """`alexnet-export serve MODEL --port 0 ...` in a subprocess; its stderr is collected in a thread."""

    def __init__(self, console, model, *options, startup_timeout=60):
        self.process = subprocess.Popen([console, "serve", str(model), "--port", "0", *map(str, options)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + startup_timeout
        self.port = None
        while self.port is None:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start: {''.join(self.log)}")
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            self.port = int(found.group(1)) if found else None
        self.address = f"127.0.0.1:{self.port}"

    def _read(self):
        for line in self.process.stderr:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def stop(self, timeout=30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, body bytes) of one request on a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stats(self) -> dict:
        status, _, body = self.request("GET", "/v2/models/alexnet/stats")
        assert status == 200
        return json.loads(body)["model_stats"][0]


@pytest.fixture(scope="session")
def server_process():
    """ServerProcess: `alexnet-export serve` in a subprocess, for tests that start their own."""
    return ServerProcess
