"""What the Runtime base owns for every backend: the missing-file error, the closed error, the input
checks before `_run`, and the lock of backends that serialise calls."""

import threading
import time

import numpy as np
import pytest

from alexnet_export.errors import InferenceError, InputError, ModelLoadError
from alexnet_export.models.spec import ArtifactMetadata, default_labels
from alexnet_export.runtimes.base import Runtime


class _Counting(Runtime):
    """A backend whose `_run` notes how many calls overlap, and sleeps so that they would."""

    backend = "counting"

    def __init__(self, path=None):
        super().__init__(path)
        self.metadata = ArtifactMetadata(2, default_labels(2), "test")
        self.device, self.precision = "test", "fp32"
        self.running = self.most = self.runs = 0
        self.closed_during_run = False

    def _run(self, batch):
        self.running += 1
        self.most = max(self.most, self.running)
        time.sleep(0.01)
        self.closed_during_run |= self._closed
        self.running -= 1
        self.runs += 1
        return np.zeros((len(batch), 2), np.float32)


class _Serialised(_Counting):
    serialised = True


def _calls_at_once(runtime: Runtime, threads: int = 4) -> None:
    batch = runtime.zeros(1)
    workers = [threading.Thread(target=runtime.predict, args=(batch,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_the_missing_file_error_is_the_bases_for_every_file_backend(tmp_path):
    with pytest.raises(ModelLoadError, match=rf"^model file {tmp_path / 'absent.onnx'} does not exist or is not a file$"):
        _Counting(tmp_path / "absent.onnx")
    with pytest.raises(ModelLoadError, match="does not exist or is not a file"):
        _Counting(tmp_path)  # a folder
    assert _Counting(None).path is None


def test_a_serialised_backend_runs_one_call_at_a_time_and_others_do_not_wait():
    serialised, free = _Serialised(), _Counting()
    _calls_at_once(serialised)
    _calls_at_once(free)
    assert serialised.runs == free.runs == 4
    assert serialised.most == 1 and free.most > 1
    assert free._lock is None and isinstance(serialised._lock, type(threading.Lock()))


def test_close_waits_for_a_serialised_call_and_later_calls_get_one_line():
    runtime = _Serialised()
    worker = threading.Thread(target=runtime.predict, args=(runtime.zeros(1),))
    worker.start()
    while not runtime.running:
        time.sleep(0.001)
    runtime.close()  # takes the lock: the call in flight finishes first
    worker.join()
    assert runtime.runs == 1 and not runtime.closed_during_run
    for call in (runtime.predict, runtime.predict_checked):
        with pytest.raises(InferenceError, match=r"^the counting runtime for an in-memory model is closed$"):
            call(runtime.zeros(1))
    runtime.close()  # twice is fine


def test_predict_checks_the_input_before_run():
    runtime = _Counting()
    with pytest.raises(InputError, match="expected float32"):
        runtime.predict(np.zeros((1, 3, 224, 224), np.float64))
    with pytest.raises(InputError, match="NaN or infinite"):
        runtime.predict(np.full((1, 3, 224, 224), np.nan, np.float32))
    assert runtime.runs == 0


def test_onnx_and_torch_runtimes_refuse_calls_after_close(small_onnx, small_model):
    import torch

    from alexnet_export.runtimes import OnnxRuntime, TorchRuntime

    for runtime, name in ((OnnxRuntime(small_onnx, "CPUExecutionProvider"), "the ONNX runtime for small.onnx"),
                          (TorchRuntime(small_model), "the torch runtime for an in-memory model")):
        batch = runtime.zeros(1)
        assert runtime.predict(batch).shape == (1, 10)
        runtime.close()
        for call in (lambda: runtime.predict(batch), lambda: runtime.predict_checked(batch),
                     lambda: runtime.predict(torch.from_numpy(batch))):
            with pytest.raises(InferenceError, match=rf"^{name} is closed$"):
                call()
