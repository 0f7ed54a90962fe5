"""classify_collection end to end: Parquet and JSON Lines, every path once, errors counted, and
resuming after a crash with a stale temporary part left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alexnet_export.batch import Classifier, classify_collection
from alexnet_export.batch.schema import NAMES, arrow_schema
from alexnet_export.errors import ArgumentError
from alexnet_export.events import Advance
from alexnet_export.hashing import file_sha256


def read_rows(output: Path) -> list[dict]:
    """Every row of an output, as pyarrow (a Parquet dataset folder) or a line reader (the .jsonl file) sees it."""
    if output.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(output)
        assert table.schema == arrow_schema()
        return table.to_pylist()
    return [json.loads(line) for line in output.read_text().splitlines()]


def listing(output: Path) -> dict[str, bytes]:
    """What an output holds: its parts by name, or the one file's bytes."""
    return {p.name: p.read_bytes() for p in sorted(output.iterdir())} if output.is_dir() else {"": output.read_bytes()}


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_every_image_once_with_results_or_errors(small_onnx, collection, tmp_path, suffix):
    output = tmp_path / f"results{suffix}"
    events = []
    result = classify_collection(small_onnx, [collection.root], output, top_k=3, batch_size=4, rows_per_part=6,
                                 on_event=events.append)
    rows = read_rows(output)
    assert sorted(row["path"] for row in rows) == sorted(map(str, collection.all))  # each exactly once
    assert all(list(row) == list(NAMES) for row in rows)
    failed = {row["path"] for row in rows if row["error"] is not None}
    assert failed == set(map(str, collection.bad))
    assert all(row["labels"] is None and row["probabilities"] is None for row in rows if row["error"])
    expected = Classifier(small_onnx, top_k=3)({"path": [str(p) for p in collection.good]})
    by_path = {row["path"]: row for row in rows}
    for path, labels, probabilities in zip(expected["path"], expected["labels"], expected["probabilities"]):
        assert by_path[path]["labels"] == labels
        np.testing.assert_allclose(by_path[path]["probabilities"], probabilities, rtol=1e-5)
    assert {row["model_sha256"] for row in rows} == {file_sha256(small_onnx)}
    assert (result.classified, result.errors, result.skipped) == (len(collection.good), len(collection.bad), 0)
    assert result.parts == 3  # 17 rows, 6 a part: 3 part files, or 3 appends to the one .jsonl
    assert len(list(output.glob(f"part-*{suffix}"))) == 3 if suffix == ".parquet" else output.is_file()
    assert result.first_error is not None and result.images_per_second > 0
    progress = [e for e in events if isinstance(e, Advance)]
    assert [e.done for e in progress] == [0, 4, 8, 12, 16, 17] and {e.unit for e in progress} == {"images"}


class Crash(Exception):
    pass


def crash_after(images: int):
    def listener(event):
        if isinstance(event, Advance) and event.done >= images:
            raise Crash(f"simulated crash after {event.done} images")
    return listener


def test_a_crashed_run_resumes_without_duplicates(small_onnx, many_images, tmp_path):
    output = tmp_path / "results.parquet"
    with pytest.raises(Crash):
        classify_collection(small_onnx, many_images, output, batch_size=8, rows_per_part=8, on_event=crash_after(24))
    assert sorted(p.name for p in output.iterdir()) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    stale = output / ".part-00003.parquet.k1llED.partial"  # what a SIGKILL during a write leaves
    stale.write_bytes(b"PAR1 half a part")
    result = classify_collection(small_onnx, [many_images], output, batch_size=8, rows_per_part=32)
    rows = read_rows(output)
    assert len(rows) == len({row["path"] for row in rows}) == 120
    assert (result.skipped, result.classified, result.errors) == (24, 96, 0)
    assert not stale.exists()
    assert sorted(p.name for p in output.iterdir())[3:] == [f"part-0000{i}.parquet" for i in range(3, 6)]
    again = classify_collection(small_onnx, [many_images], output)  # nothing left: nothing written
    assert (again.skipped, again.classified, again.parts) == (120, 0, 0)
    assert len(read_rows(output)) == 120


def test_an_output_of_another_model_is_refused_unless_allowed(small_onnx, pixel_onnx, collection, tmp_path):
    output = tmp_path / "results.jsonl"
    classify_collection(small_onnx, collection.good[:5], output)
    before = listing(output)
    with pytest.raises(ArgumentError, match=r"holds 5 results of another model file .*; small.uint8.onnx is") as caught:
        classify_collection(pixel_onnx, collection.good, output)
    assert caught.value.argument == "allow_model_change"
    assert listing(output) == before
    result = classify_collection(pixel_onnx, collection.good, output, allow_model_change=True)
    assert (result.skipped, result.classified) == (5, len(collection.good) - 5)
    models = [row["model_sha256"] for row in read_rows(output)]
    assert models.count(file_sha256(small_onnx)) == 5 and models.count(file_sha256(pixel_onnx)) == len(models) - 5


@pytest.mark.parametrize("prepare, arguments, message, argument", [
    (lambda out: None, dict(output_name="results.csv"), r"suffix '.csv'; expected .parquet .* or .jsonl", "output"),
    (lambda out: out.write_text("x"), {}, r"is a file; classify writes a folder of Parquet parts", "output"),
    (lambda out: (out.mkdir(), (out / "notes.md").write_text("x")), {}, r"holds notes.md, which is not a Parquet part",
     "output"),
    (lambda out: None, dict(model="missing.onnx"), r"model .*missing.onnx does not exist", "model"),
    (lambda out: None, dict(top_k=11), r"top_k is 11; small.onnx has 10 classes", "top_k"),
    (lambda out: None, dict(batch_size=0), r"batch_size is 0; expected a positive integer", "batch_size"),
    (lambda out: None, dict(inputs="empty"), r"no images found in .*empty", "inputs"),
])
def test_bad_arguments_are_one_error_and_no_output(small_onnx, collection, tmp_path, prepare, arguments, message,
                                                   argument):
    output = tmp_path / arguments.pop("output_name", "results.parquet")
    prepare(output)
    before = sorted(tmp_path.rglob("*"))
    (tmp_path / "empty").mkdir()
    model = tmp_path / arguments.pop("model") if "model" in arguments else small_onnx
    inputs = tmp_path / arguments.pop("inputs") if "inputs" in arguments else collection.root
    with pytest.raises(ArgumentError, match=message) as caught:
        classify_collection(model, inputs, output, **arguments)
    assert caught.value.argument == argument
    assert sorted(p for p in tmp_path.rglob("*") if p.name != "empty") == before


RUN_LIGHT = """
import importlib.abc, json, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "onnx", "onnxscript", "safetensors", "pyarrow"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
from alexnet_export.cli.main import main
model, images, folder = sys.argv[1:]
main(["classify", model, images, "-o", folder + "/out.jsonl"], standalone_mode=False)
try:
    main(["classify", model, images, "-o", folder + "/out.parquet"], standalone_mode=False)
    refusal = None
except Exception as exc:
    refusal = str(exc)
print(json.dumps({"refusal": refusal, "heavy": [m for m in ("torch", "onnx", "pyarrow") if m in sys.modules]}))
"""


def test_the_light_install_runs_classify_to_json_lines(small_onnx, collection, tmp_path):
    """Without torch, onnx or pyarrow: JSON Lines works, Parquet is refused in one line saying how to get it."""
    run = subprocess.run([sys.executable, "-c", RUN_LIGHT, small_onnx, collection.root / "photos", tmp_path],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["heavy"] == []
    assert out["refusal"].startswith("writing Parquet needs pyarrow, which is not installed here: pip install 'alexnet-export[batch]'")
    assert len(read_rows(tmp_path / "out.jsonl")) == 4
    assert not (tmp_path / "out.parquet").exists()
