"""The installed console script, run in a subprocess as a user would."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np

import onnx
import pytest
import torch

from click.testing import CliRunner

from alexnet_export import __version__
from alexnet_export.cli.main import main
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime
from alexnet_export.runtimes.preprocess import preprocess_batch

ROOT = Path(__file__).resolve().parents[2]


def test_version_and_help_teach(cli):
    assert cli("--version").stdout.strip() == f"alexnet-export, version {__version__}"
    for command in ("onnx", "predict"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "Examples:" in result.stdout and f"alexnet-export {command}" in result.stdout


def test_default_export_works_and_warns(cli_default_export):
    folder, result = cli_default_export
    assert result.returncode == 0, result.stderr
    assert "random weights (seed 0); its predictions are meaningless" in result.stderr
    # the README promises a warning: a warning line it is, and it is the only one about labels (1000 classes)
    assert result.stderr.splitlines()[1] == ("warning: no weights given: this AlexNet has random weights (seed 0); its"
                                             " predictions are meaningless.")
    assert "placeholder labels" not in result.stderr
    assert "top-1 agreement" in result.stdout and "wrote alexnet.onnx" in result.stdout
    assert [p.name for p in folder.iterdir()] == ["alexnet.onnx"]
    proto = onnx.load(str(folder / "alexnet.onnx"))
    assert proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 1000
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["alexnet_export.labels"])[0] == "tench"
    assert props["alexnet_export.source_weights"] == "random init, seed 0"


def test_predict_prints_labels_and_json(cli, cli_default_export, photos):
    folder, _ = cli_default_export
    text = cli("predict", folder / "alexnet.onnx", photos[0], photos[1], "--top-k", "2")
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("%") == 4 and str(photos[1]) in text.stdout
    as_json = cli("predict", folder / "alexnet.onnx", photos[0], "--top-k", "3", "--json")
    (entry,) = json.loads(as_json.stdout)
    assert entry["image"] == str(photos[0]) and len(entry["predictions"]) == 3
    expected = OnnxRuntime(folder / "alexnet.onnx").classify(photos[0], top_k=3)[0]
    assert [(p["label"], p["probability"]) for p in entry["predictions"]] == [(l, pytest.approx(p)) for l, p in expected]


def test_export_from_checkpoint_matches_eager(cli, tmp_path, real_images, one_line_error):
    model = seeded_alexnet(7, seed=21)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "ckpt.pth")
    (tmp_path / "labels.txt").write_text("\n".join(f"animal {i}" for i in range(7)))
    result = cli("onnx", "--weights", "ckpt.pth", "--labels", "labels.txt", "-o", "out.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "meaningless" not in result.stderr
    runtime = OnnxRuntime(tmp_path / "out.onnx")
    assert runtime.metadata.labels[3] == "animal 3" and runtime.metadata.source_weights.startswith("sha256:")
    batch = preprocess_batch(real_images[:5], runtime.metadata.preprocessing)
    expected = TorchRuntime(model).predict(batch)
    assert abs(runtime.predict(batch) - expected).max() <= 1e-4
    bad_image = cli("predict", tmp_path / "ckpt.pth", tmp_path / "labels.txt", cwd=tmp_path)
    one_line_error(bad_image, r"cannot read .*labels.txt as an image")


def test_predict_with_a_checkpoint_runs_eagerly(cli, tmp_path, photos):
    model = seeded_alexnet(1000, seed=4)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    result = cli("predict", tmp_path / "m.pt", photos[2], "--top-k", "1", "--json")
    assert result.returncode == 0, result.stderr
    ((prediction,),) = [entry["predictions"] for entry in json.loads(result.stdout)]
    (expected,) = TorchRuntime(model).classify(photos[2], top_k=1)[0]
    assert prediction["label"] == expected[0] and prediction["probability"] == pytest.approx(expected[1], rel=1e-5)


@pytest.mark.parametrize(
    "args, pattern, code",
    [  # a file missing or a name no command takes: usage (2); a file read and found to be junk: failure (1)
        (["onnx", "--weights", "absent.pt"], r"^Error: weights file absent.pt does not exist", 2),
        (["onnx", "--weights", "garbage.pt"],
         r"^Error: garbage.pt is not a PyTorch checkpoint \(torch.load: Unsupported", 1),
        (["onnx", "--weights", "garbage.txt"], r"^Error: .*expected one of \.pt, \.pth, \.safetensors \(--weights\)$",
         2),
        (["predict", "garbage.txt", "x.jpg"], r"^Error: don't know how to run garbage.txt", 2),
        (["predict", "garbage.onnx", "x.jpg"], r"^Error: ONNX Runtime cannot load garbage.onnx", 1),
    ],
)
def test_failures_are_one_line_and_write_nothing(cli, tmp_path, args, pattern, code, one_line_error):
    for name in ("garbage.pt", "garbage.txt", "garbage.onnx"):
        (tmp_path / name).write_bytes(b"\x80\x04garbage" * 20)
    before = sorted(p.name for p in tmp_path.iterdir())
    one_line_error(cli(*args, cwd=tmp_path), pattern, code=code)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["onnx", "--batch", "0"], r"'0' is neither 'dynamic' nor a positive integer"),
        (["onnx", "--opset", "12"], r"12 is not in the range 18<=x<=23"),
        (["onnx", "--num-classes", "0"], r"0 is not in the range x>=1"),
        (["predict", "m.onnx"], r"Missing argument 'IMAGES..."),
        (["nonsense"], r"No such command 'nonsense'"),
        # Checked by the library before any work; the CLI names the flag.
        (["onnx", "-o", "no/such/folder/m.onnx", "--num-classes", "2"],
         r"^Error: output folder no/such/folder does not exist; create it first \(--output\)$"),
        (["trt", "--onnx", "m.onnx", "--weights", "w.pt"], r"not both: the FP32 .onnx already holds the model \(--onnx\)$"),
    ],
)
def test_usage_errors_exit_2(cli, tmp_path, args, pattern, one_line_error):
    (tmp_path / "m.onnx").write_bytes(b"not read: the arguments are refused first")
    one_line_error(cli(*args, cwd=tmp_path), pattern, code=2)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_int8_needs_calibration_images(cli, tmp_path, one_line_error):
    one_line_error(cli("onnx", "--precision", "int8", cwd=tmp_path),
                    r"int8-cpu needs calibration images: a folder of 64 or more \(--calib-dir\)$", code=2)
    one_line_error(cli("trt", "--int8", cwd=tmp_path), r"int8-tensorrt needs calibration images.*\(--calib-dir\)$", code=2)
    one_line_error(cli("trt", "--min-batch", "8", "--opt-batch", "4", cwd=tmp_path), r"batch", code=2)
    one_line_error(cli("onnx", "--precision", "fp16", "--lrn", "pooled", cwd=tmp_path),
                    r"applies to FP32 only.*\(--lrn\)$", code=2)
    one_line_error(cli("onnx", "--precision", "fp16", "--keep-float", "conv4", cwd=tmp_path),
                    r"apply to INT8 files.*\(--keep-float\)$", code=2)
    assert list(tmp_path.iterdir()) == []


def test_cpu_int8_export(cli, tmp_path, calib_dir, calibration_cache):
    result = cli("onnx", "--num-classes", "10", "--precision", "int8", "--calib-dir", calib_dir,
                 "--calib-count", "64", "--cache-dir", calibration_cache, "-o", "m.int8.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "int8-cpu" in result.stdout and "held-out" in result.stdout and "calibrating (percentile):" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["m.int8.onnx"]  # the FP32 step leaves nothing
    assert OnnxRuntime(tmp_path / "m.int8.onnx").classify(np.zeros((50, 60, 3), np.uint8))
    again = cli("onnx", "--num-classes", "10", "--precision", "int8", "--calib-dir", calib_dir,
                "--calib-count", "64", "--cache-dir", calibration_cache, "-o", "m.int8.onnx", cwd=tmp_path)
    assert again.returncode == 0 and "reused from" in again.stderr and "calibrating (percentile):" not in again.stderr


@pytest.mark.skipif(any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")),
                    reason="an engine builder is installed here: tests/cli/test_tensorrt_cli.py builds engines")
@pytest.mark.parametrize("flag", ["--int8", "--fp16"])
def test_trt_without_tensorrt_leaves_the_verified_onnx(cli, tmp_path, calib_dir, calibration_cache, flag, one_line_error):
    (tmp_path / "out").mkdir()
    result = cli("trt", flag, "--num-classes", "10", "--calib-dir", calib_dir, "--calib-count", "64",
                 "--cache-dir", calibration_cache, "-o", "out/alexnet.engine", cwd=tmp_path)
    precision = {"--int8": "int8-tensorrt", "--fp16": "fp16"}[flag]
    precision_file = f"alexnet.{precision}.onnx"  # named by format: never confused with the CPU INT8 file
    one_line_error(result, rf"TensorRT is not installed.*pip install 'alexnet-export\[trt\]'.*"
                            rf"verified {precision} ONNX is at out/{precision_file}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["alexnet.onnx", precision_file])
    runtime = OnnxRuntime(tmp_path / "out" / precision_file)
    assert runtime.predict(np.zeros((2, 3, 224, 224), np.float32)).shape == (2, 10)
    assert "parity, FP32 reference vs" in result.stdout


def test_trt_from_an_existing_onnx_refuses_precision_files(cli, tmp_path, small_onnx, one_line_error):
    import shutil

    from alexnet_export.exporter.onnx.quantize import to_fp16

    shutil.copy(small_onnx, tmp_path / "model.onnx")
    to_fp16(tmp_path / "model.onnx", tmp_path / "model.fp16.onnx")
    result = cli("trt", "--fp16", "--onnx", "model.fp16.onnx", "-o", "x.engine", cwd=tmp_path)
    one_line_error(result, r"model.fp16.onnx is a fp16 file; give the FP32 export, the precision file is made from it \(--onnx\)$", code=2)


def test_help_keeps_its_examples_as_written(cli):
    """Click rewraps help paragraphs: the examples stay one command a line, continuation lines included."""
    top = cli("--help").stdout
    assert re.search(r"--calib-dir photos/ \\\n\s+--max-top1-drop 1 -o best/", top), top
    examples = [line for line in cli("predict", "--help").stdout.split("Examples:\n")[1].split("Options:")[0].splitlines()
                if line.strip()]
    assert examples and all(line.startswith("    alexnet-export ") for line in examples), examples
    assert any(" classify " in line for line in examples)


def test_every_commands_examples_keep_their_lines():
    """A help text whose \\b marker is escaped shows it and runs its examples into one paragraph."""
    for name in main.commands:
        text = CliRunner().invoke(main, [name, "--help"]).output
        assert "\\b" not in text, name
        if "Examples:" in text:
            block = text.split("Examples:\n", 1)[1].split("\n\n", 1)[0]
            assert block.splitlines()[0].lstrip().startswith(("alexnet-export ", "openssl ")), (name, block)
            assert len(block.splitlines()) > 1 or "alexnet-export" not in block.split("alexnet-export", 2)[-1], name


def _invoke(*arguments):
    """The command in this process (torch is imported once for the module, not per run)."""
    return CliRunner().invoke(main, [str(argument) for argument in arguments], catch_exceptions=False)


def _last_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory):
    """A 10-class checkpoint with no labels, its class names in a file, and a labels file of the wrong count."""
    folder = tmp_path_factory.mktemp("checkpoint-labels")
    torch.save(seeded_alexnet(10, seed=2).state_dict(), folder / "ckpt.pt")
    (folder / "classes.txt").write_text("".join(f"kind {i}\n" for i in range(10)))
    (folder / "three.txt").write_text("cat\ndog\nbird\n")
    return folder


def test_an_export_without_labels_says_so_in_one_warning_line(checkpoint_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("onnx", "--weights", checkpoint_folder / "ckpt.pt", "--no-verify", "-o", "m.onnx")
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if "labels" in line.replace(str(checkpoint_folder), "")]
    assert line == ("warning: ckpt.pt has 10 classes and carries no labels: the file will carry placeholder labels"
                    " class_0..class_9; give the real ones with --labels FILE (one name per line)")
    assert OnnxRuntime(tmp_path / "m.onnx").metadata.labels[9] == "class_9"


@pytest.mark.parametrize("command", [["predict", "{model}", "{photo}"], ["classify", "{model}", "{photo}", "-o", "r.jsonl"],
                                     ["serve", "{model}", "--port", "0"],
                                     ["verify", "{model}", "--images", "{photos}", "--reference", "{model}"]],
                         ids=lambda command: command[0])
def test_labels_for_a_checkpoint_in_every_command_that_runs_one(command, checkpoint_folder, small_onnx, photos,
                                                                  tmp_path, monkeypatch):
    """--labels is one option: for a checkpoint a count that does not fit is a usage error naming it, for a
    file that carries its labels it is refused; the same line and exit 2 in predict, classify, serve and verify."""
    monkeypatch.chdir(tmp_path)
    values = dict(photo=photos[0], photos=photos[0].parent)

    def run(model, labels):
        return _invoke(*(part.format(model=model, **values) for part in command), "--labels", labels)

    line = _last_error(run(checkpoint_folder / "ckpt.pt", checkpoint_folder / "three.txt"), 2)
    assert line == f"Error: labels file {checkpoint_folder / 'three.txt'} has 3 labels; expected 10, one per line (--labels)"
    line = _last_error(run(small_onnx, checkpoint_folder / "classes.txt"), 2)
    assert line == ("Error: Invalid value for --labels: only applies to a PyTorch checkpoint (.pt, .pth, .safetensors);"
                    " an ONNX model carries its labels")
    assert list(tmp_path.iterdir()) == []


def test_predict_names_a_checkpoints_classes_from_labels(checkpoint_folder, photos):
    result = _invoke("predict", checkpoint_folder / "ckpt.pt", photos[0], "--labels", checkpoint_folder / "classes.txt",
                     "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    expected = TorchRuntime(checkpoint_folder / "ckpt.pt").classify(photos[0], top_k=5)[0]
    assert [(p["label"], p["probability"]) for p in entry["predictions"]] == [
        (f"kind {label.removeprefix('class_')}", pytest.approx(p)) for label, p in expected]


def test_the_documented_model_trains_saves_and_carries_its_labels(photos, tmp_path, monkeypatch):
    """docs/cli.md's "The model, to train and save" as written: its checkpoint's class names reach predict and
    the exported files' metadata, and an explicit --labels wins over them."""
    text = (ROOT / "docs" / "cli.md").read_text()
    [snippet] = re.findall(r"```python\n(.*?)```", text[text.index("## The model, to train and save"):], re.S)[:1]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(snippet, "docs/cli.md", "exec"), namespace)
    assert namespace["loaded"].labels == ("cat", "dog", "bird")
    predicted = _invoke("predict", "checkpoint.pt", photos[0], "--json")  # top-k: 3, the model's classes
    assert predicted.exit_code == 0, predicted.output
    assert sorted(p["label"] for p in json.loads(predicted.stdout)[0]["predictions"]) == ["bird", "cat", "dog"]
    (tmp_path / "names.txt").write_text("one\ntwo\nthree\n")
    explicit = _invoke("predict", "checkpoint.pt", photos[0], "--json", "--labels", "names.txt")
    assert sorted(p["label"] for p in json.loads(explicit.stdout)[0]["predictions"]) == ["one", "three", "two"]
    from alexnet_export.events import Note
    from alexnet_export.exporter.pipeline import ModelSource, load_model

    notes = []  # what every export command loads: the metadata its files carry (the export itself is tested above)
    loaded = load_model(ModelSource(Path("checkpoint.pt")), on_event=notes.append)
    assert loaded.metadata.labels == ("cat", "dog", "bird")
    assert [note.text for note in notes if isinstance(note, Note)] == [
        "labels: the 3 class names checkpoint.pt carries ('classes')"]


@pytest.mark.parametrize("content, message", [
    (b"at.coffee is a word\n" + b"plain words\n" * 19, "is not a PyTorch checkpoint: it is a text file (it begins"
                                                       " 'at.coffee is a word')"),
    (b"\x80\x02.", "is not a PyTorch checkpoint (torch.load: IndexError: pop from empty list)"),
], ids=["text", "pop-from-empty-list"])
def test_a_file_that_is_no_checkpoint_is_one_line_in_every_command(content, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.pt").write_bytes(content)
    for command in (["onnx", "--weights", "garbage.pt", "-o", "m.onnx"], ["predict", "garbage.pt", "x.jpg"]):
        assert _last_error(_invoke(*command), 1) == f"Error: garbage.pt {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.pt"]
