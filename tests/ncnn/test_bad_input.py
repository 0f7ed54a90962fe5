"""Bad input to `ncnn`, and ncnn pairs `predict` must refuse: one line each, naming the file and what was
wrong, exit 1 (2 for a wrong argument), nothing left behind, the previous good pair kept."""

import json
import os
import shutil
import time

import pytest

from alexnet_export.hashing import file_sha256


@pytest.fixture
def good_pair(fp32_ncnn, tmp_path):
    """A good pair and its sidecar in an empty folder, as an earlier export left them (their digests)."""
    for source, name in ((fp32_ncnn.path, "m.ncnn.param"), (fp32_ncnn.bin, "m.ncnn.bin"),
                         (fp32_ncnn.sidecar, "m.ncnn.param.json")):  # the sidecar's name follows the .param's
        shutil.copy(source, tmp_path / name)
    return _digests(tmp_path)


def _digests(folder):
    return {path.name: file_sha256(path) for path in folder.iterdir()}


def _unchanged(folder, before):
    assert _digests(folder) == before  # nothing new (no staged file left), nothing lost, nothing rewritten


def test_a_checkpoint_the_converter_cannot_take_leaves_the_good_pair(cli, one_line_error, good_pair, tmp_path,
                                                                     tmp_path_factory):
    import torch

    weights = tmp_path_factory.mktemp("weights") / "not-alexnet.pt"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, weights)
    result = cli("ncnn", "--weights", weights, "-o", "m.ncnn.param", cwd=tmp_path)
    one_line_error(result, r"^Error: .*not-alexnet.pt is not an AlexNet state dict: expected keys .* found only features.0.weight$")
    _unchanged(tmp_path, good_pair)


def test_a_calibration_folder_too_small_leaves_the_good_pair(cli, one_line_error, good_pair, calib_dir, tmp_path,
                                                              tmp_path_factory):
    few = tmp_path_factory.mktemp("few")
    for image in sorted(calib_dir.rglob("*.jpg"))[:10]:
        shutil.copy(image, few / image.name)
    result = cli("ncnn", "--precision", "int8", "--calib-dir", few, "-o", "m.ncnn.param", cwd=tmp_path)
    one_line_error(result, r"^Error: found 10 image files under .*few.*; calibration needs at least 64 \(--calib-dir\)$",
                   code=2)  # found before any work (exporter/calibration/checks.py): a usage mistake
    _unchanged(tmp_path, good_pair)


def test_an_output_name_without_the_suffix_is_refused_before_any_work(cli, one_line_failure, good_pair, tmp_path,
                                                                     tmp_path_factory):
    """Refused before the checkpoint is read: a checkpoint that cannot load is not what the error names, and
    no progress line (loading, writing, verifying) comes before it."""
    weights = tmp_path_factory.mktemp("weights") / "empty.pt"
    weights.write_bytes(b"")
    started = time.perf_counter()
    result = cli("ncnn", "--weights", weights, "-o", "m.onnx", cwd=tmp_path)
    seconds = time.perf_counter() - started
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr  # an argument's mistake
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "Error: an ncnn model is a .ncnn.param file (its weights go beside it as NAME.ncnn.bin); got m.onnx (--output)"]
    assert seconds < 15, seconds  # the toolkit's imports only (an FP32 export takes 10-15 s here)
    _unchanged(tmp_path, good_pair)


def test_int8_without_a_calibration_folder_is_refused(cli, one_line_error, good_pair, tmp_path):
    result = cli("ncnn", "--precision", "int8", "-o", "m.ncnn.param", cwd=tmp_path)
    one_line_error(result, r"^Error: int8-ncnn needs calibration images: a folder of 64 or more \(--calib-dir\)$",
                   code=2)
    _unchanged(tmp_path, good_pair)


@pytest.fixture(scope="module")
def pairs(fp32_ncnn, tmp_path_factory):
    """A folder of two more pairs from the project's writer (no sidecars): twelve.ncnn.* of a 12-class AlexNet, and
    seed4.ncnn.* of a 10-class one of another seed, whose .bin has the export's size and layout."""
    from alexnet_export.exporter.ncnn.layers import write_ncnn
    from alexnet_export.models.alexnet import seeded_alexnet

    folder = tmp_path_factory.mktemp("pairs")
    for classes, seed, stem in ((12, 0, "twelve"), (10, 4, "seed4")):
        text, weights = write_ncnn(seeded_alexnet(num_classes=classes, seed=seed).eval(), "fp32")
        (folder / f"{stem}.ncnn.param").write_text(text, encoding="ascii")
        (folder / f"{stem}.ncnn.bin").write_bytes(weights)
    return folder


def _case(folder, param=None, bin_file=None, sidecar=None):
    """m.ncnn.param, m.ncnn.bin and m.ncnn.param.json in `folder`: bytes, a file to link, or None for none."""
    folder.mkdir()
    for name, content in (("m.ncnn.param", param), ("m.ncnn.bin", bin_file), ("m.ncnn.param.json", sidecar)):
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        elif content is not None:
            os.link(content, folder / name)  # read only: the shared export is never written
    return folder


def _refusal(cli, one_line_failure, folder, photo) -> str:
    """`predict`'s one line on stderr, alone (ncnn prints nothing of its own), without "Error: "."""
    line = one_line_failure(cli("predict", "m.ncnn.param", photo, cwd=folder), alone=True)
    assert line.startswith(("Error: m.ncnn.", "Error: cannot read m.ncnn.")), line  # names the file
    return line.removeprefix("Error: ")


NEED = "; the two are not one export (expected the .bin written with it)"


def test_missing_empty_and_truncated_files_are_refused_in_one_line(cli, one_line_failure, fp32_ncnn, photos, tmp_path):
    pair = (fp32_ncnn.path, fp32_ncnn.bin, fp32_ncnn.sidecar)
    missing_bin = _case(tmp_path / "a", pair[0], None, pair[2])
    assert _refusal(cli, one_line_failure, missing_bin, photos[0]) == (
        "cannot read m.ncnn.bin: No such file or directory; expected the .bin written with m.ncnn.param")
    empty_param = _case(tmp_path / "b", b"", pair[1], pair[2])
    assert _refusal(cli, one_line_failure, empty_param, photos[0]) == (
        "m.ncnn.param is empty; expected the ncnn .param text the exporter writes")
    empty_bin = _case(tmp_path / "c", pair[0], b"", pair[2])
    assert _refusal(cli, one_line_failure, empty_bin, photos[0]) == (
        "m.ncnn.bin is empty; expected the .bin written with m.ncnn.param")
    with open(fp32_ncnn.bin, "rb") as file:
        cut = _case(tmp_path / "d", pair[0], file.read(1_000_000), pair[2])
    assert _refusal(cli, one_line_failure, cut, photos[0]).startswith(
        "m.ncnn.bin has 1000000 bytes but m.ncnn.param's layers need at least ")
    with open(fp32_ncnn.bin, "rb") as file:
        short = _case(tmp_path / "e", pair[0], file.read(fp32_ncnn.bin_bytes - 4), pair[2])
    assert _refusal(cli, one_line_failure, short, photos[0]) == (
        f"m.ncnn.bin has {fp32_ncnn.bin_bytes - 4} bytes but m.ncnn.param's layers need {fp32_ncnn.bin_bytes}" + NEED)
    lone = _case(tmp_path / "f", pair[0], pair[1], None)
    assert _refusal(cli, one_line_failure, lone, photos[0]).startswith("m.ncnn.param.json is missing; ")


def test_a_param_naming_an_unknown_layer_and_a_bad_weight_tag_are_refused(cli, one_line_failure, fp32_ncnn, photos,
                                                                          tmp_path):
    text = fp32_ncnn.path.read_text()
    line = 1 + text.split("\n").index(next(line for line in text.split("\n") if line.startswith("LRN ")))
    unknown = _case(tmp_path / "a", text.replace("LRN ", "LRNX", 1).encode(), fp32_ncnn.bin, fp32_ncnn.sidecar)
    assert _refusal(cli, one_line_failure, unknown, photos[0]) == (
        f"m.ncnn.param line {line}: unknown layer type 'LRNX'; expected one of Concat, Convolution, ConvolutionDepthWise,"
        " Dropout, Flatten, InnerProduct, Input, LRN, Pooling, ReLU, Slice, Softmax, Split")
    tagged = _case(tmp_path / "b", fp32_ncnn.path, None, fp32_ncnn.sidecar)
    shutil.copy(fp32_ncnn.bin, tagged / "m.ncnn.bin")
    with open(tagged / "m.ncnn.bin", "r+b") as file:
        file.write(b"\x12\x34\x56\x78")  # conv1's tag, the first bytes of the .bin
    assert _refusal(cli, one_line_failure, tagged, photos[0]) == (
        "m.ncnn.bin byte 0 (weights of layer conv1 in m.ncnn.param): weight tag 0x78563412 is unknown; expected 0"
        " (fp32), 0x01306B47 (fp16) or 0x000D4B38 (int8)")


def test_the_bin_of_another_model_is_refused(cli, one_line_failure, fp32_ncnn, pairs, photos, tmp_path):
    twelve = _case(tmp_path / "a", fp32_ncnn.path, pairs / "twelve.ncnn.bin", fp32_ncnn.sidecar)
    have = (pairs / "twelve.ncnn.bin").stat().st_size
    assert have == fp32_ncnn.bin_bytes + 2 * 4 * (4096 + 1)  # fc8's two more rows and biases
    assert _refusal(cli, one_line_failure, twelve, photos[0]) == (
        f"m.ncnn.bin has {have} bytes but m.ncnn.param's layers need {fp32_ncnn.bin_bytes}" + NEED)
    # Another 10-class AlexNet's .bin has the export's size and layout: only the sidecar's digest tells it apart.
    assert (pairs / "seed4.ncnn.bin").stat().st_size == fp32_ncnn.bin_bytes
    same_size = _case(tmp_path / "b", fp32_ncnn.path, pairs / "seed4.ncnn.bin", fp32_ncnn.sidecar)
    assert _refusal(cli, one_line_failure, same_size, photos[0]) == (
        "m.ncnn.bin is not the file m.ncnn.param's sidecar describes (its SHA-256 differs from the sidecar's"
        " bin_sha256); the two are not one export")


def test_a_sidecar_from_another_export_is_refused(cli, one_line_failure, fp32_ncnn, pairs, photos, tmp_path):
    """The 12-class pair with the 10-class export's sidecar (the .params are the same size), and the export's
    pair with a .param edited to the same size."""
    twelve = _case(tmp_path / "a", pairs / "twelve.ncnn.param", pairs / "twelve.ncnn.bin", fp32_ncnn.sidecar)
    sidecar = json.loads(fp32_ncnn.sidecar.read_text())
    assert sidecar["param_bytes"] == (pairs / "twelve.ncnn.param").stat().st_size
    assert _refusal(cli, one_line_failure, twelve, photos[0]) == (
        f"m.ncnn.param's sidecar describes a .bin of {fp32_ncnn.bin_bytes} bytes but m.ncnn.bin has"
        f" {(pairs / 'twelve.ncnn.bin').stat().st_size}; the two are not one export")
    text = fp32_ncnn.path.read_text()
    assert " 2=0.0001 " in text  # the LRNs' alpha
    edited = _case(tmp_path / "b", text.replace(" 2=0.0001 ", " 2=0.0002 ").encode(), fp32_ncnn.bin, fp32_ncnn.sidecar)
    assert _refusal(cli, one_line_failure, edited, photos[0]) == (
        "m.ncnn.param is not the file m.ncnn.param's sidecar describes (its SHA-256 differs from the sidecar's"
        " param_sha256); the two are not one export")
    wrong_size = _case(tmp_path / "c", fp32_ncnn.path, fp32_ncnn.bin,
                       json.dumps({**sidecar, "bin_bytes": sidecar["bin_bytes"] + 8}).encode())
    assert _refusal(cli, one_line_failure, wrong_size, photos[0]) == (
        f"m.ncnn.param's sidecar describes a .bin of {fp32_ncnn.bin_bytes + 8} bytes but m.ncnn.bin has"
        f" {fp32_ncnn.bin_bytes}; the two are not one export")


def test_what_ncnn_itself_refuses_is_one_line_and_ncnn_prints_nothing(fp32_ncnn, tmp_path, monkeypatch, capfd):
    """ncnn logs its own refusals to fd 2; the runtime captures them while loading and folds them into its error.
    The reader is stood aside here (the pair's facts are the export's) so that ncnn sees a layer it lacks."""
    from alexnet_export.errors import ModelLoadError
    from alexnet_export.runtimes.ncnn import runtime

    facts = runtime.read_ncnn_facts(fp32_ncnn.path)
    text = fp32_ncnn.path.read_bytes().replace(b"LRN ", b"LRNX", 1)
    folder = tmp_path / "a"
    sidecar = {**json.loads(fp32_ncnn.sidecar.read_text()), "param_bytes": len(text)}
    _case(folder, text, fp32_ncnn.bin, None)
    sidecar["param_sha256"] = file_sha256(folder / "m.ncnn.param")
    (folder / "m.ncnn.param.json").write_text(json.dumps(sidecar))
    monkeypatch.setattr(runtime, "read_ncnn_facts", lambda path: facts)
    capfd.readouterr()
    with pytest.raises(ModelLoadError) as caught:
        runtime.NcnnRuntime(folder / "m.ncnn.param", threads=1)
    assert str(caught.value) == f"ncnn cannot load {folder / 'm.ncnn.param'}: layer LRNX not exists or registered"
    assert capfd.readouterr() == ("", "")
