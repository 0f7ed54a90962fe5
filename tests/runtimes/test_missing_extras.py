"""A missing optional library is one MissingDependencyError (an ImportError) naming the extra that
brings it; a missing GPU or driver, a CPU without BF16, an unknown builder word stay errors of their
own; and importing a backend's package never needs its library."""

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from alexnet_export.errors import AlexNetExportError, MissingDependencyError
from alexnet_export.extras import EXTRA_OF, install_hint

RTX_MODULES = ("tensorrt_rtx", "tensorrt_rtx_bindings")


def _uninstall(monkeypatch, *names):
    """As if `names` were not installed: their import raises ImportError, loaded submodules included."""
    for name in names:
        for loaded in [module for module in sys.modules if module.startswith(name + ".")]:
            monkeypatch.setitem(sys.modules, loaded, None)
        monkeypatch.setitem(sys.modules, name, None)


def _import_openvino():
    from alexnet_export.runtimes.openvino.runtime import import_openvino

    return import_openvino()


def _import_litert():
    from alexnet_export.runtimes.litert.runtime import import_interpreter

    return import_interpreter()


def _import_executorch():
    from alexnet_export.runtimes.executorch.runtime import import_executorch

    return import_executorch()


def _import_model_signing():
    from alexnet_export.runtimes.signing.keys import import_model_signing

    return import_model_signing("verifying")


def _import_tensorrt(builder=None):
    from alexnet_export.runtimes.tensorrt.support import import_tensorrt

    return import_tensorrt(builder)


def _import_cudart():
    from alexnet_export.runtimes.tensorrt.support import import_cudart

    return import_cudart()


# (module, what else is made absent, the call that needs it, the extra its error names, the class raised)
MISSING = [
    ("openvino", (), _import_openvino, "openvino", "alexnet_export.runtimes.openvino.runtime.OpenVinoNotInstalled"),
    ("ai_edge_litert", (), _import_litert, "litert", "alexnet_export.runtimes.litert.runtime.LiteRtUnavailable"),
    ("executorch", (), _import_executorch, "executorch",
     "alexnet_export.runtimes.executorch.runtime.ExecuTorchUnavailable"),
    ("model_signing", (), _import_model_signing, "signing", "alexnet_export.runtimes.signing.SigningUnavailable"),
    ("tensorrt", RTX_MODULES, _import_tensorrt, "tensorrt-rtx",  # neither builder: the message names both extras
     "alexnet_export.runtimes.tensorrt.support.TensorRTNotInstalled"),
    ("tensorrt", (), lambda: _import_tensorrt("tensorrt"), "trt",
     "alexnet_export.runtimes.tensorrt.support.TensorRTNotInstalled"),
    ("tensorrt_rtx_bindings", ("tensorrt_rtx",), lambda: _import_tensorrt("tensorrt-rtx"), "tensorrt-rtx",
     "alexnet_export.runtimes.tensorrt.support.TensorRTNotInstalled"),
    ("cuda", (), _import_cudart, "trt", "alexnet_export.runtimes.tensorrt.support.TensorRTNotInstalled"),
]


def _class(dotted: str) -> type:
    import importlib

    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("module, also, call, extra, error", MISSING,
                         ids=[f"{row[0]}-{row[3]}" for row in MISSING])
def test_a_missing_library_is_an_import_error_naming_its_extra(monkeypatch, module, also, call, extra, error):
    _uninstall(monkeypatch, module, *also)
    with pytest.raises(ImportError) as caught:
        call()
    exc = caught.value
    assert isinstance(exc, MissingDependencyError) and isinstance(exc, AlexNetExportError)
    assert isinstance(exc, _class(error))  # the backend's own class, which callers already catch
    message = str(exc)
    assert "pip install 'alexnet-export[" in message and "\n" not in message
    assert install_hint(extra) in message
    assert install_hint(EXTRA_OF[module][1]) in message  # the table of extras agrees with the error


def test_the_table_names_the_extras_of_tensorrt_and_cuda_python():
    assert EXTRA_OF["tensorrt"] == ("tensorrt", "trt") and EXTRA_OF["cuda"] == ("cuda-python", "trt")
    assert EXTRA_OF["tensorrt_rtx"] == EXTRA_OF["tensorrt_rtx_bindings"] == ("tensorrt-rtx", "tensorrt-rtx")


def test_an_unknown_builder_word_is_no_import_error():
    from alexnet_export.runtimes.tensorrt.support import TensorRTUnavailable, builder_named, import_tensorrt

    for call in (lambda: builder_named("tensorrt-llm"), lambda: import_tensorrt("tensorrt-llm")):
        with pytest.raises(TensorRTUnavailable, match="builder 'tensorrt-llm' is unknown") as caught:
            call()
        assert not isinstance(caught.value, ImportError) and caught.value.argument == "builder"


def test_no_cuda_driver_is_no_import_error(monkeypatch):
    from alexnet_export.runtimes.tensorrt import support

    monkeypatch.setattr(support, "_CUDA_DRIVER", "libno-such-cuda-driver.so.1")
    with pytest.raises(support.TensorRTUnavailable, match=r"^no NVIDIA GPU here: the CUDA driver") as caught:
        support.gpu_identity()
    assert not isinstance(caught.value, ImportError) and isinstance(caught.value, RuntimeError)
    assert not support.has_gpu()


def test_a_cpu_without_bf16_is_no_import_error(monkeypatch):
    from alexnet_export.runtimes.openvino import runtime

    class Core:
        def get_property(self, device, key):
            return {"OPTIMIZATION_CAPABILITIES": ["FP32", "INT8"], "FULL_DEVICE_NAME": "Some CPU"}[key]

    monkeypatch.setattr(runtime, "import_openvino", lambda: SimpleNamespace(Core=Core))
    with pytest.raises(runtime.OpenVinoUnavailable, match=r"^this CPU \(Some CPU\) has no BF16 instructions") as caught:
        runtime.check_cpu_runs("bf16")
    assert not isinstance(caught.value, ImportError) and isinstance(caught.value, RuntimeError)


def test_opening_an_engine_without_its_builder_names_the_extra(monkeypatch, tmp_path):
    from alexnet_export.runtimes.tensorrt import runtime
    from alexnet_export.runtimes.tensorrt.sidecar import Targets, new_sidecar, sidecar_path
    from alexnet_export.runtimes.tensorrt.support import Gpu, TensorRTNotInstalled

    gpu = Gpu("NVIDIA L4", "8.9")
    monkeypatch.setattr(runtime, "gpu_identity", lambda device: gpu)  # the GPU is there, the builder is not
    _uninstall(monkeypatch, "tensorrt")
    engine = tmp_path / "alexnet.engine"
    engine.write_bytes(b"\x00" * 64)
    sidecar_path(engine).write_text(json.dumps(new_sidecar(
        builder="TensorRT", version="10.13.0", built_on=gpu, targets=Targets(("8.9",), gpu_name=gpu.name),
        hardware_compatibility="none", version_compatible=False, precision="fp16", batch={"min": 1, "opt": 8, "max": 32},
        input_tensor={"name": "images", "format": "float32", "dtype": "float32", "shape": [-1, 3, 224, 224]},
        source_onnx="alexnet.fp16.onnx", source_onnx_sha256="ab" * 32, built_at="2026-01-01T00:00:00+00:00",
        metadata={"alexnet_export.num_classes": "10"}).to_json()))
    expected = (rf"^{re.escape(str(engine))} was built by TensorRT 10.13.0, on .*; TensorRT is not installed"
                r" \(no module tensorrt\); pip install 'alexnet-export\[trt\]'$")
    with pytest.raises(TensorRTNotInstalled, match=expected) as caught:
        runtime.TensorRTRuntime(engine)
    assert isinstance(caught.value, ImportError)


IMPORT_WITHOUT_THE_LIBRARIES = """
import json, sys
for name in ("openvino", "ai_edge_litert", "executorch", "model_signing", "tensorrt", "tensorrt_rtx",
             "tensorrt_rtx_bindings", "cuda"):
    sys.modules[name] = None  # what an install without the extras sees
import alexnet_export.runtimes.openvino, alexnet_export.runtimes.litert, alexnet_export.runtimes.executorch
import alexnet_export.runtimes.tensorrt, alexnet_export.runtimes.signing
from alexnet_export.runtimes.openvino import OpenVinoRuntime
from alexnet_export.runtimes.litert import LiteRtRuntime, read_tflite_facts
from alexnet_export.runtimes.executorch import ExecuTorchRuntime
from alexnet_export.runtimes.tensorrt import TensorRTRuntime
import alexnet_export.runtimes.tensorrt.sidecar, alexnet_export.runtimes.tensorrt.support
from alexnet_export.runtimes.signing import SigningUnavailable, verify_model
try:
    OpenVinoRuntime(sys.argv[1])
except ImportError as exc:
    opened = str(exc)
print(json.dumps({"opened": opened}))
"""


def test_the_backend_packages_import_without_their_libraries(tmp_path):
    ir = tmp_path / "m.xml"
    ir.write_text("<net/>")
    result = subprocess.run([sys.executable, "-c", IMPORT_WITHOUT_THE_LIBRARIES, str(ir)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    opened = json.loads(result.stdout.strip().splitlines()[-1])["opened"]
    assert opened.startswith("OpenVINO is not installed") and opened.endswith("pip install 'alexnet-export[openvino]'")
