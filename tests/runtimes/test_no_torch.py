"""The wrapper apps embed must work where torch is absent and stay clear of it where present."""

import json
import subprocess
import sys

BLOCK_HEAVY_PACKAGES = """
import sys, importlib.abc
BLOCKED = {"torch", "onnx", "onnxscript", "safetensors", "click"}
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
"""

USE_THE_WRAPPER = """
import json, sys
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime
runtime = OnnxRuntime(sys.argv[1])
top = runtime.classify(sys.argv[2], top_k=2)
heavy = sorted(m for m in ("torch", "onnx", "onnxscript", "safetensors") if m in sys.modules)
try:
    TorchRuntime()
    torch_runtime = "created"
except ImportError as exc:
    torch_runtime = str(exc)
print(json.dumps({"top": top, "heavy": heavy, "torch_runtime": torch_runtime}))
"""


def _run(code, *args):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_onnx_runtime_works_without_torch_installed(small_onnx, photos):
    out = _run(BLOCK_HEAVY_PACKAGES + USE_THE_WRAPPER, small_onnx, photos[1])
    assert len(out["top"][0]) == 2 and out["top"][0][0][0].startswith("class_")
    assert out["heavy"] == []
    assert "TorchRuntime (a PyTorch checkpoint) needs torch" in out["torch_runtime"]


def test_onnx_runtime_does_not_import_torch_where_it_is_installed(small_onnx, photos):
    code = USE_THE_WRAPPER.replace("try:\n    TorchRuntime()", "try:\n    pass")
    out = _run(code, small_onnx, photos[1])
    assert out["heavy"] == [], f"the ONNX Runtime path imported {out['heavy']}"


def test_package_import_is_light():
    out = _run("import sys, json, alexnet_export, alexnet_export.runtimes, alexnet_export.models;"
               "print(json.dumps({'heavy': [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]}))")
    assert out["heavy"] == []


def test_engine_runtime_module_is_light():
    out = _run("import sys, json, alexnet_export.runtimes.tensorrt.runtime, alexnet_export.runtimes.untrusted;"
               "print(json.dumps({'heavy': [m for m in ('torch', 'onnx', 'tensorrt', 'alexnet_export.exporter')"
               " if m in sys.modules]}))")
    assert out["heavy"] == []
