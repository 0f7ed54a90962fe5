"""The benchmark harness on a tiny run: statistics, output formats, refusals."""

import json

import pytest
import torch

from alexnet_export.bench.harness import RESULT_FIELDS, Settings, run_benchmark
from alexnet_export.bench.report import format_table, plot, to_markdown, write_json
from alexnet_export.errors import ModelLoadError


@pytest.fixture(scope="module")
def result(small_onnx, small_model, tmp_path_factory):
    checkpoint = tmp_path_factory.mktemp("bench") / "small.pt"
    torch.save(small_model.state_dict(), checkpoint)
    settings = Settings(batch_sizes=(1, 2), threads=1, warmup=1, iterations=3)
    return run_benchmark([small_onnx, checkpoint], settings)


def test_every_model_and_batch_has_every_field(result):
    assert [(r["model"], r["batch"]) for r in result["results"]] == [
        ("small.onnx", 1), ("small.pt", 1), ("small.onnx", 2), ("small.pt", 2)]
    for row in result["results"]:
        assert set(RESULT_FIELDS) <= set(row)
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["images_per_s"] == pytest.approx(row["batch"] / row["p50_ms"] * 1e3)
        assert row["rounds"] == 3 and 0 < row["roofline_fraction"] < 5
    for model in result["models"]:
        assert model["cold_start_s"] > 0 and model["peak_rss_mb"] > 50 and model["file_mb"] > 100
    assert {m["device"] for m in result["models"]} == {"CPUExecutionProvider", "torch cpu"}
    assert [r["model"] for r in result["classify"]] == ["small.onnx", "small.pt"]
    assert result["roofline"]["matmul_gflops"] > 1 and result["roofline"]["gflop_per_image"] == 1.286
    machine = result["machine"]
    assert machine["threads"] == 1 and machine["cores"] >= 1 and "onnxruntime" in " ".join(machine["libraries"])
    assert result["settings"]["onnxruntime_spinning"] is False


def test_outputs(result, tmp_path):
    table = format_table(result)
    assert "p50 ms" in table and "small.onnx" in table and "roofline" in table and "cold start" in table
    markdown = to_markdown(result)
    assert markdown.count("| small.onnx |") == 4  # two batch rows, the model row, the classify row
    write_json(tmp_path / "out.json", result)
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(json.dumps(result))
    plot(tmp_path / "out.png", result)
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seconds_budget_runs_at_least_three_rounds(small_onnx):
    settings = Settings(batch_sizes=(1,), threads=1, warmup=0, iterations=None, seconds=0.1, cold_start=False)
    (row,) = run_benchmark([small_onnx], settings)["results"]
    assert row["rounds"] >= 3


def test_unknown_and_missing_files_are_refused_before_timing(tmp_path, small_onnx):
    (tmp_path / "model.tflite").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"cannot benchmark .*model.tflite: suffix '\.tflite'"):
        run_benchmark([small_onnx, tmp_path / "model.tflite"], Settings(iterations=1))
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
    assert both.returncode == 2 and "not both" in both.stderr
