"""`alexnet-export litert` and LiteRtRuntime: real conversions by litert-torch, run by LiteRT's interpreter."""

import json
import threading

import numpy as np
import pytest

from alexnet_export.errors import ArgumentError, InputError
from alexnet_export.models.precisions import FP16_GATE, FP32_GATE, INT8_GATE

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install '.[litert]')")


def test_fp32_file_holds_builtin_operators_only_without_a_transpose(fp32_tflite):
    from alexnet_export.runtimes.litert.reader import read_tflite_facts

    facts = read_tflite_facts(fp32_tflite.path)  # read back from the flatbuffer, not the exporter's memory
    assert facts.not_builtin == {} and facts.operators == fp32_tflite.operators
    assert not any(op.startswith(("STABLEHLO_", "CUSTOM")) for op in facts.operators)
    # Five convolutions and the two banded LRN sums; three fully connected layers; the LRN power as exp/log.
    assert facts.operators["CONV_2D"] == 7 and facts.operators["FULLY_CONNECTED"] == 3
    assert facts.operators["EXP"] == facts.operators["LOG"] == 2
    assert "TRANSPOSE" not in facts.operators  # NHWC input: none at the input, none before the flatten
    assert facts.layout == fp32_tflite.layout == "NHWC" and facts.inputs[0].shape == (1, 224, 224, 3)
    assert facts.inputs[0].dtype == "FLOAT32" and facts.arithmetic == "fp32"
    assert fp32_tflite.report.failures(FP32_GATE) == [] and fp32_tflite.report.max_rel < 1e-5
    sidecar = json.loads(fp32_tflite.sidecar.read_text())
    assert sidecar["precision"] == "fp32" and sidecar["layout"] == "NHWC" and sidecar["batch"] == {"min": 1, "max": 1}
    assert sidecar["tflite_bytes"] == fp32_tflite.path.stat().st_size == fp32_tflite.size_bytes
    assert sidecar["litert"]["litert-torch"] and sidecar["metadata"]["alexnet_export.precision"] == "fp32"
    assert sorted(p.name for p in fp32_tflite.path.parent.iterdir()) == ["small.tflite", "small.tflite.json"]


def test_int8_file_has_int8_weights_and_activations_under_60_mb(int8_tflite, fp32_tflite):
    from alexnet_export.runtimes.litert.reader import read_tflite_facts

    facts = read_tflite_facts(int8_tflite.path)
    assert facts.not_builtin == {}
    assert facts.inputs[0].dtype == facts.outputs[0].dtype == "INT8" and facts.arithmetic == "int8"
    assert facts.inputs[0].scale > 0 and facts.tensor_types["INT8"] > 20
    assert int8_tflite.size_bytes < 60e6 and int8_tflite.size_bytes < fp32_tflite.size_bytes / 3.5
    assert int8_tflite.report.failures(INT8_GATE) == [] and "held-out" in int8_tflite.verified_on
    assert json.loads(int8_tflite.sidecar.read_text())["precision"] == "int8-litert"


def test_fp16_file_stores_fp16_weights_at_half_the_size(fp16_tflite, fp32_tflite):
    from alexnet_export.runtimes.litert.reader import read_tflite_facts

    facts = read_tflite_facts(fp16_tflite.path)
    assert facts.not_builtin == {} and facts.arithmetic == "fp16" and facts.inputs[0].dtype == "FLOAT32"
    assert facts.operators["DEQUANTIZE"] == 10  # one per Conv/FC weight: FP16 -> FP32 when the interpreter loads
    assert 0.45 < fp16_tflite.size_bytes / fp32_tflite.size_bytes < 0.55
    assert fp16_tflite.report.failures(FP16_GATE) == []


def test_the_runtime_feeds_the_toolkits_nchw_batches_and_matches_eager(fp32_tflite, fp16_tflite, int8_tflite,
                                                                       small_model, real_images):
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import LiteRtRuntime, TorchRuntime, open_runtime
    from alexnet_export.runtimes.verification.parity import compare_logits
    from alexnet_export.runtimes.preprocess import preprocess_batch

    inputs = preprocess_batch(real_images[:5], Preprocessing())
    reference = TorchRuntime(small_model).predict(inputs)
    for result, gate in ((fp32_tflite, FP32_GATE), (fp16_tflite, FP16_GATE), (int8_tflite, INT8_GATE)):
        runtime = open_runtime(result.path, threads=2)
        assert isinstance(runtime, LiteRtRuntime) and "LiteRT" in runtime.device and "XNNPACK" in runtime.device
        assert runtime.precision == result.precision and runtime.metadata.num_classes == 10
        assert runtime.bounds.minimum == runtime.bounds.maximum == 1
        logits = runtime.predict_in_allowed_batches(inputs)
        assert compare_logits(reference, logits).failures(gate) == [], result.precision
        assert np.array_equal(runtime.predict(inputs[:1]), logits[:1])
        with pytest.raises(InputError):
            runtime.predict(inputs[:2])  # the file's batch is 1
        assert [label for label, _ in runtime.classify(real_images[0], top_k=3)[0]][0].startswith("class_")
        runtime.close()


def test_an_nchw_file_is_fed_nchw(fp32_tflite, small_model, real_images, tmp_path):
    """The runtime feeds the layout the flatbuffer says: the same model converted without the NHWC
    rewrite gives the NHWC file's logits (and the converter's TRANSPOSE ops, which NHWC input removes)."""
    import litert_torch
    import torch

    from alexnet_export.exporter.litert.convert import converter_quiet
    from alexnet_export.exporter.rewrites.lrn_banded import for_executorch
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import LiteRtRuntime
    from alexnet_export.runtimes.litert.reader import read_tflite_facts
    from alexnet_export.runtimes.sidecar import write_sidecar
    from alexnet_export.runtimes.preprocess import preprocess_batch

    with converter_quiet():
        flatbuffer = litert_torch.convert(for_executorch(small_model), (torch.zeros(1, 3, 224, 224),)).model_content()
    path = tmp_path / "nchw.tflite"
    path.write_bytes(flatbuffer)
    sidecar = json.loads(fp32_tflite.sidecar.read_text())
    write_sidecar(path, {**sidecar, "layout": "NCHW", "tflite_bytes": len(flatbuffer)})
    runtime = LiteRtRuntime(path)
    assert runtime.layout == "NCHW" and read_tflite_facts(path).operators["TRANSPOSE"] == 2
    inputs = preprocess_batch(real_images[:2], Preprocessing())
    nhwc = LiteRtRuntime(fp32_tflite.path).predict_in_allowed_batches(inputs)
    assert np.abs(runtime.predict_in_allowed_batches(inputs) - nhwc).max() < 1e-4


def test_calls_from_many_threads_get_their_own_logits(int8_tflite, real_images):
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import open_runtime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    runtime = open_runtime(int8_tflite.path, threads=1)
    inputs = preprocess_batch(real_images[:6], Preprocessing())
    expected = [runtime.predict(inputs[i : i + 1]) for i in range(len(inputs))]
    got, errors = {}, []

    def work(index):
        try:
            for _ in range(5):
                got.setdefault(index, []).append(runtime.predict(inputs[index : index + 1]))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for index, results in got.items():
        assert all(np.array_equal(result, expected[index]) for result in results)


def test_predict_verify_and_bench_take_tflite_files(predicts_and_verifies, fp32_tflite, int8_tflite, small_onnx,
                                                   photos, tmp_path):
    predicts_and_verifies(fp32_tflite.path, int8_tflite.path, photos, tmp_path / "photos")

    from alexnet_export.bench.harness import Settings, run_benchmark

    result = run_benchmark([small_onnx, fp32_tflite.path, int8_tflite.path],
                           Settings(batch_sizes=(1,), warmup=1, iterations=3, cold_start=False))
    gates = {check.model: check for check in result.gates}
    assert gates["small.tflite"].passed and gates["small.int8.tflite"].passed, [g.detail for g in result.gates]
    rows = {row.model: row for row in result.results}
    assert rows["small.int8.tflite"].precision == "int8-litert" and rows["small.tflite"].device.startswith("LiteRT")


def test_a_bad_argument_is_a_one_line_usage_error_naming_the_flag(cli, one_line_error, tmp_path):
    result = cli("litert", "--precision", "int8", cwd=tmp_path)
    one_line_error(result, r"int8-litert needs calibration images: a folder of 64 or more \(--calib-dir\)", code=2)
    assert list(tmp_path.iterdir()) == []


def test_bad_library_arguments_name_the_argument_before_any_work(tmp_path):
    from alexnet_export.exporter.pipeline import export_litert

    refusals = [
        (dict(batch=0), "batch", r"batch 0 is invalid; expected an integer from 1 to 64"),
        (dict(batch=True), "batch", r"batch True is invalid"),
        (dict(precision="int8-cpu"), "precision",
         r"precision 'int8-cpu' is unknown for litert files; expected one of fp32, fp16, int8-litert"),
        (dict(output=tmp_path / "model.onnx"), "output", r"a LiteRT model is a .tflite file .* got model.onnx"),
        (dict(output=tmp_path / "missing" / "m.tflite"), "output", r"output folder .*missing does not exist"),
    ]
    for arguments, argument, pattern in refusals:
        arguments.setdefault("output", tmp_path / "m.tflite")
        with pytest.raises(ArgumentError, match=pattern) as raised:
            export_litert(**arguments)
        assert raised.value.argument == argument and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_the_runtime_runs_without_torch_or_onnxruntime(int8_tflite, photos):
    """What an app or board installs: ai-edge-litert and the light install; torch, the converter and
    even ONNX Runtime blocked in a fresh interpreter."""
    import subprocess
    import sys

    code = """
import sys, json, importlib.abc
BLOCKED = {"torch", "onnx", "onnxruntime", "litert_torch", "ai_edge_quantizer", "jax", "click"}
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
from alexnet_export.runtimes import open_runtime
runtime = open_runtime(sys.argv[1])
top = runtime.classify(sys.argv[2], top_k=2)
print(json.dumps({"top": top, "precision": runtime.precision,
                  "heavy": sorted(m for m in BLOCKED if m in sys.modules)}))
"""
    result = subprocess.run([sys.executable, "-c", code, str(int8_tflite.path), str(photos[1])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [] and out["precision"] == "int8-litert"
    assert len(out["top"][0]) == 2 and out["top"][0][0][0].startswith("class_")


def test_a_signature_covers_the_tflite_and_its_sidecar(fp32_tflite, signing_keys, tmp_path):
    pytest.importorskip("model_signing", reason="model-signing is not installed (pip install '.[signing]')")
    import shutil

    from alexnet_export.errors import AlexNetExportError
    from alexnet_export.runtimes import open_runtime
    from alexnet_export.runtimes.signing import sign_model

    model = tmp_path / "m.tflite"
    shutil.copy(fp32_tflite.path, model)
    shutil.copy(fp32_tflite.sidecar, tmp_path / "m.tflite.json")
    signed = sign_model(model, signing_keys.private)
    assert sorted(signed.files) == ["m.tflite", "m.tflite.json"]
    assert open_runtime(model, trusted_key=signing_keys.public).precision == "fp32"
    sidecar = json.loads((tmp_path / "m.tflite.json").read_text())
    sidecar["metadata"]["alexnet_export.labels"] = json.dumps([f"other_{i}" for i in range(10)])
    (tmp_path / "m.tflite.json").write_text(json.dumps(sidecar))  # relabelled after signing
    with pytest.raises(AlexNetExportError, match=r"m\.tflite\.json"):
        open_runtime(model, trusted_key=signing_keys.public)


def test_the_seed_converted_as_it_is_would_be_refused(small_model):
    """The check can fail: without the LRN rewrite, litert-torch writes StableHLO ops, which the export refuses."""
    import litert_torch
    import torch

    from alexnet_export.errors import ExportError
    from alexnet_export.exporter.litert.convert import converter_quiet, check_builtin
    from alexnet_export.runtimes.litert.reader import facts_of

    with converter_quiet():
        flatbuffer = litert_torch.convert(small_model, (torch.zeros(1, 3, 224, 224),)).model_content()
    facts = facts_of(flatbuffer, "seed.tflite")
    assert facts.not_builtin == {"STABLEHLO_REDUCE_WINDOW": 2} and facts.operators["TRANSPOSE"] == 6
    with pytest.raises(ExportError, match=r"^seed.tflite would hold operators that are not LiteRT builtins"
                                          r" \(STABLEHLO_REDUCE_WINDOW x2\)"):
        check_builtin(facts, "seed.tflite")


def test_serve_answers_with_the_files_logits(int8_tflite, server_process, console, real_images):
    """`serve` on a batch-1 .tflite: a request of 3 images is split into the file's batch, and the
    model's metadata names LiteRT as its platform."""
    from alexnet_export.models.spec import INPUT_NAME, Preprocessing
    from alexnet_export.runtimes import open_runtime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    images = preprocess_batch(real_images[:3], Preprocessing())
    expected = open_runtime(int8_tflite.path).predict_in_allowed_batches(images)
    server = server_process(console, int8_tflite.path, "--max-batch", 4)
    try:
        status, _, body = server.request("GET", "/v2/models/alexnet")
        assert status == 200 and json.loads(body)["platform"] == "litert"
        request = {"inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": list(images.shape),
                               "data": images.ravel().tolist()}]}
        status, _, body = server.request("POST", "/v2/models/alexnet/infer", json.dumps(request),
                                         {"Content-Type": "application/json"})
        assert status == 200, body
        output = json.loads(body)["outputs"][0]
        assert np.array_equal(np.array(output["data"], np.float32).reshape(output["shape"]), expected)
    finally:
        assert server.stop() == 0, "".join(server.log)


def test_without_ai_edge_litert_opening_a_tflite_names_the_extra(fp32_tflite):
    import subprocess
    import sys

    code = ("import sys; sys.modules['ai_edge_litert'] = None\n"  # what an install without the extra sees
            "from alexnet_export.runtimes import open_runtime\n"
            f"open_runtime({str(fp32_tflite.path)!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        "reading a .tflite needs ai-edge-litert (import of ai_edge_litert halted; None in sys.modules);"
        " run: pip install 'alexnet-export[litert]'")


def test_logits_are_the_callers_and_a_closed_runtime_says_so(fp32_tflite, real_images):
    """The batch is written straight into the interpreter's input tensor (the NHWC transpose on the way);
    what comes back is a copy of its output tensor, which the next call overwrites."""
    from alexnet_export.errors import InferenceError
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import open_runtime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    runtime = open_runtime(fp32_tflite.path)
    inputs = preprocess_batch(real_images[:2], Preprocessing())
    first = runtime.predict(inputs[:1])
    kept = first.copy()
    assert not np.array_equal(runtime.predict(inputs[1:]), kept)
    assert np.array_equal(first, kept) and np.array_equal(runtime.predict(inputs[:1]), kept)
    runtime.close()
    with pytest.raises(InferenceError, match=r"^the LiteRT runtime for small.tflite is closed$"):
        runtime.predict(inputs[:1])
