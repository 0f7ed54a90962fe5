"""`alexnet-export ort`: ONNX Runtime's format for ONNX Runtime Mobile, verified against its .onnx."""

from __future__ import annotations

import numpy as np
import pytest

from alexnet_export.exporter.onnx.ort_format import config_path
from alexnet_export.exporter.pipeline import export_ort_file
from alexnet_export.runtimes import open_runtime
from alexnet_export.runtimes.onnx.reader import read_graph_facts
from alexnet_export.runtimes.table import ORT_FORMAT, backend_for
from alexnet_export.runtimes.verification.samples import synthetic_images


@pytest.fixture(scope="module")
def ort_files(tmp_path_factory, small_onnx, precision_onnx, int8_cpu_onnx, pixel_onnx):
    """Each kind of ONNX file the toolkit writes, converted: {precision word: OrtFile}."""
    folder = tmp_path_factory.mktemp("ort")
    sources = {"fp32": small_onnx, "int8-cpu": int8_cpu_onnx,
               "int8-tensorrt": precision_onnx["int8"], "uint8": pixel_onnx}
    return {word: export_ort_file(source, folder / f"{word}.ort") for word, source in sources.items()}, sources


@pytest.mark.parametrize("word", ["fp32", "int8-cpu", "int8-tensorrt", "uint8"])
def test_each_file_converts_and_answers_like_its_onnx(ort_files, word):
    converted, sources = ort_files
    result = converted[word]
    assert result.path.is_file() and result.config.is_file() and result.config == config_path(result.path)
    assert result.parity.max_abs <= 1e-4 and result.parity.min_cosine >= 0.9999
    original, ort_file = open_runtime(sources[word]), open_runtime(result.path)
    assert backend_for(result.path) is ORT_FORMAT
    # The precision is read from the .ort's own graph, as for a .onnx.
    assert ort_file.precision == original.precision == result.precision
    assert ort_file.metadata == original.metadata
    images = synthetic_images(3, seed=5)
    assert ort_file.classify(images, top_k=3) == original.classify(images, top_k=3) or np.allclose(
        [p for row in ort_file.classify(images, top_k=3) for _, p in row],
        [p for row in original.classify(images, top_k=3) for _, p in row], atol=1e-6)


def test_an_fp16_file_is_refused_before_any_work(cli, precision_onnx, tmp_path, one_line_error):
    result = cli("ort", precision_onnx["fp16"], "-o", tmp_path / "fp16.ort")
    one_line_error(result, r"small\.fp16\.onnx is FP16, which ONNX Runtime's CPU optimizer folds back to FP32"
                           r" weights .*; expected the FP32 or an INT8 file$", code=2)
    assert list(tmp_path.iterdir()) == []


def test_config_lists_the_operators_a_reduced_build_needs(ort_files):
    converted, _ = ort_files
    lines = [line for line in converted["fp32"].config.read_text().splitlines() if not line.startswith("#")]
    operators = {op for line in lines for op in line.split(";")[2].split(",")}
    assert {"LRN", "MaxPool", "Gemm"} <= operators
    assert "fp32.ort" in converted["fp32"].config.read_text()  # the header names the file users get
    int8_lines = converted["int8-cpu"].config.read_text()
    assert "QLinearConv" in int8_lines or "ConvInteger" in int8_lines or "QuantizeLinear" in int8_lines


def test_ort_graph_facts_are_read_without_onnx(ort_files):
    converted, _ = ort_files
    facts = read_graph_facts(converted["int8-cpu"].path)
    assert facts.precision == "int8-cpu" and "alexnet_export.labels" in facts.metadata_props


def test_cli_converts_beside_the_source_and_predicts(cli, small_onnx, tmp_path, photos):
    source = tmp_path / "alexnet.onnx"
    source.symlink_to(small_onnx)
    result = cli("ort", source)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and (tmp_path / "alexnet.ort").is_file()
    assert (tmp_path / "alexnet.required_operators.config").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alexnet.onnx", "alexnet.ort",
                                                         "alexnet.required_operators.config"]
    predicted = cli("predict", tmp_path / "alexnet.ort", photos[0], "--top-k", "1")
    assert predicted.returncode == 0 and predicted.stdout == cli("predict", source, photos[0], "--top-k", "1").stdout


def test_bad_arguments_are_one_line_errors_and_write_nothing(cli, small_onnx, tmp_path, one_line_error):
    one_line_error(cli("ort", tmp_path / "missing.onnx"), r"missing\.onnx does not exist.*expected a \.onnx", code=2)
    one_line_error(cli("ort", small_onnx, "-o", tmp_path / "model.onnx"),
                   r"an ONNX Runtime format model is a \.ort file; got model\.onnx \(--output\)$", code=2)
    not_onnx = tmp_path / "photo.jpg"
    not_onnx.write_bytes(b"\xff\xd8")
    one_line_error(cli("ort", not_onnx), r"photo\.jpg is not an ONNX file", code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]


def test_a_failed_conversion_keeps_the_good_files(cli, small_onnx, tmp_path, one_line_error):
    good = tmp_path / "alexnet.ort"
    assert cli("ort", small_onnx, "-o", good).returncode == 0
    before = good.read_bytes(), config_path(good).read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(small_onnx.read_bytes()[:1000])
    result = cli("ort", broken, "-o", good)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (good.read_bytes(), config_path(good).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alexnet.ort", "alexnet.required_operators.config",
                                                         "broken.onnx"]
