"""The README's Quickstart, run as written: every command line of its code block, in order, in one
folder, with the names it uses (checkpoint.pt, classes.txt, photos/, val/, cat.jpg, dog.png) made
there from a small trained-looking checkpoint and the photos the test set-up has. Only options that
shorten the timing are added (bench: one batch size, 3 rounds; optimize: one INT8 candidate, 3
rounds), so the front page cannot drift from the tool without this test failing."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
CLASSES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "clock", "horse", "moon", "page", "text")
SHORTER = {"bench": ["--batch-sizes", "1", "--iterations", "3", "--no-cold-start"],
           "optimize": ["--candidates", "onnx:int8-cpu", "--bench-rounds", "3"]}


def quickstart_lines() -> list[list[str]]:
    """The Quickstart block's commands, continuation lines joined, comments left out."""
    section = README.read_text().split("## Quickstart", 1)[1]
    block = re.search(r"```\n(.*?)```", section, flags=re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory, small_model, calib_dir, photos, console):
    """The folder with the README's inputs, and each command's result, run in order."""
    import torch

    folder = tmp_path_factory.mktemp("quickstart")
    torch.save(small_model.state_dict(), folder / "checkpoint.pt")
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    shutil.copytree(calib_dir, folder / "photos")
    shutil.copy(next(p for p in photos if p.suffix == ".jpg"), folder / "cat.jpg")
    shutil.copy(next(p for p in photos if p.suffix == ".png"), folder / "dog.png")
    for index, image in enumerate(sorted((folder / "photos").rglob("*.jpg"))[:40]):  # val/<label>/<image>
        label = folder / "val" / CLASSES[index % len(CLASSES)]
        label.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, label / image.name)
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}  # the default calibration cache, not the user's
    results = []
    for words in quickstart_lines():
        assert words[0] == "alexnet-export", words
        extra = SHORTER.get(words[1], [])
        results.append((words, subprocess.run([console, *words[1:], *extra], cwd=folder, env=env,
                                              capture_output=True, text=True, timeout=600)))
    return folder, results


def test_the_quickstart_has_the_commands_the_readme_promises():
    commands = [words[1] for words in quickstart_lines()]
    assert commands == ["onnx", "onnx", "predict", "predict", "bench", "optimize"]
    for words in quickstart_lines():  # every line that makes a file or names classes passes the labels
        if words[1] in ("onnx", "optimize") or "checkpoint.pt" in words[2:3]:
            assert "--labels" in words, words


def test_every_quickstart_line_runs_as_written(quickstart):
    _, results = quickstart
    for words, result in results:
        assert result.returncode == 0, f"{shlex.join(words)}\n{result.stderr}"
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr


def test_the_labels_follow_the_model_through_every_file(quickstart):
    from alexnet_export.runtimes.registry import open_runtime

    folder, results = quickstart
    for name in ("alexnet.onnx", "alexnet.int8-cpu.onnx"):
        assert open_runtime(folder / name).metadata.labels == CLASSES, name
    by_line = {shlex.join(words): result for words, result in results}
    predicted = next(result for line, result in by_line.items() if line.startswith("alexnet-export predict checkpoint"))
    [answer] = json.loads(predicted.stdout)
    assert answer["predictions"][0]["label"] in CLASSES
    onnx = next(result for line, result in by_line.items() if line.startswith("alexnet-export predict alexnet.onnx"))
    assert any(label in onnx.stdout for label in CLASSES) and "class_" not in onnx.stdout


def test_optimize_wrote_its_report_and_kept_one_file(quickstart):
    folder, _ = quickstart
    report = json.loads((folder / "best" / "report.json").read_text())
    assert report["chosen"] and (folder / report["chosen"]).is_file()  # OUTDIR/<file>, OUTDIR as given
    assert {row["id"] for row in report["candidates"]} >= {"onnx:fp32", "onnx:int8-cpu"}
