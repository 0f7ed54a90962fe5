"""How OnnxRuntime moves arrays: IO binding, per-thread device buffers, DLPack arrays in and out,
and the CUDA graph's fixed buffers. Imports numpy and onnxruntime only.

Where the data goes (one pass over a host batch, never a wrapper copy):
- numpy on the CPU provider: bound in place; ONNX Runtime writes a fresh output.
- numpy on a GPU provider: one pageable host-to-device copy into this thread's device buffer, the
  NaN/inf check on the device, the model on that buffer, the logits copied back (<= 1 MB).
- a DLPack array on the GPU: bound where it is, checked there, logits on the same device, returned
  as the caller's kind (torch tensor, CuPy array) through DLPack; nothing touches the host.
- a DLPack array in host memory (torch CPU tensor): viewed as numpy, then as above.
"""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime as ort

from alexnet_export.errors import InferenceError, InputError, one_line
from alexnet_export.runtimes.checks import check_layout, non_finite_error

FLOAT_TENSOR = "tensor(float)"
# x (float, any NCHW shape) -> d = x - x, which is NaN exactly where x is NaN or infinite (0 elsewhere);
# Not(Equal(d, d)) marks those; Cast(int32), ReduceSum(keepdims=0) -> count (int32 scalar). Built from ops
# ONNX Runtime's CUDA provider has kernels for (ReduceSum: float types and int32), so the check stays on the GPU.
# Serialized here because apps run without the onnx package; tests/runtimes/test_onnx_io.py rebuilds it
# with onnx.helper and requires the same bytes.
FINITE_CHECK_MODEL = bytes.fromhex(
    "0808120e616c65786e65742d6578706f72743ac6010a0e0a01780a017812016422035375620a150a01640a0164120666696e6974"
    "652205457175616c0a120a0666696e697465120362616422034e6f740a1d0a03626164120562616433322204436173742a090a02"
    "746f1806a001020a2a0a0562616433321205636f756e74220952656475636553756d2a0f0a086b65657064696d731800a0010212"
    "0c66696e6974655f636865636b5a1f0a0178121a0a18080112140a0312016e0a031201630a031201680a03120177620f0a05636f"
    "756e7412060a040806120042040a001012"
)


def host_view(array) -> np.ndarray:
    """A host DLPack array (torch CPU tensor) as a numpy view, without copying."""
    try:
        return np.from_dlpack(array)
    except (BufferError, TypeError, RuntimeError, ValueError) as exc:
        raise InputError(f"predict() cannot read this {type(array).__name__} through DLPack ({one_line(exc, 200)});"
                         " expected a float32 array") from None


def device_value(array, bounds, size) -> ort.OrtValue:
    """A device DLPack array as an OrtValue over the same memory, its layout checked."""
    try:
        value = ort.OrtValue.from_dlpack(array)
    except Exception as exc:  # ONNX Runtime raises RuntimeError with a C++ trace for strided or odd arrays
        hint = "contiguous " if "contiguous" in str(exc).lower() else ""
        raise InputError(f"predict() cannot bind this {type(array).__name__} ({one_line(exc, 160)}); expected a"
                         f" {hint}float32 array (call .contiguous() on a view)") from None
    check_layout(tuple(value.shape()), str(getattr(array, "dtype", value.data_type())),
                 value.data_type() == FLOAT_TENSOR, bounds, size)
    return value


class FiniteCheck:
    """Counts NaN and infinite values where a batch already is, with a five-node ONNX graph on the
    model's CUDA device: a device array is checked on the device, never copied to the host."""

    def __init__(self, providers: list):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the check is a sliver of the model's time; keep it off the model's cores
        self.session = ort.InferenceSession(FINITE_CHECK_MODEL, options, providers=providers)

    @classmethod
    def on_cuda(cls, device: int) -> FiniteCheck:
        # The CUDA provider alone, whatever runs the model: no CUDA graph (inputs move), no TensorRT build per shape.
        return cls([("CUDAExecutionProvider", {"device_id": str(device)}), "CPUExecutionProvider"])

    def count(self, value: ort.OrtValue) -> int:
        binding = self.session.io_binding()
        binding.bind_ortvalue_input("x", value)
        binding.bind_output("count", "cpu")
        self.session.run_with_iobinding(binding)
        return int(binding.copy_outputs_to_cpu()[0])

    def require(self, value: ort.OrtValue) -> None:
        bad = self.count(value)
        if bad:
            raise non_finite_error(bad)


class Binder:
    """Runs one session through IO binding. Thread-safe: each call binds its own IOBinding, and the
    device input buffer a host batch is copied into is per thread (the server calls from several)."""

    def __init__(self, session: ort.InferenceSession, input_name: str, output_name: str, cuda_device: int | None,
                 check: FiniteCheck | None):
        self.session, self.input, self.output = session, input_name, output_name
        self.cuda_device, self.check = cuda_device, check
        self._local = threading.local()

    def host(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a checked, contiguous host batch (finiteness checked here on a GPU provider)."""
        binding = self.session.io_binding()
        if self.cuda_device is None:
            binding.bind_cpu_input(self.input, batch)
        else:
            value = self._device_buffer(batch.shape)
            value.update_inplace(batch)  # the one pass over the host batch: a host-to-device copy
            binding.bind_ortvalue_input(self.input, value)
            # cudaMemcpy from pageable memory may return before its DMA lands: wait for the device.
            binding.synchronize_inputs()
            self.check.require(value)
        binding.bind_output(self.output, "cpu")
        self._run(binding, len(batch))
        return binding.copy_outputs_to_cpu()[0]

    def device(self, value: ort.OrtValue, index: int) -> ort.OrtValue:
        """Logits on CUDA device `index` for a checked-layout device value; the caller's memory is read in place."""
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input, value)
        # The array may still be being written on its producer's stream; this waits for the device.
        binding.synchronize_inputs()
        self.check.require(value)
        binding.bind_output(self.output, "cuda", index)
        self._run(binding, value.shape()[0])
        return binding.get_outputs()[0]

    def _device_buffer(self, shape: tuple) -> ort.OrtValue:
        # One buffer per thread, kept while the batch shape repeats (ONNX Runtime's arena makes a new one cheap).
        value = getattr(self._local, "value", None)
        if value is None or tuple(value.shape()) != tuple(shape):
            value = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), np.float32, "cuda", self.cuda_device)
            self._local.value = value
        return value

    def _run(self, binding, count: int) -> None:
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:
            raise InferenceError(f"ONNX Runtime failed on a batch of {count}: {one_line(exc, 500)}") from None


class GraphBinder:
    """Runs a session whose CUDA provider captures a CUDA graph (enable_cuda_graph).

    A captured graph replays fixed device addresses, so there is one input and one output buffer,
    bound once, for the batch size of the first call; inputs are copied into it and logits out of
    it, and calls are serialised by a lock.
    """

    def __init__(self, session: ort.InferenceSession, input_name: str, output_name: str, cuda_device: int,
                 classes: int, check: FiniteCheck):
        self.session, self.input, self.output = session, input_name, output_name
        self.cuda_device, self.classes, self.check = cuda_device, classes, check
        self._lock = threading.Lock()
        self._binding = self._in = self._out = None

    def host(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            self._replay(batch, batch.shape)
            return self._out.numpy()  # a host copy of the logits, the caller's to keep

    def device(self, value: ort.OrtValue, index: int) -> ort.OrtValue:
        with self._lock:
            self._replay(value, tuple(value.shape()))
            logits = ort.OrtValue.ortvalue_from_shape_and_type(self._out.shape(), np.float32, "cuda", index)
            logits.update_inplace(self._out)  # device to device: the fixed buffer is overwritten by the next call
            self._binding.synchronize_outputs()  # that copy does not wait for itself; the caller may read at once
            return logits

    def _replay(self, source, shape: tuple) -> None:
        if self._binding is None:
            self._bind(shape)
        elif tuple(self._in.shape()) != tuple(shape):
            raise InputError(f"input shape is {tuple(shape)}; this runtime's CUDA graph was captured for"
                             f" {tuple(self._in.shape())} (enable_cuda_graph fixes the batch size at the first call)")
        self._in.update_inplace(source)
        self._binding.synchronize_inputs()  # the copy in may still be landing (see Binder.host)
        self.check.require(self._in)
        try:
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise InferenceError(f"ONNX Runtime failed to run its CUDA graph: {one_line(exc, 500)}") from None

    def _bind(self, shape: tuple) -> None:
        make = ort.OrtValue.ortvalue_from_shape_and_type
        self._in = make(list(shape), np.float32, "cuda", self.cuda_device)
        self._out = make([shape[0], self.classes], np.float32, "cuda", self.cuda_device)
        self._binding = self.session.io_binding()
        self._binding.bind_ortvalue_input(self.input, self._in)
        self._binding.bind_ortvalue_output(self.output, self._out)
