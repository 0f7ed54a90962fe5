"""The table of backends: what each runs and takes, asked by everything that opens a file."""

import inspect
import json
import subprocess
import sys

import pytest

from alexnet_export.errors import ModelLoadError, OptionError
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime
from alexnet_export.runtimes.registry import open_runtime
from alexnet_export.runtimes.table import (
    BACKENDS,
    CHECKPOINT,
    ENGINE,
    EXECUTORCH,
    KNOWN_SUFFIXES,
    LITERT,
    NCNN,
    ONNX,
    OPENVINO,
    ORT_FORMAT,
    backend_for,
)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_each_backend_lists_exactly_the_options_its_runtime_takes(backend):
    parameters = list(inspect.signature(backend.runtime_class()).parameters.values())
    assert parameters[0].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD  # the file
    assert backend.options == {p.name for p in parameters[1:]}


# Which backend each suffix must open, written out so a row that moves or steals a suffix fails here.
SUFFIX_BACKENDS = {".onnx": ONNX, ".ort": ORT_FORMAT, ".pt": CHECKPOINT, ".pth": CHECKPOINT, ".safetensors": CHECKPOINT,
                   ".engine": ENGINE, ".plan": ENGINE, ".xml": OPENVINO, ".pte": EXECUTORCH, ".tflite": LITERT,
                   ".ncnn.param": NCNN}


def test_the_expected_suffixes_are_every_suffix_of_the_table():
    # A backend added to the table without an expectation above fails here, not silently untested.
    assert sorted(SUFFIX_BACKENDS) == sorted(KNOWN_SUFFIXES)


@pytest.mark.parametrize("suffix", KNOWN_SUFFIXES)
def test_backend_by_suffix_in_any_case(suffix):
    assert backend_for(f"m{suffix}") is SUFFIX_BACKENDS[suffix]
    assert backend_for(f"dir.v2/M{suffix.upper()}") is SUFFIX_BACKENDS[suffix]


def test_companion_files_count_where_they_exist(tmp_path):
    for name in ("m.onnx", "m.onnx.data", "m.xml", "m.bin", "e.engine", "o.ort", "o.required_operators.config",
                 "p.pte", "p.pte.json", "t.tflite", "t.tflite.json", "n.ncnn.param", "n.ncnn.bin", "n.ncnn.param.json"):
        (tmp_path / name).write_bytes(b"x")
    assert ONNX.files(tmp_path / "m.onnx") == [tmp_path / "m.onnx", tmp_path / "m.onnx.data"]
    assert OPENVINO.files(tmp_path / "m.xml") == [tmp_path / "m.xml", tmp_path / "m.bin"]
    assert ENGINE.files(tmp_path / "e.engine") == [tmp_path / "e.engine"]  # its sidecar is missing
    assert ORT_FORMAT.files(tmp_path / "o.ort") == [tmp_path / "o.ort", tmp_path / "o.required_operators.config"]
    assert EXECUTORCH.files(tmp_path / "p.pte") == [tmp_path / "p.pte", tmp_path / "p.pte.json"]
    assert LITERT.files(tmp_path / "t.tflite") == [tmp_path / "t.tflite", tmp_path / "t.tflite.json"]
    assert NCNN.files(tmp_path / "n.ncnn.param") == [tmp_path / f"n.ncnn.{end}" for end in ("param", "bin", "param.json")]
    assert CHECKPOINT.files(tmp_path / "w.pt") == [tmp_path / "w.pt"]  # no companions, and not read


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_every_backends_companions_count_only_where_they_exist(tmp_path, backend):
    for suffix in backend.suffixes:
        model = tmp_path / f"model{suffix}"
        model.write_bytes(b"x")
        assert backend.files(model) == [model]  # none written yet
        companions = [model.with_name(p.format(name=model.name, stem=model.stem)) for p in backend.companions]
        assert all(c.parent == tmp_path and c != model for c in companions)
        for companion in companions:
            companion.write_bytes(b"x")
        assert backend.files(model) == [model, *companions]
        for companion in companions:
            companion.unlink()


def test_every_suffix_has_one_backend():
    assert len(KNOWN_SUFFIXES) == len(set(KNOWN_SUFFIXES)) == sum(len(b.suffixes) for b in BACKENDS)


def test_unknown_suffix_names_the_known_ones():
    with pytest.raises(ModelLoadError, match=r"^don't know how to run model.mlmodel: suffix '\.mlmodel'; expected one of "
                                             r"\.onnx, \.ort, \.pt, \.pth, \.safetensors, \.engine, \.plan, \.xml, \.pte,"
                                             r" \.tflite, \.ncnn\.param$"):
        backend_for("model.mlmodel")


def test_an_option_the_backend_does_not_take_is_one_line_naming_both(tmp_path):
    # The file does not exist: the option is refused before anything is loaded.
    with pytest.raises(OptionError, match=r"^option 'threads' does not apply to m.engine, a TensorRT engine; it takes "
                                          r"device$") as raised:
        open_runtime(tmp_path / "m.engine", threads=2)
    assert isinstance(raised.value, TypeError) and raised.value.argument == "threads"
    with pytest.raises(OptionError, match="option 'num_classes' does not apply to m.onnx, an ONNX model; it takes"
                                          " enable_cuda_graph, providers, session_options, spinning, tensorrt_cache_dir, tf32, threads"):
        open_runtime(tmp_path / "m.onnx", num_classes=10)


def test_taken_keeps_the_options_a_backend_takes():
    assert ONNX.taken(threads=2, spinning=False) == {"threads": 2, "spinning": False}
    assert CHECKPOINT.taken(threads=2, spinning=False) == {"threads": 2}
    assert ENGINE.taken(threads=2, spinning=False) == {}


def test_open_runtime_passes_options_on(small_onnx, small_model, tmp_path):
    import torch

    runtime = open_runtime(small_onnx, providers=("CPUExecutionProvider",), threads=1)
    assert isinstance(runtime, OnnxRuntime) and runtime.session.get_session_options().intra_op_num_threads == 1
    torch.save(small_model.state_dict(), tmp_path / "small.pt")
    eager = open_runtime(tmp_path / "small.pt", labels=[f"thing {i}" for i in range(10)])
    assert isinstance(eager, TorchRuntime) and eager.metadata.labels[3] == "thing 3"
    assert eager.precision == "fp32" and eager.device == "torch eager cpu"


def test_the_registry_imports_no_framework():
    code = ("import sys, json; from alexnet_export.runtimes.registry import backend_for; backend_for('m.engine');"
            "print(json.dumps([m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt') if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
