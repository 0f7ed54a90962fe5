"""`alexnet-export optimize`: the top-1 budget decides between float, keep-float and INT8 files, a run
resumes after an interruption, the report's figures are verify's and bench's, and bad input is
refused before anything is written.

Candidates are restricted to the FP32 and INT8 CPU .onnx (and the keep-float file that comes with
the latter) and the objective is size, so the choice does not depend on timing (never asserted)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from alexnet_export.errors import AlexNetExportError, ArgumentError
from alexnet_export.events import Note

CANDIDATES = ("onnx:fp32", "onnx:int8-cpu")


@pytest.fixture(scope="module")
def calibration(calib_dir, calibration_cache):
    from alexnet_export.exporter.calibration.images import CalibrationOptions

    return CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache)


def _optimize(checkpoint, images, output, budget, calibration, **options):
    from alexnet_export.optimize import optimize

    return optimize(checkpoint, images, output, max_top1_drop=budget, calibration=calibration, objective="size",
                    candidates=CANDIDATES, bench_rounds=5, **options)


def _row(result, candidate_id):
    return next(row for row in result.report.candidates if row.id == candidate_id)


@pytest.fixture(scope="module")
def tight_run(tmp_path_factory, outlier_checkpoint, labelled_images, calibration):
    """Interrupted (Ctrl-C) once the INT8 file is measured, then run again: budget 0, every file kept."""
    checkpoint, _ = outlier_checkpoint
    output = tmp_path_factory.mktemp("optimize") / "out"
    notes = []

    def interrupt_after_int8(event):
        if isinstance(event, Note):
            notes.append(event.text)
            if event.text.startswith("[2/3] onnx:int8-cpu:"):
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _optimize(checkpoint, labelled_images, output, 0, calibration, on_event=interrupt_after_int8)
    interrupted = sorted(path.name for path in output.iterdir())
    resumed = []
    result = _optimize(checkpoint, labelled_images, output, 0, calibration, keep_all=True,
                       on_event=lambda event: isinstance(event, Note) and resumed.append(event.text))
    return result, output, notes, interrupted, resumed


def test_plain_int8_loses_answers_and_a_tight_budget_picks_a_file_that_keeps_them(tight_run):
    result, output, _, _, _ = tight_run
    int8 = _row(result, "onnx:int8-cpu")
    assert int8.answers_lost > 0 and int8.top1_drop > 0 and not int8.within_budget
    assert int8.gate == "passed"  # the gate on logits passes it: only the labelled images show the loss
    chosen = next(row for row in result.report.candidates if str(output / row.file) == result.report.chosen)
    assert chosen.answers_lost == 0 and chosen.within_budget
    assert chosen.precision == "fp32" or chosen.float_layers, chosen  # a float or keep-float file
    fp32 = _row(result, "onnx:fp32")
    assert chosen.bytes <= fp32.bytes  # objective size: the smallest within the budget
    assert (output / chosen.file).is_file() and result.chosen == output / chosen.file


def test_an_interrupted_run_keeps_its_finished_candidates_and_the_rerun_reuses_them(tight_run):
    _, output, notes, interrupted, resumed = tight_run
    assert any(note.startswith("[1/3] onnx:fp32:") for note in notes)
    assert {"alexnet.onnx", "alexnet.int8-cpu.onnx", ".optimize-progress.json"} <= set(interrupted)
    assert not any(name.endswith(".partial") for name in interrupted)
    firsts = [note for note in resumed if note.startswith(("[1/3]", "[2/3]"))]
    assert len(firsts) == 2 and all(note.endswith("(reused from an earlier run)") for note in firsts)
    assert any(note.startswith("[3/3] onnx:int8-cpu+keep-float:") and "reused" not in note for note in resumed)


def test_report_json_has_every_field_and_its_figures_are_verify_and_bench_s(tight_run, cli):
    result, output, _, _, _ = tight_run
    report = json.loads((output / "report.json").read_text())
    assert report["chosen"] == result.report.chosen and report["reference_top1"] == 1.0
    for row in report["candidates"]:
        assert {"file", "format", "precision", "bytes", "top1", "top1_drop", "p50_ms", "within_budget"} <= set(row)
        assert row["p50_ci_ms"][0] <= row["p50_ms"] <= row["p50_ci_ms"][1] and isinstance(row["pareto"], bool)
    assert report["timing"] == {"rule": "5 rounds", "rounds": 5, "stopped": "5 rounds asked"}
    assert report["decided_by"].startswith("objective size:") and set(report["tie"]) <= {
        row["id"] for row in report["candidates"] if row["within_budget"]}
    bench_p50 = {row["model"]: row["p50_ms"] for row in report["bench"]["results"]}
    bench_mb = {model["model"]: model["file_mb"] for model in report["bench"]["models"]}
    for row in report["candidates"]:
        assert row["p50_ms"] == bench_p50[row["file"]]  # the one interleaved bench run, as `bench` reports it
        assert row["bytes"] / 1e6 == pytest.approx(bench_mb[row["file"]], rel=1e-12)
    int8 = next(row for row in report["candidates"] if row["id"] == "onnx:int8-cpu")
    labelled = report["settings"]["images"]
    verified = cli("verify", output / int8["file"], "--images", labelled, "--labels-from-folders", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["top1"] == int8["top1"]
    assert (output / "report.md").read_text().count("alexnet.") >= 3
    assert (output / "report.png").stat().st_size > 0


def test_a_loose_budget_picks_the_int8_file_reusing_the_measured_candidates(tight_run, outlier_checkpoint,
                                                                            labelled_images, calibration, tmp_path):
    result, output, _, _, _ = tight_run
    loose = tmp_path / "loose"
    shutil.copytree(output, loose)
    drop = _row(result, "onnx:int8-cpu").top1_drop
    notes = []
    checkpoint, _ = outlier_checkpoint
    again = _optimize(checkpoint, labelled_images, loose, drop + 1, calibration,
                      on_event=lambda event: isinstance(event, Note) and notes.append(event.text))
    assert again.chosen == loose / "alexnet.int8-cpu.onnx"
    assert _row(again, "onnx:int8-cpu").within_budget
    assert sum("reused from an earlier run" in note for note in notes) == 2
    assert any("keep-float: not needed" in note for note in notes)
    left = {path.name for path in loose.iterdir()}
    assert "alexnet.onnx" not in left and "alexnet.keep-float.int8-cpu.onnx" not in left  # not --keep-all


def _bad_inputs(root, labelled_images):
    flat = root / "flat"  # images, but not in class folders
    flat.mkdir()
    few = root / "few" / "class_1"  # labelled, but under 20
    few.mkdir(parents=True)
    unknown = root / "unknown" / "cat"  # a folder that is none of the model's labels
    unknown.mkdir(parents=True)
    for index, image in enumerate(sorted(labelled_images.rglob("*.png"))[:25]):
        shutil.copy(image, flat / image.name)
        shutil.copy(image, unknown / image.name)
        if index < 5:
            shutil.copy(image, few / image.name)
    return flat, few.parent, unknown.parent


@pytest.mark.parametrize("case, match", [
    ("flat", "is not inside a class folder"),
    ("few", "found 5 labelled images .*expected at least 20"),
    ("unknown", "class folder 'cat' is not among the model's 10 labels"),
    ("empty", "found no image files"),
    ("objective", "objective 'speed' is unknown; expected one of latency, throughput, size"),
    ("below", "max_top1_drop -1 is outside 0..100"),
    ("above", "max_top1_drop 101 is outside 0..100"),
    ("calibration", "found 5 image files under .*calibration needs at least 64"),
])
def test_bad_input_is_refused_before_anything_is_written(case, match, tmp_path, outlier_checkpoint, labelled_images,
                                                        calibration):
    from alexnet_export.optimize import optimize

    flat, few, unknown = _bad_inputs(tmp_path, labelled_images)
    (tmp_path / "empty" / "class_1").mkdir(parents=True)
    images = {"flat": flat, "few": few, "unknown": unknown, "empty": tmp_path / "empty"}.get(case, labelled_images)
    options = {"objective": "speed"} if case == "objective" else {}
    budget = {"below": -1, "above": 101}.get(case, 1)
    if case == "calibration":  # the export commands' own check, before the work (exit 2 in the CLI)
        calibration = type(calibration)(few / "class_1", 64)
    output = tmp_path / "out"
    with pytest.raises(AlexNetExportError, match=match) as caught:
        optimize(outlier_checkpoint[0], images, output, max_top1_drop=budget, calibration=calibration, **options)
    assert "\n" not in str(caught.value)
    assert not output.exists()
    if case in ("objective", "below", "above", "calibration"):
        assert isinstance(caught.value, ArgumentError)


def test_cli_bad_input_is_one_line_with_nothing_in_outdir(cli, tmp_path, outlier_checkpoint, labelled_images,
                                                          calib_dir, one_line_error):
    checkpoint, _ = outlier_checkpoint
    flat, _, _ = _bad_inputs(tmp_path, labelled_images)
    common = ("optimize", "--weights", checkpoint, "--labels-from-folders", "--calib-dir", calib_dir)
    usage = cli(*common, "--images", labelled_images, "--max-top1-drop", "101", "-o", tmp_path / "a")
    one_line_error(usage, r"max_top1_drop 101 is outside 0\.\.100.*\(--max-top1-drop\)", code=2)
    failed = cli(*common, "--images", flat, "--max-top1-drop", "1", "-o", tmp_path / "b")
    assert failed.returncode in (1, 2)
    one_line_error(failed, "is not inside a class folder", code=failed.returncode)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_litert_candidate_is_made_at_the_timed_batch_and_measured_as_verify_and_bench_do(tight_run, outlier_checkpoint,
                                                                                         labelled_images, calibration,
                                                                                         tmp_path):
    pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install '.[litert-export]')")
    from alexnet_export.bench.accuracy import evaluate, image_set
    from alexnet_export.optimize import optimize
    from alexnet_export.runtimes.registry import open_runtime

    _, output, _, _, _ = tight_run
    folder = tmp_path / "litert"
    shutil.copytree(output, folder)  # the FP32 .onnx and the reference are reused
    again = optimize(outlier_checkpoint[0], labelled_images, folder, max_top1_drop=100, calibration=calibration,
                     candidates=("litert:fp32",), batch_size=2, bench_rounds=3, keep_all=True)
    row = _row(again, "litert:fp32")
    assert row.file == "alexnet.tflite" and row.format == "litert" and row.p50_ms is not None
    runtime = open_runtime(folder / row.file)
    assert (runtime.bounds.minimum, runtime.bounds.maximum) == (2, 2)  # a .tflite's batch is fixed: the timed one
    verified = evaluate(runtime, image_set(labelled_images, runtime.metadata.labels), batch_size=32)
    assert verified.top1 == row.top1 and row.answers_lost == 0  # FP32: the labelled images' margins hold


def test_litert_candidates_are_skipped_with_why_above_the_largest_fixed_batch():
    from alexnet_export.optimize.candidates import CANDIDATES, skip_reason

    litert = [candidate for candidate in CANDIDATES if candidate.format == "litert"]
    assert {candidate.precision for candidate in litert} == {"fp32", "fp16", "int8-litert"}
    reason = skip_reason(litert[0], calibrating=True, batch=65)
    assert reason is not None and "at most 64" in reason and "batch 65" in reason
    if importlib.util.find_spec("litert_torch") and importlib.util.find_spec("ai_edge_litert"):
        assert all(skip_reason(candidate, calibrating=True, batch=64) is None for candidate in litert)


def _copy_of(tight_run, tmp_path, name):
    """tight_run's folder (the FP32 .onnx and the reference are reused, not made again)."""
    folder = tmp_path / name
    shutil.copytree(tight_run[1], folder)
    return folder


def test_two_runs_choose_the_same_file(tight_run, outlier_checkpoint, labelled_images, calibration, tmp_path):
    """The FP32 .onnx and the .ort hold one graph for one runtime (the .ort without the x86 NCHWc
    layouts, a few percent slower): either their p50 intervals overlap and the rule picks the smaller
    file, or they do not and the faster one wins; both runs must land on the same file."""
    from alexnet_export.optimize import optimize

    folder = _copy_of(tight_run, tmp_path, "tie")
    runs = [optimize(outlier_checkpoint[0], labelled_images, folder, max_top1_drop=100, calibration=calibration,
                     candidates=("onnx:fp32", "ort:fp32"), bench_rounds=20, keep_all=True) for _ in range(2)]
    assert runs[0].chosen == runs[1].chosen, [run.report.decided_by for run in runs]
    for run in runs:
        rows = {row.id: row for row in run.report.candidates}
        if len(run.report.tie) == 2:  # the rule: the fewest bytes
            assert run.chosen.name == min(rows.values(), key=lambda row: row.bytes).file
            assert "a tie broken by the fewest bytes" in run.report.decided_by
        else:
            assert run.chosen.name == min(rows.values(), key=lambda row: row.p50_ms).file


def test_the_throughput_objective_times_every_batch_and_reports_the_chosen_one(tight_run, outlier_checkpoint,
                                                                             labelled_images, calibration, tmp_path):
    from alexnet_export.optimize import optimize

    folder = _copy_of(tight_run, tmp_path, "throughput")
    result = optimize(outlier_checkpoint[0], labelled_images, folder, max_top1_drop=100, calibration=calibration,
                      candidates=("onnx:fp32",), objective="throughput", batch_sizes=(4, 1), max_latency_ms=10_000,
                      bench_rounds=3, keep_all=True)
    report = json.loads((folder / "report.json").read_text())
    row = next(row for row in report["candidates"] if row["id"] == "onnx:fp32")
    assert [timing["batch"] for timing in row["by_batch"]] == [1, 4]
    for timing in row["by_batch"]:
        assert timing["p50_ms"] <= timing["p95_ms"]
        assert timing["images_per_s"] == pytest.approx(timing["batch"] * 1e3 / timing["p50_ms"])
    best = max(row["by_batch"], key=lambda timing: timing["images_per_s"])
    assert report["chosen_batch"] == result.report.chosen_batch
    assert report["chosen_batch"] == best["batch"] or len(report["tie"]) > 1
    assert report["settings"]["batches"] == [1, 4] and report["settings"]["max_latency_ms"] == 10_000


@pytest.mark.parametrize("options, match", [
    ({"batch_sizes": (1, 8)}, "batch_sizes applies to objective throughput"),
    ({"max_latency_ms": 5}, "max_latency_ms applies to objective throughput"),
    ({"objective": "throughput", "max_latency_ms": 0}, "max_latency_ms 0 is invalid"),
    ({"objective": "throughput", "batch_sizes": (0, 8)}, "batch_sizes 0 is invalid"),
    ({"objective": "throughput", "batch_size": 8}, "objective throughput times batch_sizes, not batch_size"),
])
def test_throughput_options_are_checked_before_anything_is_written(options, match, tmp_path, labelled_images):
    from alexnet_export.optimize import optimize

    with pytest.raises(ArgumentError, match=match):
        optimize(None, labelled_images, tmp_path / "out", max_top1_drop=1, **options)
    assert not (tmp_path / "out").exists()


def test_a_keep_float_search_with_nothing_within_the_budget_lists_its_best_gate_passing_file(
        tight_run, outlier_checkpoint, labelled_images, calibration, tmp_path):
    """Every set the search tries passes the INT8 gate here, and a budget that refuses them all
    (accept) leaves the best of them to be made and listed, outside the budget, with its top-1."""
    from alexnet_export.bench.accuracy import image_set
    from alexnet_export.exporter.pipeline import ModelSource
    from alexnet_export.models.spec import default_labels
    from alexnet_export.optimize import candidates as table
    from alexnet_export.optimize.making import make
    from alexnet_export.optimize.progress import MADE

    folder = _copy_of(tight_run, tmp_path, "best-try")
    (folder / table.KEEP_FLOAT_FILE).unlink(missing_ok=True)
    refused = []
    work = table.Work(folder, ModelSource(outlier_checkpoint[0]), calibration, 32, 2,
                      accept=lambda path: refused.append(path.name) or "outside a budget no file keeps")
    keep_float = next(c for c in table.CANDIDATES if c.id == table.KEEP_FLOAT)
    record, final = make(keep_float, work, image_set(labelled_images, default_labels(10)), "key", lambda event: None)
    assert record.status == MADE and final and len(refused) > 1  # the plain file and the tries were all refused
    assert record.float_layers and (folder / table.KEEP_FLOAT_FILE).is_file()
    assert record.accuracy.images > 0 and record.gates and "parity" in record.gates[0]["title"]
