"""The TensorRT step. Engines are built here for real by TensorRT for RTX, ahead of time on the CPU
(tests/conftest.py's trt_engines: FP32, FP16, INT8, keep-float INT8 and pixel input, once per
session); those tests skip, saying so, only where it is not installed. Running an engine needs an
NVIDIA GPU (tests/runtimes/test_gpu.py, marked gpu); what refuses to run is tested here: the
sidecar checks as pure functions with a given GPU identity, and the missing GPU for real."""

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from alexnet_export.errors import ArgumentError, ExportError, ModelLoadError
from alexnet_export.events import Note
from alexnet_export.exporter.tensorrt.convert import build_engine
from alexnet_export.exporter.tensorrt.settings import BuildSettings, builder_capabilities, default_targets
from alexnet_export.runtimes.tensorrt.sidecar import (
    Targets,
    check_runs_here,
    new_sidecar,
    read_sidecar,
    runs_with,
    sidecar_path,
)
from alexnet_export.runtimes.onnx.reader import read_graph_facts
from alexnet_export.runtimes.tensorrt.support import Gpu, TensorRTNotInstalled, TensorRTUnavailable, gpu_identity, has_gpu

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_tensorrt = pytest.mark.skipif(not HAS_TENSORRT, reason="TensorRT is not installed (needs an NVIDIA GPU machine)")

H200, L4 = Gpu("NVIDIA H200", "9.0"), Gpu("NVIDIA L4", "8.9")
RTX_3090, RTX_4090, RTX_5090, T4 = (Gpu("NVIDIA GeForce RTX 3090", "8.6"), Gpu("NVIDIA GeForce RTX 4090", "8.9"),
                                    Gpu("NVIDIA GeForce RTX 5090", "12.0"), Gpu("Tesla T4", "7.5"))


def _sidecar(builder="TensorRT for RTX", version="1.7.1.116", built_on=None, targets=Targets(("8.6", "8.9", "12.0")),
             hardware_compatibility=None, version_compatible=False):
    return new_sidecar(builder=builder, version=version, built_on=built_on, targets=targets,
                       hardware_compatibility=hardware_compatibility, version_compatible=version_compatible,
                       precision="int8-tensorrt", batch={"min": 1, "opt": 8, "max": 32},
                       input_tensor={"name": "images", "format": "float32", "dtype": "float32", "shape": [-1, 3, 224, 224]},
                       source_onnx="alexnet.int8-tensorrt.onnx", source_onnx_sha256="ab" * 32,
                       built_at="2026-01-01T00:00:00+00:00", metadata={"alexnet_export.num_classes": "10"}).to_json()


# The sidecar's checks: pure functions of the sidecar, the GPU and the installed builder's version.


def test_tensorrt_for_rtx_engine_runs_on_every_target_and_its_release_only():
    sidecar = _sidecar()
    for gpu in (RTX_3090, RTX_4090, RTX_5090, L4):
        check_runs_here(sidecar, gpu, "1.7.1.116")
    with pytest.raises(ModelLoadError, match=r"^m.engine targets compute capability 8.6, 8.9, 12.0 \(TensorRT for RTX"
                                             r" 1.7.1.116, ahead of time without a GPU\); this GPU is NVIDIA H200"
                                             r" \(compute capability 9.0\): rebuild it for this GPU"):
        check_runs_here(sidecar, H200, "1.7.1.116", "m.engine")
    with pytest.raises(ModelLoadError, match=r"runs with TensorRT for RTX 1.7.1.116 only; this machine has"
                                             r" TensorRT for RTX 1.8.0.12"):
        check_runs_here(sidecar, RTX_4090, "1.8.0.12")
    with pytest.raises(ModelLoadError, match="7.5"):  # Turing is a target only when asked for
        check_runs_here(sidecar, T4, "1.7.1.116")


def test_tensorrt_engine_runs_where_its_hardware_compatibility_says():
    def tensorrt(level, targets, **options):
        return _sidecar("TensorRT", "10.13.0", built_on=L4, targets=targets, hardware_compatibility=level, **options)

    plain = tensorrt("none", Targets(("8.9",), gpu_name=L4.name))
    check_runs_here(plain, L4, "10.13.0")
    with pytest.raises(ModelLoadError, match=r"targets NVIDIA L4 \(compute capability 8.9\) only.*on NVIDIA L4"):
        check_runs_here(plain, RTX_4090, "10.13.0")  # same compute capability, another model
    same = tensorrt("same-compute-capability", Targets(("8.9",)))
    check_runs_here(same, RTX_4090, "10.13.0")
    with pytest.raises(ModelLoadError):
        check_runs_here(same, RTX_3090, "10.13.0")
    ampere = tensorrt("ampere+", Targets(("8.0",), and_newer=True))
    for gpu in (RTX_3090, H200, RTX_5090):
        check_runs_here(ampere, gpu, "10.13.0")
    with pytest.raises(ModelLoadError, match=r"targets compute capability 8.0 and newer"):
        check_runs_here(ampere, T4, "10.13.0")


def test_version_compatibility_follows_nvidia_rules():
    assert runs_with("10.13.0", "10.13.0", False) and not runs_with("10.13.0", "10.13.1", False)
    assert runs_with("10.13.0", "10.14.1", True) and runs_with("10.13.0", "11.0.0", True)
    assert not runs_with("10.13.0", "10.12.0", True) and not runs_with("10.13.0", "12.0.0", True)
    assert not runs_with("11.0.0", "12.1.0", True) and runs_with("11.0.0", "11.3.0", True)
    sidecar = _sidecar("TensorRT", "10.13.0", built_on=L4, targets=Targets(("8.9",)), hardware_compatibility="none",
                       version_compatible=True)
    check_runs_here(sidecar, L4, "11.1.0")
    with pytest.raises(ModelLoadError, match=r"runs with TensorRT 10.13.0 and newer 10.x or 11.x; this machine has"
                                             r" TensorRT 10.9.0"):
        check_runs_here(sidecar, L4, "10.9.0")


def test_sidecar_is_read_beside_the_engine(tmp_path):
    engine = tmp_path / "alexnet.engine"
    assert sidecar_path(engine) == tmp_path / "alexnet.engine.json"
    with pytest.raises(ModelLoadError, match="is missing"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(ModelLoadError, match="not readable JSON"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps({k: v for k, v in _sidecar().items() if k != "targets"}))
    with pytest.raises(ModelLoadError, match="lacks targets"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps({**_sidecar(), "builder": {"name": "TensorRT 2000", "version": "1"}}))
    with pytest.raises(ModelLoadError, match="no readable builder or targets"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps(_sidecar()))
    assert read_sidecar(engine).to_json() == _sidecar()


def test_first_format_sidecars_read_as_tensorrt_on_their_gpu(tmp_path):
    engine = tmp_path / "old.engine"
    sidecar_path(engine).write_text(json.dumps({
        "tensorrt_version": "10.13.0", "gpu_name": "NVIDIA L4", "compute_capability": "8.9", "precision": "fp16",
        "batch": {"min": 1, "opt": 8, "max": 32}, "metadata": {}}))
    sidecar = read_sidecar(engine)
    check_runs_here(sidecar, L4, "10.13.0")
    with pytest.raises(ModelLoadError, match=r"NVIDIA L4 \(compute capability 8.9\) only"):
        check_runs_here(sidecar, RTX_4090, "10.13.0")


def test_build_settings_are_checked():
    with pytest.raises(ArgumentError, match="min"):
        BuildSettings(min_batch=8, opt_batch=4, max_batch=32)
    with pytest.raises(ArgumentError, match="compute capability 9 is not a MAJOR.MINOR number"):
        BuildSettings(compute_capabilities=("9",))
    with pytest.raises(ArgumentError, match="name one twice"):
        BuildSettings(compute_capabilities=("8.6", "8.6"))
    with pytest.raises(ArgumentError, match="hardware compatibility 'turing' is unknown"):
        BuildSettings(hardware_compatibility="turing")
    with pytest.raises(ArgumentError, match="builder 'tensorrt-llm' is unknown"):
        BuildSettings(builder="tensorrt-llm")
    assert BuildSettings().batch == {"min": 1, "opt": 8, "max": 32}


def test_engine_without_sidecar_or_bytes_is_refused(tmp_path):
    from alexnet_export.runtimes import TensorRTRuntime

    with pytest.raises(ModelLoadError, match="does not exist|missing"):
        TensorRTRuntime(tmp_path / "absent.engine")
    (tmp_path / "empty.engine").write_bytes(b"")
    with pytest.raises(ModelLoadError):
        TensorRTRuntime(tmp_path / "empty.engine")


@pytest.mark.skipif(has_gpu(), reason="this machine has an NVIDIA GPU: the refusal without one cannot happen here")
def test_without_a_gpu_an_engine_is_refused_before_any_tensorrt_loads(tmp_path):
    """Garbage bytes: were they deserialised, TensorRT would fail on them, not on the GPU. A fresh
    interpreter shows that neither builder was even imported."""
    engine = tmp_path / "alexnet.engine"
    engine.write_bytes(b"\x00" * 64)
    sidecar_path(engine).write_text(json.dumps(_sidecar()))
    code = ("import sys; from alexnet_export.runtimes import open_runtime\n"
            f"try:\n    open_runtime({str(engine)!r})\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
            "print([m for m in ('tensorrt', 'tensorrt_rtx', 'tensorrt_rtx_bindings', 'cuda') if m in sys.modules])")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.splitlines()
    assert lines[0].startswith("ProviderError no NVIDIA GPU here: the CUDA driver"), lines
    assert "runs on compute capability 8.6, 8.9, 12.0 (TensorRT for RTX 1.7.1.116, ahead of time" in lines[0]
    assert lines[1] == "[]"


# Real builds (TensorRT for RTX, ahead of time on the CPU).


def test_engines_are_written_with_sidecars_that_say_where_they_run(rtx, trt_engines, small_onnx, pixel_onnx):
    for kind, result in trt_engines.items():
        sidecar = read_sidecar(result.path)
        assert result.path.stat().st_size > 10_000_000 and result.sidecar == sidecar_path(result.path)
        assert sidecar["builder"] == {"name": "TensorRT for RTX", "version": rtx.__version__, "version_compatible": False}
        assert sidecar["ahead_of_time"] is True and sidecar["built_on"] is None and result.built_on is None
        # No compute capability asked for: the builder's own set, read from its ComputeCapability enum.
        assert Targets.from_json(sidecar["targets"]) == default_targets(rtx) == result.targets
        assert "7.5" not in result.targets.compute_capabilities and "8.6" in result.targets.compute_capabilities
        assert sidecar["batch"] == {"min": 1, "opt": 2, "max": 4}
        source = (result.path.parent / sidecar["source_onnx"]).resolve()
        assert hashlib.sha256(source.read_bytes()).hexdigest() == sidecar["source_onnx_sha256"]
        facts = read_graph_facts(source)
        assert sidecar["metadata"] == facts.metadata_props and sidecar["precision"] == facts.precision == result.precision
        pixels = kind == "pixels"
        assert sidecar["input"] == {"name": "images", "format": "uint8" if pixels else "float32",
                                    "dtype": "uint8" if pixels else "float32",
                                    "shape": [-1, 224, 224, 3] if pixels else [-1, 3, 224, 224]}
    assert [trt_engines[kind].precision for kind in ("fp32", "fp16", "int8", "int8-kept", "pixels")] == [
        "fp32", "fp16", "int8-tensorrt", "int8-tensorrt", "fp32"]
    assert (trt_engines["pixels"].path.parent / read_sidecar(trt_engines["pixels"].path)["source_onnx"]).resolve() \
        == pixel_onnx.resolve()


def test_engine_sizes_follow_the_precision(trt_engines):
    size = {kind: result.size_bytes for kind, result in trt_engines.items()}
    assert 0.45 < size["fp16"] / size["fp32"] < 0.55  # FP16 weights: half
    assert 0.2 < size["int8"] / size["fp32"] < 0.3  # INT8 weights: a quarter
    assert 0.2 < size["int8-kept"] / size["fp32"] < 0.3  # conv1 and fc8 in float: small layers
    assert abs(size["pixels"] / size["fp32"] - 1) < 0.01  # the same weights behind a Cast and a Transpose


def test_chosen_compute_capabilities_are_built_for_and_recorded(rtx, precision_onnx, tmp_path):
    result = build_engine(precision_onnx["int8"], tmp_path / "m.engine",
                          settings=BuildSettings(1, 1, 1, builder="tensorrt-rtx", compute_capabilities=("12.0", "8.6")))
    assert result.targets == Targets(("8.6", "12.0")) == Targets.from_json(read_sidecar(result.path)["targets"])
    check_runs_here(read_sidecar(result.path), RTX_5090, rtx.__version__)
    with pytest.raises(ModelLoadError, match="targets compute capability 8.6, 12.0"):
        check_runs_here(read_sidecar(result.path), RTX_4090, rtx.__version__)
    known = ", ".join(builder_capabilities(rtx))  # read from the builder: 7.5, 8.0, 8.6, 8.9, 12.0, 12.1 in 1.7.1.116
    with pytest.raises(ArgumentError, match=rf"does not build for compute capability 6.1; it builds for {known}$") as refused:
        build_engine(precision_onnx["int8"], tmp_path / "pascal.engine",  # Pascal: older than any RTX target
                     settings=BuildSettings(builder="tensorrt-rtx", compute_capabilities=("6.1",)))
    assert refused.value.argument == "compute_capabilities"
    for options, argument in (({"hardware_compatibility": "ampere+"}, "hardware_compatibility"),
                              ({"version_compatible": True}, "version_compatible")):
        with pytest.raises(ArgumentError, match="TensorRT for RTX") as refused:
            build_engine(precision_onnx["int8"], tmp_path / "x.engine", settings=BuildSettings(builder="tensorrt-rtx",
                                                                                               **options))
        assert refused.value.argument == argument
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json"]


def test_tensorrt_for_rtx_keeps_no_timing_cache(rtx, precision_onnx, tmp_path):
    """NVIDIA: the timing cache has no effect on TensorRT for RTX's engines, and asking for one makes
    the build query a GPU. So it is not used: a second build finds no cache and says so each time."""
    cache = tmp_path / "alexnet.timing.cache"
    for _ in range(2):
        events = []
        result = build_engine(precision_onnx["int8"], tmp_path / "m.engine", settings=BuildSettings(1, 1, 1),
                              timing_cache_path=cache, on_event=events.append)
        assert result.timing_cache is None and not cache.exists()
        assert any(isinstance(e, Note) and "has no timing cache" in e.text for e in events)


@pytest.mark.trt
@pytest.mark.gpu
@needs_tensorrt
def test_tensorrt_reuses_its_timing_cache(small_onnx, tmp_path):
    if not has_gpu():
        pytest.skip("TensorRT builds on an NVIDIA GPU; there is none here")
    cache = tmp_path / "timing.cache"
    first = build_engine(small_onnx, tmp_path / "a.engine", settings=BuildSettings(1, 2, 4, builder="tensorrt"),
                         timing_cache_path=cache)
    assert first.timing_cache == cache and cache.stat().st_size > 0 and first.built_on is not None
    events = []
    build_engine(small_onnx, tmp_path / "b.engine", settings=BuildSettings(1, 2, 4, builder="tensorrt"),
                 timing_cache_path=cache, on_event=events.append)
    assert any(f"reusing the timing cache {cache}" in getattr(e, "text", "") for e in events)


def _unsupported_onnx(path, metadata):
    """A graph the parser refuses: `Det`, an ONNX operator TensorRT does not implement."""
    node = helper.make_node("Det", ["images"], ["logits"], name="determinant_here")
    graph = helper.make_graph([node], "det", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, metadata)
    onnx.save(model, str(path))


def test_a_graph_the_parser_refuses_names_the_node_and_keeps_the_good_engine(rtx, trt_engines, tmp_path):
    good = trt_engines["int8"]
    engine = tmp_path / "alexnet.engine"
    shutil.copy(good.path, engine)
    shutil.copy(good.sidecar, sidecar_path(engine))
    _unsupported_onnx(tmp_path / "bad.onnx", read_sidecar(good.path)["metadata"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ExportError) as refused:
        build_engine(tmp_path / "bad.onnx", engine, settings=BuildSettings(1, 1, 1))
    message = str(refused.value)
    assert message.startswith("TensorRT for RTX") and "cannot parse bad.onnx: node determinant_here (Det)" in message
    assert "\n" not in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the good pair, nothing added


def test_no_builder_option_runs_without_the_builder(tmp_path, small_onnx):
    if importlib.util.find_spec("tensorrt") or importlib.util.find_spec("tensorrt_rtx_bindings"):
        pytest.skip("a builder is installed here")
    with pytest.raises(TensorRTUnavailable, match=r"pip install 'alexnet-export\[tensorrt-rtx\]'"):
        build_engine(small_onnx, tmp_path / "m.engine", settings=BuildSettings())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.trt
@pytest.mark.gpu
@needs_tensorrt
def test_tensorrt_engine_matches_onnx_runtime(small_onnx, tmp_path, real_images):
    from alexnet_export.runtimes import OnnxRuntime, TensorRTRuntime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    if not has_gpu():
        pytest.skip("TensorRT builds on an NVIDIA GPU; there is none here")
    built = build_engine(small_onnx, tmp_path / "m.engine", settings=BuildSettings(1, 4, 8, builder="tensorrt",
                                                                                    hardware_compatibility="ampere+"))
    assert read_sidecar(built.path)["hardware_compatibility"] == "ampere+" and built.targets.and_newer
    runtime, reference = TensorRTRuntime(built.path), OnnxRuntime(small_onnx)
    batch = preprocess_batch(real_images[:5], reference.metadata.preprocessing)
    np.testing.assert_allclose(runtime.predict(batch), reference.predict(batch), atol=1e-2)


def test_opening_needs_the_builder_that_made_the_engine(tmp_path):
    """An engine's sidecar names its builder; only that one's runtime reads it."""
    from alexnet_export.runtimes import TensorRTRuntime

    if not has_gpu():
        pytest.skip("the builder is checked after the GPU, and there is none here")
    engine = tmp_path / "alexnet.engine"
    engine.write_bytes(b"\x00" * 64)
    gpu = gpu_identity()
    sidecar_path(engine).write_text(json.dumps(_sidecar("TensorRT", "10.13.0", built_on=gpu,
                                                        targets=Targets((gpu.compute_capability,), gpu_name=gpu.name),
                                                        hardware_compatibility="none")))
    if HAS_TENSORRT:
        pytest.skip("TensorRT is installed here")
    with pytest.raises(TensorRTNotInstalled, match=r"was built by TensorRT 10.13.0, on .*TensorRT is not installed"):
        TensorRTRuntime(engine)  # an ImportError naming the extra (tests/runtimes/test_missing_extras.py)
