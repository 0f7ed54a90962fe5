"""`alexnet-export executorch` and ExecuTorchRuntime: real exports lowered to XNNPACK, run by ExecuTorch."""

import json
import os
import sys

import numpy as np
import pytest

from alexnet_export.errors import ArgumentError, InputError, ModelLoadError
from alexnet_export.models.precisions import FP32_GATE, INT8_GATE

pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed (pip install '.[executorch]')")
MAX_BATCH = 8  # what tests/conftest.py exports with (PTE_MAX_BATCH; checked below against the sidecar)


def test_fp32_export_passes_the_fp32_gate_with_every_operator_in_xnnpack(fp32_pte):
    assert fp32_pte.report.failures(FP32_GATE) == []
    assert fp32_pte.report.max_rel < 1e-5 and fp32_pte.report.min_cosine > 0.99999
    assert fp32_pte.delegation.complete and fp32_pte.delegation.subgraphs == 1
    # Five convolutions and the two banded LRN sums; three linears; the LRN power as exp/log.
    assert fp32_pte.delegation.delegated["aten_convolution_default"] == 7
    assert fp32_pte.delegation.delegated["aten_linear_default"] == 3
    assert fp32_pte.delegation.delegated["aten_exp_default"] == 2
    assert fp32_pte.delegation.describe().startswith("all ")
    sidecar = json.loads(fp32_pte.sidecar.read_text())
    assert sidecar["precision"] == "fp32" and sidecar["batch"] == {"min": 1, "max": MAX_BATCH}
    assert sidecar["pte_bytes"] == fp32_pte.path.stat().st_size == fp32_pte.size_bytes
    assert sidecar["delegation"]["not_delegated"] == {}
    assert sorted(p.name for p in fp32_pte.path.parent.iterdir()) == ["small.pte", "small.pte.json"]  # nothing else left


def test_int8_export_passes_the_int8_gate_on_held_out_images_fully_delegated(int8_pte, fp32_pte):
    assert int8_pte.report.failures(INT8_GATE) == []
    assert "held-out" in int8_pte.verified_on
    assert int8_pte.delegation.complete
    assert int8_pte.delegation.delegated["quantized_decomposed_dequantize_per_channel_default"] >= 8  # 7 convs, 3 linears
    assert int8_pte.size_bytes < fp32_pte.size_bytes / 3.5  # INT8 weights
    assert json.loads(int8_pte.sidecar.read_text())["precision"] == "int8-executorch"


def test_the_runtime_matches_eager_at_the_smallest_and_largest_batch(fp32_pte, int8_pte, small_model, real_images):
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import TorchRuntime, open_runtime
    from alexnet_export.runtimes.executorch.runtime import ExecuTorchRuntime
    from alexnet_export.runtimes.verification.parity import compare_logits
    from alexnet_export.runtimes.preprocess import preprocess_batch

    inputs = preprocess_batch(real_images[: MAX_BATCH + 1], Preprocessing())
    eager = TorchRuntime(small_model)
    for result, gate in ((fp32_pte, FP32_GATE), (int8_pte, INT8_GATE)):
        runtime = open_runtime(result.path, threads=2)
        assert isinstance(runtime, ExecuTorchRuntime) and "XNNPACK" in runtime.device
        assert runtime.precision == result.precision and runtime.metadata.num_classes == 10
        assert runtime.bounds.minimum == 1 and runtime.bounds.maximum == MAX_BATCH
        for batch in (inputs[:1], inputs[:MAX_BATCH]):
            report = compare_logits(eager.predict(batch), runtime.predict(batch))
            assert report.failures(gate) == [], result.precision
        with pytest.raises(InputError):
            runtime.predict(inputs)  # one more than the planned batch
        assert runtime.predict_in_allowed_batches(inputs).shape == (MAX_BATCH + 1, 10)
        runtime.close()


def test_predict_and_verify_open_a_pte_through_the_registry(predicts_and_verifies, fp32_pte, int8_pte, photos,
                                                            tmp_path):
    predicts_and_verifies(fp32_pte.path, int8_pte.path, photos, tmp_path / "photos")


def test_bench_times_pte_files_beside_onnx_and_checks_their_gates(fp32_pte, int8_pte, small_onnx):
    from alexnet_export.bench.harness import Settings, run_benchmark

    result = run_benchmark([small_onnx, fp32_pte.path, int8_pte.path],
                           Settings(batch_sizes=(1,), warmup=1, iterations=3, cold_start=False))
    gates = {check.model: check for check in result.gates}
    assert gates["small.onnx"].detail == "reference"
    assert gates["small.pte"].passed and gates["small.int8.pte"].passed, [g.detail for g in result.gates]
    rows = {row.model: row for row in result.results}
    assert rows["small.int8.pte"].precision == "int8-executorch" and rows["small.pte"].device.startswith("ExecuTorch")
    [pick] = result.recommendation
    assert pick.model in rows  # whichever is fastest here; all three passed


def test_a_pte_without_its_sidecar_or_with_another_files_is_refused(fp32_pte, int8_pte, tmp_path):
    from alexnet_export.runtimes import open_runtime

    lone = tmp_path / "lone.pte"
    os.link(fp32_pte.path, lone)
    with pytest.raises(ModelLoadError, match=r"lone.pte.json is missing; a .pte carries no labels or preprocessing"):
        open_runtime(lone)
    (tmp_path / "lone.pte.json").write_text(int8_pte.sidecar.read_text())
    with pytest.raises(ModelLoadError, match=r"describes a .pte of \d+ bytes but lone.pte has \d+; the two are not one"):
        open_runtime(lone)


def test_a_failed_gate_leaves_no_file_and_keeps_the_old_one(fp32_pte, small_metadata, tmp_path):
    """The verify-and-rename step with a real program (the shared export's bytes) and a reference it
    cannot match: another seed's weights."""
    from alexnet_export.errors import ParityError
    from alexnet_export.exporter.executorch.convert import write_verified_pte
    from alexnet_export.models.alexnet import seeded_alexnet
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import TorchRuntime
    from alexnet_export.runtimes.preprocess import preprocess_batch
    from alexnet_export.runtimes.verification.samples import synthetic_images

    target = tmp_path / "model.pte"
    target.write_bytes(b"an older good program")
    (tmp_path / "model.pte.json").write_text("{}")
    inputs = preprocess_batch(synthetic_images(4, seed=2), Preprocessing())
    other_weights = TorchRuntime(seeded_alexnet(10, seed=4))
    with pytest.raises(ParityError, match=r"model.pte \(fp32\) fails the fp32 parity gate"):
        write_verified_pte(lambda handle: handle.write(fp32_pte.path.read_bytes()), fp32_pte.delegation, target,
                           "fp32", small_metadata, other_weights, inputs, "4 images", max_batch=MAX_BATCH)
    assert target.read_bytes() == b"an older good program" and (tmp_path / "model.pte.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pte", "model.pte.json"]


def test_a_program_for_batch_one_is_static_and_fully_delegated(small_model):
    """--max-batch 1 (a phone): torch.export takes no batch range of one size, so the program is static."""
    from alexnet_export.exporter.executorch.convert import lower

    _, delegation = lower(small_model, "fp32", 1)
    assert delegation.complete and delegation.delegated["aten_convolution_default"] == 7


def test_a_bad_argument_is_a_one_line_usage_error_naming_the_flag(cli, one_line_error, tmp_path):
    result = cli("executorch", "--precision", "int8", cwd=tmp_path)
    one_line_error(result, r"int8-executorch needs calibration images: a folder of 64 or more \(--calib-dir\)", code=2)
    assert list(tmp_path.iterdir()) == []


def test_bad_library_arguments_name_the_argument_before_any_work(tmp_path):
    from alexnet_export.exporter.pipeline import export_executorch

    refusals = [
        (dict(max_batch=0), "max_batch", r"max_batch 0 is invalid; expected an integer from 1 to 1024"),
        (dict(max_batch=2000), "max_batch", r"max_batch 2000 is invalid"),
        (dict(max_batch=1.5), "max_batch", r"max_batch 1.5 is invalid"),
        (dict(precision="int8-cpu"), "precision",
         r"precision 'int8-cpu' is unknown for executorch files; expected one of fp32, int8-executorch"),
        (dict(output=tmp_path / "model.onnx"), "output", r"an ExecuTorch program is a .pte file .* got model.onnx"),
        (dict(output=tmp_path / "missing" / "m.pte"), "output", r"output folder .*missing does not exist"),
    ]
    for arguments, argument, pattern in refusals:
        arguments.setdefault("output", tmp_path / "m.pte")
        with pytest.raises(ArgumentError, match=pattern) as raised:
            export_executorch(**arguments)
        assert raised.value.argument == argument and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_without_executorch_the_error_is_one_line_naming_the_extra(tmp_path):
    import subprocess

    code = ("import sys; sys.modules['executorch'] = None\n"  # what an environment without the package sees
            "from alexnet_export.exporter.pipeline import export_executorch\n"
            f"export_executorch({str(tmp_path / 'm.pte')!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        "ExecuTorch is not installed (import of executorch halted; None in sys.modules);"
        " run: pip install 'alexnet-export[executorch]'")
    assert list(tmp_path.iterdir()) == []


def test_logits_are_the_callers_and_a_closed_runtime_says_so(fp32_pte, real_images):
    from alexnet_export.errors import InferenceError
    from alexnet_export.models.spec import Preprocessing
    from alexnet_export.runtimes import open_runtime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    runtime = open_runtime(fp32_pte.path)
    inputs = preprocess_batch(real_images[:2], Preprocessing())
    first = runtime.predict(inputs[:1])
    kept = first.copy()
    assert not np.array_equal(runtime.predict(inputs[1:]), kept)
    assert np.array_equal(first, kept)  # not a view of the planned buffers the next call wrote
    runtime.close()
    with pytest.raises(InferenceError, match=r"^the ExecuTorch runtime for small.pte is closed$"):
        runtime.predict(inputs[:1])


@pytest.mark.parametrize("damage", ["header", "body"])
def test_a_damaged_pte_prints_one_line_and_nothing_else(cli, fp32_pte, photos, tmp_path, damage, one_line_failure):
    """ExecuTorch logs why it refuses a program (and its import, torchao's and torch's warnings): predict
    keeps it all off stderr but the reason, in its one error line. A header that is not ExecuTorch's is
    refused before the bindings read it: ExecuTorch logs its identifier's bytes as text, and pybind11
    aborts the process on bytes that are not UTF-8 (these random ones)."""
    data = bytearray(fp32_pte.path.read_bytes())
    where = slice(0, 64) if damage == "header" else slice(1000, 5000)
    data[where] = np.random.default_rng(0).integers(0, 256, where.stop - where.start, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.pte"
    bad.write_bytes(bytes(data))
    (tmp_path / "bad.pte.json").write_text(fp32_pte.sidecar.read_text())  # the same size: the sidecar agrees
    line = one_line_failure(cli("predict", bad, photos[0]), alone=True)
    reason = {"header": "it is not an ExecuTorch program", "body": "Verification failed; data may be truncated or corrupt"}
    assert line.startswith(f"Error: ExecuTorch cannot load {bad}: {reason[damage]}"), line
