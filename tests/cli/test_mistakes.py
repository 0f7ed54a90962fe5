"""No user mistake reaches "unexpected" (issue 35 item 3): every command is fed the mistakes users make
and those its --help documents as refused, and each is one line on stderr, "Error: ...", before any work,
with nothing written, and the exit code its kind has in every command (CODES).

The rule behind CODES: 2 (a usage mistake) for whatever the command line gets wrong, known before any work
from the arguments alone or from a file's name, a folder's listing or a count: a file or folder that is
missing, a name whose suffix no command takes, too few images, labels or a class count that contradicts
the checkpoint, a value out of range, options that do not go together. 1 (a failure) for a file that is
there under a right name but is not what it says when it is read (text or nothing in a .pt, another
network's state dict, text in an .onnx, a key that is no key) and for a model its signature check refuses.

The cases run in this process through the CLI's group, which turns errors into lines and exit codes as the
console script does (core/cli/main.py): each pays for its own check only, the first of a command also for the
command's imports, outside the timing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from alexnet_export.cli.main import main
from alexnet_export.exporter.commands import declared_commands
from alexnet_export.runtimes.signing import TRUSTED_KEY_ENV
from alexnet_export.runtimes.table import ENGINE, backend_named

CODES = {
    "file missing": 2,  # a checkpoint, model, image, labels file or key the arguments name
    "folder missing": 2,  # an image, calibration or signed-models folder
    "folder empty": 2,  # no image (or model) under it, or a folder where an image file goes
    "calibration folder too small": 2,
    "output folder missing": 2,
    "unknown suffix": 2,  # a model, checkpoint or output name no command of the kind takes
    "labels of the wrong count": 2,
    "class count contradicts the checkpoint": 2,
    "bad batch size": 2,
    "bad top-k": 2,
    "bad count": 2,  # threads, workers, rounds
    "refused by --help": 2,  # options the command's help says do not go together, or values it refuses
    "text named .pt": 1,
    "empty .pt": 1,
    "another network's state dict": 1,
    "not what its name says": 1,  # read, and something else: text named .onnx or .jpg, a labels file as a PEM key
    "signature refused": 1,  # --trusted-key: an unsigned model
}

EXPORTS = ["onnx", "trt", "openvino", *(spec.name for spec in declared_commands())]  # executorch, litert, ncnn
RUNS = {  # a command that runs MODEL, with the arguments it needs besides
    "predict": ["{model}", "{photo}"],
    "classify": ["{model}", "{photo}", "-o", "r.jsonl"],
    "verify": ["{model}", "--images", "{photos}", "--labels-from-folders"],
    "bench": ["{model}", "--iterations", "1", "--no-cold-start", "--batch-sizes", "1"],
    "serve": ["{model}", "--port", "0"],  # refused before it listens (the `listen` fixture fails otherwise)
}
OPTIMIZE = ["optimize", "--images", "{photos}", "--labels-from-folders", "--max-top1-drop", "1", "-o", "best"]


def _export_cases(command: str):
    int8 = ["--int8"] if command == "trt" else ["--precision", "int8"]
    suffix = backend_named(ENGINE.name if command == "trt" else command).suffixes[0]
    yield "file missing", ["--weights", "{absent}/model.pt"]
    yield "file missing", ["--labels", "{absent}/classes.txt"]
    yield "text named .pt", ["--weights", "{text_pt}"]
    yield "empty .pt", ["--weights", "{empty_pt}"]
    yield "another network's state dict", ["--weights", "{other_pt}"]
    yield "unknown suffix", ["--weights", "{model_txt}"]
    yield "unknown suffix", ["-o", "model.txt"]
    yield "labels of the wrong count", ["--weights", "{ckpt}", "--labels", "{three}"]
    yield "class count contradicts the checkpoint", ["--weights", "{ckpt}", "--num-classes", "5"]
    yield "calibration folder too small", [*int8, "--calib-dir", "{few}"]
    yield "calibration folder too small", [*int8, "--calib-dir", "{empty}"]
    yield "folder missing", [*int8, "--calib-dir", "{absent}"]
    yield "refused by --help", int8  # "needs --calib-dir"
    yield "output folder missing", ["-o", f"{{absent}}/model{suffix}"]


def _run_cases(command: str):
    def run(model, *more):
        return [model if part == "{model}" else part for part in RUNS[command]] + list(more)

    yield "file missing", run("{absent}/model.pt")
    yield "file missing", run("{absent}/model.onnx")
    yield "text named .pt", run("{text_pt}")
    yield "empty .pt", run("{empty_pt}")
    yield "another network's state dict", run("{other_pt}")
    yield "not what its name says", run("{text_onnx}")
    yield "unknown suffix", run("{model_txt}")
    if command != "bench":
        yield "labels of the wrong count", run("{ckpt}", "--labels", "{three}")
        yield "refused by --help", run("{fake_onnx}", "--labels", "{three}")  # an exported file carries its own


CLASSIFY = ["classify", "{ckpt}", "{photo}", "-o", "r.jsonl"]
VERIFY = ["verify", "{ckpt}", "--images", "{photos}"]
TRITON = ["triton", "--repo", "repo", "--onnx", "{fake_onnx}"]
CASES = [  # (kind, arguments); the command is the first
    *((kind, [command, *arguments]) for command in EXPORTS for kind, arguments in _export_cases(command)),
    ("bad batch size", ["onnx", "--batch", "0"]), ("bad batch size", ["onnx", "--batch", "x"]),
    ("refused by --help", ["onnx", "--keep-float", "conv4"]),  # INT8 only
    ("refused by --help", ["onnx", "--lrn", "pooled", "--precision", "fp16"]),  # FP32 only
    ("refused by --help", ["onnx", "--opset", "12"]),
    ("calibration folder too small", ["onnx", "--precision", "int8", "--calib-dir", "{few}", "--calib-count", "10"]),
    ("bad batch size", ["trt", "--max-batch", "0"]),
    ("bad batch size", ["trt", "--onnx", "{fake_onnx}", "--min-batch", "8", "--max-batch", "4"]),
    ("refused by --help", ["trt", "--onnx", "{fake_onnx}", "--weights", "{ckpt}"]),  # "instead of exporting one"
    ("refused by --help", ["trt", "--onnx", "{fake_onnx}", "--compute-capability", "x.y"]),
    ("unknown suffix", ["trt", "--onnx", "{model_txt}"]), ("file missing", ["trt", "--onnx", "{absent}/model.onnx"]),
    ("unknown suffix", ["openvino", "--onnx", "{ckpt}"]),
    ("bad batch size", ["litert", "--batch", "0"]), ("bad batch size", ["executorch", "--max-batch", "x"]),
    *((kind, [command, *arguments]) for command in RUNS for kind, arguments in _run_cases(command)),
    ("file missing", ["predict", "{ckpt}", "{absent}/cat.jpg"]), ("folder empty", ["predict", "{ckpt}", "{empty}"]),
    ("not what its name says", ["predict", "{ckpt}", "{text_jpg}"]),
    ("bad top-k", ["predict", "{ckpt}", "{photo}", "--top-k", "0"]),
    ("bad top-k", ["predict", "{ckpt}", "{photo}", "--top-k", "11"]),  # the model has 10 classes
    ("class count contradicts the checkpoint", ["predict", "{ckpt}", "{photo}", "--num-classes", "5"]),
    ("refused by --help", ["predict", "{fake_onnx}", "{photo}", "--num-classes", "5"]),  # for a checkpoint
    ("refused by --help", ["predict", "{ckpt}", "{photo}", "--sandbox"]),  # for an .onnx
    ("signature refused", ["predict", "{fake_onnx}", "{photo}", "--trusted-key", "{public_key}"]),
    ("folder empty", ["classify", "{ckpt}", "{empty}", "-o", "r.jsonl"]),
    ("folder missing", ["classify", "{ckpt}", "{absent}", "-o", "r.jsonl"]),
    ("bad top-k", [*CLASSIFY, "--top-k", "0"]), ("bad top-k", [*CLASSIFY, "--top-k", "11"]),
    ("bad batch size", [*CLASSIFY, "--batch-size", "0"]), ("bad batch size", [*CLASSIFY, "--batch-size", "x"]),
    ("bad count", [*CLASSIFY, "--threads", "0"]), ("bad count", [*CLASSIFY, "--rows-per-part", "0"]),
    ("output folder missing", ["classify", "{ckpt}", "{photo}", "-o", "{absent}/r.jsonl"]),
    ("unknown suffix", ["classify", "{ckpt}", "{photo}", "-o", "r.csv"]),
    ("refused by --help", [*CLASSIFY, "--workers", "2"]),  # --ray only
    ("refused by --help", ["classify", "{ckpt}", "{photo}", "-o", "r.parquet", "--ray", "--decode-threads", "2"]),
    ("folder empty", ["verify", "{ckpt}", "--images", "{empty}", "--labels-from-folders"]),
    ("folder missing", ["verify", "{ckpt}", "--images", "{absent}", "--labels-from-folders"]),
    ("bad batch size", [*VERIFY, "--labels-from-folders", "--batch-size", "0"]),
    ("bad batch size", [*VERIFY, "--labels-from-folders", "--batch-size", "x"]),
    ("file missing", [*VERIFY, "--reference", "{absent}/model.pt"]),
    ("text named .pt", [*VERIFY, "--reference", "{text_pt}"]),
    ("refused by --help", VERIFY),  # nothing to measure
    ("refused by --help", [*VERIFY, "--labels-from-folders", "--per-layer"]),  # needs --reference
    ("refused by --help", [*VERIFY, "--labels-from-folders", "--min-agreement", "99"]),  # needs --reference
    ("refused by --help", [*VERIFY, "--reference", "{ckpt}", "--min-accuracy", "50"]),  # needs --labels-from-folders
    ("refused by --help", ["verify", "{fake_onnx}", "--images", "{photos}", "--per-layer", "--reference", "{ckpt}"]),
    ("refused by --help", [*VERIFY, "--on", "aarch64"]),  # .onnx, .ort, .tflite, .pte
    ("bad batch size", ["bench", "{ckpt}", "--batch-sizes", "0"]),
    ("bad batch size", ["bench", "{ckpt}", "--batch-sizes", "x"]), ("bad count", ["bench", "{ckpt}", "--threads", "0"]),
    ("output folder missing", ["bench", "{ckpt}", "--json", "{absent}/bench.json"]),
    ("output folder missing", ["bench", "{ckpt}", "--plot", "{absent}/bench.png"]),
    ("refused by --help", ["bench", "{ckpt}", "--iterations", "1", "--seconds", "1"]),
    ("bad batch size", ["serve", "{ckpt}", "--max-batch", "0"]), ("bad count", ["serve", "{ckpt}", "--workers", "0"]),
    ("refused by --help", ["serve", "{ckpt}", "--name", "a/b"]),
    ("signature refused", ["serve", "{fake_onnx}", "--trusted-key", "{public_key}"]),
    ("file missing", ["triton", "--repo", "repo", "--onnx", "{absent}/model.onnx"]),
    ("unknown suffix", ["triton", "--repo", "repo", "--onnx", "{model_txt}"]),
    ("not what its name says", ["triton", "--repo", "repo", "--onnx", "{text_onnx}"]),
    ("output folder missing", ["triton", "--repo", "{absent}/repo", "--onnx", "{fake_onnx}"]),
    ("output folder missing", [*TRITON, "--kserve", "{absent}/isvc.yaml", "--storage-uri", "s3://bucket/models"]),
    ("bad batch size", [*TRITON, "--max-batch", "0"]), ("bad batch size", [*TRITON, "--preferred-batch", "x"]),
    ("bad batch size", [*TRITON, "--preferred-batch", "64"]),  # above --max-batch
    ("refused by --help", [*TRITON, "--kserve", "isvc.yaml"]),  # needs --storage-uri
    ("refused by --help", [*TRITON, "--kserve", "isvc.yaml", "--storage-uri", "ftp://host/models"]),
    ("refused by --help", [*TRITON, "--onnx-tensorrt"]),  # with --kind gpu
    ("refused by --help", ["triton", "--repo", "repo", "--engine", "{fake_engine}"]),  # with --kind gpu
    ("file missing", ["sign", "{absent}/model.onnx", "--key", "{private_key}"]),
    ("file missing", ["sign", "{fake_onnx}", "--key", "{absent}/private.pem"]),
    ("unknown suffix", ["sign", "{model_txt}", "--key", "{private_key}"]),
    ("not what its name says", ["sign", "{fake_onnx}", "--key", "{three}"]),
    ("refused by --help", ["sign", "{fake_onnx}", "--key", "{private_key}", "--chain", "{public_key}"]),
    ("refused by --help", ["sign", "{fake_onnx}", "--key", "{private_key}", "--certificate", "{public_key}"]),
    ("file missing", ["verify-signature", "{absent}/model.onnx", "--trusted-key", "{public_key}"]),
    ("folder empty", ["verify-signature", "{empty}", "--trusted-key", "{public_key}"]),
    ("not what its name says", ["verify-signature", "{fake_onnx}", "--trusted-key", "{three}"]),
    ("signature refused", ["verify-signature", "{fake_onnx}", "--trusted-key", "{public_key}"]),
    ("file missing", ["ort", "{absent}/model.onnx"]), ("unknown suffix", ["ort", "{model_txt}"]),
    ("unknown suffix", ["ort", "{fake_onnx}", "-o", "model.onnx"]),
    ("output folder missing", ["ort", "{fake_onnx}", "-o", "{absent}/model.ort"]),
    ("file missing", ["inspect", "{absent}/model.onnx"]), ("unknown suffix", ["inspect", "{model_txt}"]),
    ("file missing", [*OPTIMIZE, "--weights", "{absent}/model.pt"]),
    ("text named .pt", [*OPTIMIZE, "--weights", "{text_pt}"]), ("empty .pt", [*OPTIMIZE, "--weights", "{empty_pt}"]),
    ("another network's state dict", [*OPTIMIZE, "--weights", "{other_pt}"]),
    ("unknown suffix", [*OPTIMIZE, "--weights", "{model_txt}"]),
    ("labels of the wrong count", [*OPTIMIZE, "--weights", "{ckpt}", "--labels", "{three}"]),
    ("class count contradicts the checkpoint", [*OPTIMIZE, "--weights", "{ckpt}", "--num-classes", "5"]),
    ("folder missing", [*OPTIMIZE, "--weights", "{ckpt}", "--images", "{absent}"]),
    ("folder empty", [*OPTIMIZE, "--weights", "{ckpt}", "--images", "{empty}"]),
    ("calibration folder too small", [*OPTIMIZE, "--weights", "{ckpt}", "--calib-dir", "{few}"]),
    ("calibration folder too small", [*OPTIMIZE, "--weights", "{ckpt}", "--calib-dir", "{empty}"]),
    ("folder missing", [*OPTIMIZE, "--weights", "{ckpt}", "--calib-dir", "{absent}"]),
    ("output folder missing", [*OPTIMIZE, "--weights", "{ckpt}", "-o", "{absent}/best"]),
    ("bad batch size", [*OPTIMIZE, "--batch-size", "0"]), ("bad batch size", [*OPTIMIZE, "--batch-size", "x"]),
    ("bad batch size", [*OPTIMIZE, "--objective", "throughput", "--batch-sizes", "0"]),
    ("bad count", [*OPTIMIZE, "--threads", "0"]), ("bad count", [*OPTIMIZE, "--bench-rounds", "0"]),
    ("refused by --help", [*OPTIMIZE, "--objective", "fastest"]),
    ("refused by --help", [*OPTIMIZE, "--batch-sizes", "1,8"]),  # --objective throughput only
    ("refused by --help", [part for part in OPTIMIZE if part != "--labels-from-folders"]),
    ("refused by --help", [*OPTIMIZE, "--max-top1-drop", "200"]),
    ("refused by --help", [*OPTIMIZE, "--candidates", "tensorflow"]),
]


def _param(case):
    """The case as a pytest parameter, its id the command, the kind and the arguments."""
    (kind, arguments), marks = (case.values, case.marks) if hasattr(case, "values") else (case, ())
    shown = " ".join(part.replace("{", "").replace("}", "") for part in arguments[1:])
    return pytest.param(kind, arguments, marks=marks, id=f"{arguments[0]}: {kind}: {shown}")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, hard_int8_checkpoint, photos, signing_keys) -> dict[str, str]:
    """What the cases name: a 10-class checkpoint, files that are not what their names say, a labels file of 3,
    a folder of 3 photos (one class folder), an empty folder and a path that does not exist."""
    root = tmp_path_factory.mktemp("mistakes")
    (root / "text.pt").write_text("plain words\n" * 20)
    (root / "empty.pt").write_bytes(b"")
    torch.save({"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, root / "other.pt")
    (root / "text.onnx").write_text("plain words\n" * 20)
    (root / "text.jpg").write_text("plain words\n" * 20)
    (root / "model.txt").write_text("not a model")
    (root / "three.txt").write_text("cat\ndog\nbird\n")
    (root / "fake.onnx").write_bytes(b"not read: the arguments are refused first")
    (root / "fake.engine").write_bytes(b"not read: the arguments are refused first")
    for folder in ("empty", "few", "photos/cat"):
        (root / folder).mkdir(parents=True)
    for photo in photos[:3]:
        shutil.copyfile(photo, root / "few" / photo.name)
    shutil.copyfile(photos[0], root / "photos" / "cat" / photos[0].name)
    names = dict(ckpt=hard_int8_checkpoint, text_pt=root / "text.pt", empty_pt=root / "empty.pt",
                 other_pt=root / "other.pt", text_onnx=root / "text.onnx", text_jpg=root / "text.jpg", model_txt=root / "model.txt",
                 three=root / "three.txt", fake_onnx=root / "fake.onnx", fake_engine=root / "fake.engine",
                 photo=root / "photos" / "cat" / photos[0].name, photos=root / "photos", few=root / "few",
                 empty=root / "empty", absent=root / "absent", private_key=signing_keys.private,
                 public_key=signing_keys.public)
    return {name: str(path) for name, path in names.items()}


@pytest.fixture(autouse=True)
def listen(monkeypatch):
    """serve never listens here: a mistake it let through fails the case instead of serving forever."""
    from alexnet_export.serving import server

    def refuse(host, port):
        raise AssertionError("serve got as far as listening")

    monkeypatch.setattr(server, "listen", refuse)


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


_warm: set[str] = set()


def _refused(argv: list[str], code: int, root: Path, folder: Path) -> None:
    """`alexnet-export ARGV` run in `folder`: one line, "Error: ...", exit `code`, in under 3 s once the command's
    modules are imported; nothing on stdout, nothing written there or under `root` (the inputs)."""
    before = _files(root)
    if argv[0] not in _warm:  # its modules imported once, outside the timing
        CliRunner().invoke(main, argv)
        _warm.add(argv[0])
    started = time.perf_counter()
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    seconds = time.perf_counter() - started
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output and "unexpected" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert result.exit_code == code, lines[0]
    assert result.stdout == "", result.stdout
    assert os.listdir(folder) == [] and _files(root) == before  # nothing written, nothing left half made
    assert seconds < 3, seconds


@pytest.mark.parametrize("kind, arguments", [_param(case) for case in CASES])
def test_a_mistake_is_one_line_before_any_work_with_its_kinds_code(kind, arguments, inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TRUSTED_KEY_ENV, raising=False)
    _refused([part.format(**inputs) for part in arguments], CODES[kind], Path(inputs["empty"]).parent, tmp_path)


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_a_trusted_key_the_environment_names_is_checked_as_the_option_is(command, inputs, tmp_path, monkeypatch):
    """--trusted-key's default, $ALEXNET_EXPORT_TRUSTED_KEY: a file missing there is the same mistake."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TRUSTED_KEY_ENV, str(Path(inputs["absent"]) / "public.pem"))
    arguments = [command, *("{fake_onnx}" if part == "{model}" else part for part in RUNS[command])]
    _refused([part.format(**inputs) for part in arguments], CODES["file missing"], Path(inputs["empty"]).parent,
             tmp_path)


def test_every_command_is_fed_mistakes():
    """A command added to the CLI gets its row of mistakes here too."""
    assert set(main.commands) == {(case.values if hasattr(case, "values") else case)[1][0] for case in CASES}
