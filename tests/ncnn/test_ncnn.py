"""`alexnet-export ncnn` and NcnnRuntime: the toolkit's own writer, run by ncnn's Python wheel."""

import json
import threading

import numpy as np
import pytest

from alexnet_export.errors import InferenceError
from alexnet_export.models.precisions import FP16_GATE, FP32_GATE, INT8_GATE

pytest.importorskip("ncnn", reason="ncnn is not installed (pip install '.[ncnn]')")


def test_fp32_pair_has_native_lrn_fp32_weights_and_eager_logits(fp32_ncnn):
    from alexnet_export.runtimes.ncnn.reader import read_ncnn_facts

    facts = read_ncnn_facts(fp32_ncnn.path)  # read back from the files, not the exporter's memory
    kinds = [layer.type for layer in facts.layers]
    assert kinds.count("LRN") == facts.lrn_layers == 2 and kinds.count("ConvolutionDepthWise") == 3
    assert kinds.count("Convolution") == 2 and kinds.count("InnerProduct") == 3 and "Dropout" not in kinds
    assert facts.weights == "fp32" and facts.input_shape == (3, 224, 224) and facts.classes == 10
    assert fp32_ncnn.report.failures(FP32_GATE) == [] and fp32_ncnn.report.max_rel < 1e-4
    sidecar = json.loads(fp32_ncnn.sidecar.read_text())
    assert sidecar["precision"] == "fp32" and sidecar["batch"] == {"min": 1, "max": None}
    assert sidecar["param_bytes"] == fp32_ncnn.path.stat().st_size == fp32_ncnn.param_bytes
    assert sidecar["bin_bytes"] == fp32_ncnn.bin.stat().st_size == fp32_ncnn.bin_bytes
    assert sidecar["metadata"]["alexnet_export.precision"] == "fp32"
    assert sorted(p.name for p in fp32_ncnn.path.parent.iterdir()) == ["small.ncnn.bin", "small.ncnn.param",
                                                                      "small.ncnn.param.json"]


def test_fp16_pair_stores_fp16_weights_at_half_the_size(fp16_ncnn, fp32_ncnn):
    from alexnet_export.runtimes.ncnn.reader import read_ncnn_facts

    assert read_ncnn_facts(fp16_ncnn.path).weights == "fp16"
    assert 0.49 < fp16_ncnn.bin_bytes / fp32_ncnn.bin_bytes < 0.51
    assert fp16_ncnn.report.failures(FP16_GATE) == []


def test_int8_pair_has_int8_weights_passes_its_gate_on_held_out_images(int8_ncnn, fp32_ncnn):
    from alexnet_export.runtimes.ncnn.reader import read_ncnn_facts

    facts = read_ncnn_facts(int8_ncnn.path)
    assert facts.weights == "int8" and facts.lrn_layers == 2
    assert int8_ncnn.bin_bytes < fp32_ncnn.bin_bytes / 3.5
    assert int8_ncnn.report.failures(INT8_GATE) == [] and "held-out" in int8_ncnn.verified_on
    assert json.loads(int8_ncnn.sidecar.read_text())["precision"] == "int8-ncnn"


def test_int8_weights_of_the_1000_class_model_stay_under_60_mb():
    from alexnet_export.exporter.ncnn.layers import write_ncnn
    from alexnet_export.models.alexnet import seeded_alexnet
    from alexnet_export.runtimes.verification.layers import WEIGHTED

    param, weights = write_ncnn(seeded_alexnet(1000, seed=0), "int8", dict.fromkeys(WEIGHTED, 4.0))
    assert 49e6 < len(weights) < 60e6  # 61 million weights at one byte, plus scales and FP32 biases
    # Per-channel scales on every weighted layer: conv1, conv3, two per grouped conv (one Convolution per group), fc6-8.
    assert param.count("8=2") == 2 + 2 * 3 + 3 and "ConvolutionDepthWise" not in param


def test_a_second_int8_export_reuses_the_calibration_ranges(int8_ncnn, calib_dir, calibration_cache, tmp_path):
    from alexnet_export.events import Note
    from alexnet_export.exporter.calibration.images import CalibrationOptions
    from alexnet_export.exporter.pipeline import ModelSource, export_ncnn

    notes = []
    export_ncnn(tmp_path / "again.int8.ncnn.param", ModelSource(num_classes=10, seed=3), precision="int8-ncnn",
                calibration=CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache),
                on_event=lambda event: notes.append(event.text) if isinstance(event, Note) else None)
    assert any(text.startswith("calibration ranges reused from") for text in notes), notes
    assert (tmp_path / "again.int8.ncnn.bin").read_bytes() == int8_ncnn.bin.read_bytes()  # same ranges, same file


def test_the_runtime_opens_by_suffix_and_matches_eager_on_photos(fp32_ncnn, int8_ncnn, small_model, real_images):
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import NcnnRuntime, TorchRuntime, open_runtime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    batch = preprocess_batch(real_images[:5], Preprocessing())
    expected = TorchRuntime(small_model).predict(batch)
    with open_runtime(fp32_ncnn.path, threads=1) as runtime:
        assert isinstance(runtime, NcnnRuntime) and runtime.precision == "fp32"
        logits = runtime.predict(batch)
        assert np.abs(logits - expected).max() / np.abs(expected).max() < 1e-4
        assert np.array_equal(runtime.predict(batch[2:3]), logits[2:3])  # image by image: a batch changes nothing
        labels = runtime.classify(real_images[:2], top_k=3)
        assert len(labels) == 2 and all(len(row) == 3 for row in labels)
    with open_runtime(int8_ncnn.path) as runtime:
        assert runtime.precision == "int8-ncnn"
        agree = (runtime.predict(batch).argmax(1) == expected.argmax(1)).mean()
        assert agree >= 0.8


def test_one_runtime_serves_many_threads_and_refuses_calls_once_closed(fp32_ncnn, small_model):
    from alexnet_export.runtimes import NcnnRuntime

    rng = np.random.default_rng(5)
    batches = [rng.standard_normal((2, 3, 224, 224)).astype(np.float32) for _ in range(4)]
    runtime = NcnnRuntime(fp32_ncnn.path, threads=1)
    alone = [runtime.predict(batch) for batch in batches]
    results, errors = [None] * len(batches), []

    def run(index):
        try:
            results[index] = runtime.predict(batches[index])
        except Exception as exc:  # noqa: BLE001 (the assertion reports it)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and all(np.array_equal(a, b) for a, b in zip(alone, results))
    runtime.close()
    with pytest.raises(InferenceError, match="closed"):
        runtime.predict(batches[0])


def test_cli_exports_and_predicts_an_fp16_pair(cli, tmp_path, photos):
    result = cli("ncnn", "--num-classes", "10", "--seed", "3", "--precision", "fp16", "-o", "m.fp16.ncnn.param",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote m.fp16.ncnn.param, m.fp16.ncnn.bin and m.fp16.ncnn.param.json (fp16," in result.stdout
    assert "parity, eager PyTorch vs fp16 ncnn" in result.stdout
    predicted = cli("predict", tmp_path / "m.fp16.ncnn.param", photos[0])
    assert predicted.returncode == 0, predicted.stderr
    assert "class_" in predicted.stdout


def test_optimize_and_signing_know_the_pair_from_the_table(fp32_ncnn, tmp_path):
    from alexnet_export.optimize.candidates import CANDIDATES
    from alexnet_export.runtimes.table import backend_for

    ids = {candidate.id: candidate.file for candidate in CANDIDATES}
    assert ids["ncnn:fp32"] == "alexnet.ncnn.param" and ids["ncnn:int8"] == "alexnet.int8.ncnn.param"
    assert ids["ncnn:fp16"] == "alexnet.fp16.ncnn.param"
    files = [path.name for path in backend_for(fp32_ncnn.path).files(fp32_ncnn.path)]
    assert files == ["small.ncnn.param", "small.ncnn.bin", "small.ncnn.param.json"]


def test_serve_answers_with_the_pairs_logits(int8_ncnn, server_process, console, real_images):
    """`serve` on an INT8 pair: the model's metadata names ncnn as its platform and a request of 3 images
    gets the runtime's logits."""
    from alexnet_export.models.spec import INPUT_NAME, Preprocessing
    from alexnet_export.runtimes import open_runtime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    images = preprocess_batch(real_images[:3], Preprocessing())
    expected = open_runtime(int8_ncnn.path).predict(images)
    server = server_process(console, int8_ncnn.path, "--max-batch", 4)
    try:
        status, _, body = server.request("GET", "/v2/models/alexnet")
        assert status == 200 and json.loads(body)["platform"] == "ncnn"
        request = {"inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": list(images.shape),
                               "data": images.ravel().tolist()}]}
        status, _, body = server.request("POST", "/v2/models/alexnet/infer", json.dumps(request),
                                         {"Content-Type": "application/json"})
        assert status == 200, body
        output = json.loads(body)["outputs"][0]
        assert np.array_equal(np.array(output["data"], np.float32).reshape(output["shape"]), expected)
    finally:
        assert server.stop() == 0, "".join(server.log)


def test_a_signature_covers_the_bin_and_the_sidecar(int8_ncnn, signing_keys, tmp_path):
    import os

    from alexnet_export.runtimes import open_runtime
    from alexnet_export.runtimes.signing import SignatureError, sign_model, verify_model

    for path in (int8_ncnn.path, int8_ncnn.bin, int8_ncnn.sidecar):
        os.link(path, tmp_path / path.name)
    param = tmp_path / int8_ncnn.path.name
    result = sign_model(param, signing_keys.private)
    assert result.files == ("small.int8.ncnn.param", "small.int8.ncnn.bin", "small.int8.ncnn.param.json")
    assert verify_model(param, signing_keys.public).files == result.files
    assert open_runtime(param, trusted_key=signing_keys.public).precision == "int8-ncnn"
    sidecar = tmp_path / int8_ncnn.sidecar.name
    sidecar.unlink()  # a hard link: write a changed copy, never the fixture's file
    changed = int8_ncnn.sidecar.read_text().replace("class_0", "cat_0")
    assert changed != int8_ncnn.sidecar.read_text()
    sidecar.write_text(changed)
    with pytest.raises(SignatureError):
        verify_model(param, signing_keys.public)


def test_without_ncnn_opening_a_pair_names_the_extra(fp32_ncnn):
    import subprocess
    import sys

    code = ("import sys; sys.modules['ncnn'] = None\n"  # what an install without the extra sees
            "from alexnet_export.runtimes import open_runtime\n"
            f"open_runtime({str(fp32_ncnn.path)!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith("run: pip install 'alexnet-export[ncnn]'")
