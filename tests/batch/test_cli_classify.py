"""`alexnet-export classify` as users run it: the summary, one-line errors with nothing written,
and Ctrl-C in the middle of a run, then the same command again."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess

import pytest


def test_help_teaches_with_examples(cli):
    result = cli("classify", "--help")
    assert result.returncode == 0 and "Examples:" in result.stdout
    assert "alexnet-export classify alexnet.onnx photos/ -o results.parquet" in result.stdout
    text = " ".join(result.stdout.split())
    assert "run the same command again" in text
    # what -o makes, said plainly: the .jsonl is that one file, the .parquet a folder (issue 35 item 7)
    assert "NAME.jsonl is that one JSON Lines file" in text and "NAME.parquet is a FOLDER of Parquet parts" in text
    assert "-o results.jsonl writes that one file. -o results.parquet makes a FOLDER named results.parquet" in text


def test_a_run_prints_its_progress_and_summary(cli, small_onnx, collection, tmp_path):
    output = tmp_path / "results.jsonl"
    result = cli("classify", small_onnx, collection.root, "-o", output, "--top-k", "2", "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{output}: {len(collection.good)} classified, {len(collection.bad)} errors, 0 skipped")
    assert "images/s (fp32, model sha256 " in summary
    assert "classifying: 17/17 images, " in result.stderr and "images/s" in result.stderr
    assert "first error: " in result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]  # -o results.jsonl: that one file
    assert len(rows) == 17 and all(len(row["labels"]) == 2 for row in rows if row["error"] is None)


def test_a_jsonl_output_is_one_file_that_a_rerun_finishes(cli, one_line_error, small_onnx, collection, tmp_path):
    """A run killed while appending leaves a cut-off last line: the same command cuts it off and redoes
    that image; a folder given as the .jsonl is refused in one line, with nothing written."""
    output = tmp_path / "results.jsonl"
    first = cli("classify", small_onnx, *collection.good[:3], "-o", output, "--rows-per-part", "2")
    assert first.returncode == 0, first.stderr
    whole = output.read_text()
    assert output.is_file() and len(whole.splitlines()) == 3
    cut = whole.splitlines(keepends=True)
    output.write_text("".join(cut[:2]) + cut[2][:40])  # what a kill in the middle of the last append leaves
    again = cli("classify", small_onnx, *collection.good[:4], "-o", output)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith(f"{output}: 2 classified, 0 errors, 2 skipped")
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(row["path"] for row in rows) == sorted(map(str, collection.good[:4]))
    (tmp_path / "folder.jsonl").mkdir()
    refused = cli("classify", small_onnx, collection.good[0], "-o", tmp_path / "folder.jsonl")
    one_line_error(refused, r"folder.jsonl is a folder; classify writes one JSON Lines file there .* choose a file name"
                            r" \(--output\)$", code=2)
    assert list((tmp_path / "folder.jsonl").iterdir()) == []


@pytest.mark.parametrize("arguments, pattern", [
    (["{model}", "{empty}", "-o", "{out}/r.parquet"], r"no images found in .*empty"),
    (["{out}/missing.onnx", "{images}", "-o", "{out}/r.parquet"], r"model .*missing.onnx does not exist"),
    (["{model}", "{images}", "-o", "{out}/r.json"], r"suffix '.json'; expected .parquet .* \(--output\)$"),
    (["{model}", "{images}", "-o", "{out}/r.parquet", "--top-k", "0"], r"top_k is 0; .* \(--top-k\)$"),
    (["{model}", "{out}/typo.jpg", "-o", "{out}/r.parquet"], r"input .*typo.jpg does not exist"),
])
def test_bad_input_is_one_line_and_no_output(cli, one_line_error, small_onnx, collection, tmp_path, arguments,
                                             pattern):
    out, empty = tmp_path / "out", tmp_path / "empty"
    out.mkdir(), empty.mkdir()
    values = dict(model=small_onnx, empty=empty, out=out, images=collection.root)
    result = cli("classify", *(argument.format(**values) for argument in arguments))
    one_line_error(result, pattern, code=2)
    assert list(out.iterdir()) == []


def _interruptible() -> None:
    """In the child before exec: SIGINT back to its default. An ignored SIGINT is inherited across
    exec, and Python then keeps it ignored; something earlier in a full test session can leave it
    ignored in this process, and the child would finish instead of stopping."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_whole_parts_and_the_same_command_finishes(console, small_onnx, many_images, tmp_path):
    output = tmp_path / "results.parquet"
    command = [console, "classify", str(small_onnx), str(many_images), "-o", str(output),
               "--batch-size", "1", "--rows-per-part", "4"]
    # Interrupt once the progress line says images are done (parts of 4 rows are written as they
    # fill), read from the pipe as it comes. In some full-suite runs the whole 2-second run ended
    # before the test process acted (a polling loop, three times in a row): one image a call makes
    # the run longer, and a run that ended first is started again.
    for _ in range(3):
        shutil.rmtree(output, ignore_errors=True)
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_interruptible)
        seen = []
        for line in run.stderr:
            seen.append(line)
            if line.startswith("classifying: ") and not line.startswith("classifying: 0/"):
                run.send_signal(signal.SIGINT)
                break
        _, rest = run.communicate(timeout=60)
        stderr = "".join(seen) + rest
        if run.returncode != 0:
            break
    assert run.returncode == 130, stderr
    kept = int(stderr.split(" holds ")[1].split(" results")[0])
    assert 4 <= kept < 120 and kept % 4 == 0  # whole parts only
    assert "Run the same command again to finish." in stderr

    import pyarrow.parquet as pq

    assert pq.read_table(output).num_rows == kept
    finish = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert f"{120 - kept} classified, 0 errors, {kept} skipped" in finish.stdout
    paths = pq.read_table(output).column("path").to_pylist()
    assert len(paths) == len(set(paths)) == 120
