"""The benchmark harness on a tiny run: statistics, output formats, refusals."""

import json

import pytest
import torch

from alexnet_export.bench.harness import RESULT_FIELDS, Settings, run_benchmark
from alexnet_export.bench.report import format_table, plot, to_markdown, write_json
from alexnet_export.errors import ModelLoadError
from alexnet_export.events import Advance, Step


@pytest.fixture(scope="module")
def events():
    return []


@pytest.fixture(scope="module")
def result(small_onnx, small_model, tmp_path_factory, events):
    checkpoint = tmp_path_factory.mktemp("bench") / "small.pt"
    torch.save(small_model.state_dict(), checkpoint)
    settings = Settings(batch_sizes=(1, 2), threads=1, warmup=1, iterations=3)
    return run_benchmark([small_onnx, checkpoint], settings, on_event=events.append)


def test_every_model_and_batch_has_every_field(result):
    assert [(r.model, r.batch) for r in result.results] == [
        ("small.onnx", 1), ("small.pt", 1), ("small.onnx", 2), ("small.pt", 2)]
    for row in result.results:
        assert 0 < row.p50_ms <= row.p90_ms <= row.p99_ms
        assert row.images_per_s == pytest.approx(row.batch / row.p50_ms * 1e3)
        assert row.precision == "fp32" and row.rounds == 3 and 0 < row.roofline_fraction < 5
        assert row.p50_ci_ms[0] <= row.p50_ms <= row.p50_ci_ms[1] and row.stopped == "3 rounds asked"
        assert row.roofline_basis == "cpu fp32"  # CPU rows: the CPU's FP32 rate, and no device split
        assert (row.device_ms, row.h2d_ms, row.compute_ms, row.d2h_ms) == (None, None, None, None)
    for model in result.models:
        assert model.cold.seconds > 0 and model.cold.peak_rss_mb > 50 and model.file_mb > 100
    assert [(m.precision, m.device) for m in result.models] == [("fp32", "CPUExecutionProvider"),
                                                                ("fp32", "torch eager cpu")]
    assert [r.model for r in result.classify] == ["small.onnx", "small.pt"]
    assert result.roofline.matmul_gflops > 1 and result.roofline.gflop_per_image == 1.286
    machine = result.machine
    assert machine["threads"] == 1 and machine["cores"] >= 1 and "onnxruntime" in " ".join(machine["libraries"])


def test_json_keeps_its_keys(result):
    data = result.to_dict()
    assert list(data) == ["machine", "settings", "roofline", "models", "results", "classify", "gates",
                          "recommendation"]
    assert [(g["model"], g["passed"], g["detail"]) for g in data["gates"]] == [
        ("small.onnx", True, "reference"), ("small.pt", True, "fp32 gate passed")]
    assert [(p["batch"], p["precision"]) for p in data["recommendation"]] == [(1, "fp32"), (2, "fp32")]
    assert list(data["machine"]) == ["cpu", "cores", "cpu_flags", "threads", "platform", "python", "libraries", "gpu"]
    assert data["machine"]["gpu"] is None and data["roofline"]["device_gflops"] == {}  # no CUDA here
    assert data["settings"] == {"batch_sizes": [1, 2], "threads": 1, "warmup": 1, "iterations": 3, "seconds": None,
                                "settle": None, "classify": True,
                                "onnxruntime_spinning": False}
    assert list(data["roofline"]) == ["matmul_gflops", "gflop_per_image", "device_gflops", "images_per_s"]
    assert data["roofline"]["images_per_s"] == pytest.approx(data["roofline"]["matmul_gflops"] / 1.286)
    assert [list(m) for m in data["models"]] == [
        ["model", "path", "precision", "device", "file_mb", "cold_start_s", "peak_rss_mb"]] * 2
    assert [tuple(r) for r in data["results"]] == [RESULT_FIELDS] * 4
    assert RESULT_FIELDS == ("model", "precision", "device", "file_mb", "batch", "p50_ms", "p90_ms", "p99_ms",
                             "images_per_s", "roofline_fraction", "rounds", "roofline_basis", "device_ms", "h2d_ms",
                             "compute_ms", "d2h_ms", "p50_ci_ms", "stopped", "p95_ms")
    assert [list(r) for r in data["classify"]] == [["model", "precision", "p50_ms", "p90_ms"]] * 2


def test_progress_is_typed_events(events, result):
    steps = [e.text for e in events if isinstance(e, Step)]
    assert steps[0].startswith("measuring the FP32 matrix-multiply rate") and steps[-1] == "cold start of small.pt in a fresh process"
    rounds = [(e.task, e.done, e.total) for e in events if isinstance(e, Advance)]
    assert rounds == [(task, done, 3) for task in ("batch 1", "batch 2", "classify") for done in (1, 2, 3)]


def test_outputs(result, tmp_path):
    table = format_table(result)
    assert "p50 ms" in table and "small.onnx" in table and "roofline" in table and "cold start" in table
    assert "torch eager cpu" in table and "on this machine, the fastest that passes its precision's gate:" in table
    markdown = to_markdown(result)
    assert markdown.count("| small.onnx |") == 4  # two batch rows, the model row, the classify row
    write_json(tmp_path / "out.json", result)
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(json.dumps(result.to_dict()))
    plot(tmp_path / "out.png", result)
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seconds_budget_runs_at_least_three_rounds(small_onnx):
    settings = Settings(batch_sizes=(1,), threads=1, warmup=0, iterations=None, seconds=0.1, cold_start=False)
    events = []
    (row,) = run_benchmark([small_onnx], settings, on_event=events.append).results
    assert row.rounds >= 3
    assert {e.total for e in events if isinstance(e, Advance)} == {None}  # open-ended: timed rounds


def test_settle_times_until_the_medians_are_stable(small_onnx):
    from alexnet_export.runtimes.verification.timing import Settle

    rule = Settle(window=2, windows=2, percent=1000, max_rounds=50)  # any two windows agree: stable at 4 rounds
    settings = Settings(batch_sizes=(1,), threads=1, warmup=0, iterations=None, cold_start=False, settle=rule,
                        classify=False)
    result = run_benchmark([small_onnx], settings)
    (row,) = result.results
    assert (row.rounds, row.stopped) == (4, "stable") and result.classify == []
    assert result.to_dict()["settings"]["settle"]["window"] == 2


def test_unknown_and_missing_files_are_refused_before_timing(tmp_path, small_onnx):
    (tmp_path / "model.mlmodel").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"don't know how to run .*model.mlmodel: suffix '\.mlmodel'"):
        run_benchmark([small_onnx, tmp_path / "model.mlmodel"], Settings(iterations=1))
    with pytest.raises(ModelLoadError, match="does not exist"):
        run_benchmark([tmp_path / "absent.onnx"], Settings(iterations=1))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="either iterations or seconds"):
        Settings(iterations=None, seconds=None)
    with pytest.raises(ValueError, match="positive"):
        Settings(batch_sizes=(0,))


def test_cli_bench(cli, small_onnx, tmp_path):
    result = cli("bench", small_onnx, "--batch-sizes", "1", "--iterations", "2", "--warmup", "0",
                 "--threads", "1", "--no-cold-start", "--json", tmp_path / "b.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "small.onnx" in result.stdout and json.loads((tmp_path / "b.json").read_text())["results"]
    bad = cli("bench", small_onnx, "--batch-sizes", "1,x", cwd=tmp_path)
    assert bad.returncode == 2 and "comma-separated list of positive integers" in bad.stderr
    both = cli("bench", small_onnx, "--iterations", "2", "--seconds", "1", cwd=tmp_path)
    assert both.returncode == 2 and "not several" in both.stderr
    both = cli("bench", small_onnx, "--iterations", "2", "--until-stable", cwd=tmp_path)
    assert both.returncode == 2 and "not several" in both.stderr


def test_cli_bench_until_stable_times_by_the_settling_rule(cli, small_onnx, tmp_path):
    result = cli("bench", small_onnx, "--batch-sizes", "1", "--until-stable", "--warmup", "1", "--threads", "1",
                 "--no-cold-start", "--json", tmp_path / "b.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    (row,) = data["results"]
    assert data["settings"]["settle"]["window"] == 10 and data["settings"]["iterations"] is None
    assert row["stopped"] == "stable" or row["stopped"].startswith("maximum")
    assert row["rounds"] >= 30 and (row["rounds"] % 10 == 0 or row["stopped"] != "stable")
    low, high = row["p50_ci_ms"]
    assert low <= row["p50_ms"] <= high and f"[{low:.2f}, {high:.2f}]" in result.stdout
