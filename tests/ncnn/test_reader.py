"""runtimes/ncnn/reader.py on the writer's own files and on damaged ones. The runtime reads a pair with it before
ncnn sees the files, because ncnn segfaults or computes garbage on inconsistent ones; so each refusal is checked
for its exact one-line message (the file, what was wrong, what was expected), and random damage must end in a
ModelLoadError or in consistent facts, never in another exception."""

from __future__ import annotations

import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from alexnet_export.errors import ModelLoadError
from alexnet_export.runtimes.ncnn.reader import bin_path, read_ncnn_facts

pytest.importorskip("torch", reason="writing ncnn files needs the export extra")

CLASSES = 10
PLAIN_TYPES = {"Input", "Convolution", "ConvolutionDepthWise", "Pooling", "LRN", "Flatten", "InnerProduct"}
INT8_TYPES = PLAIN_TYPES - {"ConvolutionDepthWise"} | {"Slice", "Concat"}
KNOWN = "Concat, Convolution, ConvolutionDepthWise, Dropout, Flatten, InnerProduct, Input, LRN, Pooling, ReLU, Slice, Softmax, Split"
WIDTH = {"fp32": 4, "fp16": 2, "int8": 1}
PARSE = " (ncnn reads a value with '.' or 'e' as a float)"
TEXT = "; expected the ncnn .param text the exporter writes"


@pytest.fixture(scope="session")
def write():
    """(model, precision) -> (.param text, .bin bytes) from the project's writer (INT8 with made-up input ranges)."""
    from alexnet_export.exporter.ncnn.layers import write_ncnn
    from alexnet_export.runtimes.verification.layers import WEIGHTED

    return lambda model, precision: write_ncnn(model, precision, {name: 4.0 for name in WEIGHTED} if precision == "int8" else None)


def _model(classes: int):
    from alexnet_export.models.alexnet import seeded_alexnet

    return seeded_alexnet(num_classes=classes, seed=0)


@pytest.fixture(scope="session")
def exports(tmp_path_factory, write) -> dict[str, Path]:
    """{precision: m.ncnn.param}, each with its m.ncnn.bin beside it."""
    model = _model(CLASSES)
    return {precision: _save(tmp_path_factory.mktemp(precision), *write(model, precision)) for precision in WIDTH}


def _save(folder: Path, text: str | bytes, data: bytes | None = None) -> Path:
    param = folder / "m.ncnn.param"
    param.write_bytes(text.encode("ascii") if isinstance(text, str) else text)
    if data is not None:
        bin_path(param).write_bytes(data)
    return param


def _refusal(param: Path, bin_file: Path | None = None) -> str:
    with pytest.raises(ModelLoadError) as caught:
        read_ncnn_facts(param, bin_file)
    message = str(caught.value)
    assert "\n" not in message and "expected" in message
    return message


@contextmanager
def _patched(path: Path, offset: int, data: bytes, cut: bool = False):
    """`path` with `data` written at `offset` (and cut there if `cut`), put back afterwards: the .bins are big and shared."""
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.seek(offset)
        old = file.read(size - offset if cut else len(data))
        file.seek(offset)
        file.write(data)
        if cut:
            file.truncate(offset + len(data))
    try:
        yield
    finally:
        with open(path, "r+b") as file:
            file.seek(offset)
            file.write(old)
            file.truncate(size)


@pytest.mark.parametrize("precision", list(WIDTH))
def test_facts_of_the_writers_files(exports, precision):
    param = exports[precision]
    facts = read_ncnn_facts(param)
    assert {layer.type for layer in facts.layers} == (INT8_TYPES if precision == "int8" else PLAIN_TYPES)
    assert (facts.weights, facts.input_shape, facts.classes, facts.lrn_layers) == (precision, (3, 224, 224), CLASSES, 2)
    assert (facts.input, facts.output) == ("images", "logits")
    assert facts.bin_bytes == bin_path(param).stat().st_size and facts.param_bytes == param.stat().st_size
    assert facts.describe().startswith(f"{len(facts.layers)} layers: Con") and "LRN x2, Pooling x3" in facts.describe()
    assert bin_path("a/m.ncnn.param") == Path("a/m.ncnn.bin")


TOKEN_EDITS = [  # (precision, layer type, token, edited token, the message after "file line N (Type name): ")
    ("fp32", "Convolution", "1=11", "1=12", "weight_data_size (6) is 34848 but 96 outputs x 3 inputs x 11x12 kernel need 38016;"
     " expected the weight count of its kernel"),
    ("fp32", "Convolution", "6=34848", "6=34849", "weight_data_size (6) is 34849 but 96 outputs x 3 inputs x 11x11 kernel"
     " need 34848; expected the weight count of its kernel"),
    ("fp32", "ConvolutionDepthWise", "7=2", "7=3", "group 3 does not divide 96 inputs and 256 outputs; expected a divisor"),
    ("fp32", "InnerProduct", "2=26214400", "2=26214401", "weight_data_size (2) is 26214401 but 4096 outputs x 6400 inputs"
     " need 26214400; expected the weight count of its input"),
    ("fp32", "Convolution", "0=96", "0=9x6", "param 0='9x6' does not parse as int; expected e.g. 3" + PARSE),
    ("fp32", "Convolution", "0=96", "0=96.0", "param 0='96.0' does not parse as int; expected e.g. 3" + PARSE),
    ("fp32", "Convolution", "6=34848", "6=0000000000034848", "param 6='0000000000034848' does not parse as int; expected e.g. 3" + PARSE),
    ("fp32", "LRN", "4=2.0", "4=2", "param 4='2' does not parse as float; expected e.g. 2.0" + PARSE),
    ("fp32", "Convolution", "1=11", "1=65", "param 1='65' is out of range; expected 1 to 64"),
    ("fp32", "Convolution", "3=4", "3=0", "param 3='0' is out of range; expected 1 to 64"),
    ("fp32", "Convolution", "4=0", "4=-233", "param 4='-233' is out of range; expected 0 to 64"),
    ("fp32", "Convolution", "9=1", "9=2", "param 9='2' is out of range; expected 0 or 1"),
    ("int8", "Convolution", "8=2", "8=3", "param 8='3' is out of range; expected 0 or 2"),
    ("fp32", "Pooling", "5=1", "5=0", "param 5='0' is out of range; expected 1"),
    ("fp32", "LRN", "2=0.0001", "2=0.0001,1.0", "param 2='0.0001,1.0' is an array; expected one float"),
    ("fp32", "Convolution", "5=1", "5=1 19=1", "param key 19 is not one this reader knows for Convolution; expected"
     " [0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 16]"),
    ("fp32", "Convolution", "5=1", "5=1 0=96", "param key 0 is given twice; expected each key once"),
    ("fp32", "Convolution", "5=1", "5=1 -23300=2,1,1", "param '-23300=2,1,1' is ncnn's old -233xx array form; expected 'key=a,b'"),
    ("fp32", "Convolution", "5=1", "5=1 0:96", "'0:96' is not a key=value param; expected e.g. '0=96'"),
    ("fp32", "Convolution", "6=34848", "", "param key 6 is missing; expected keys [0, 1, 6] on a Convolution"),
    ("int8", "Slice", "0=48,48", "0=48,47", "slices (48, 47) do not cut 96 channels into 2 tops; expected them to add up"),
    ("fp32", "Flatten", "1", "2", "bottom and top counts '2' '1' are wrong; expected 1 bottom(s) and 1 top(s)"),
]


@pytest.mark.parametrize("precision, layer_type, old, new, message", TOKEN_EDITS, ids=[case[3] or "missing" for case in TOKEN_EDITS])
def test_an_edited_param_is_refused_naming_line_and_layer(exports, tmp_path, precision, layer_type, old, new, message):
    lines = exports[precision].read_text().split("\n")
    index = next(i for i, line in enumerate(lines) if line.split()[:1] == [layer_type])
    tokens = lines[index].split()
    at = tokens.index(old)  # the first one: Flatten's counts are "1 1"
    lines[index] = " ".join([*tokens[:at], new, *tokens[at + 1:]])
    refusal = _refusal(_save(tmp_path, "\n".join(lines)), bin_path(exports[precision]))
    assert refusal == f"m.ncnn.param line {index + 1} ({layer_type} {tokens[1]}): {message}"


def _lines_edited(exports, tmp_path, edit) -> tuple[Path, Path]:
    lines = exports["fp32"].read_text().rstrip("\n").split("\n")
    return _save(tmp_path, "\n".join(edit(lines)) + "\n"), bin_path(exports["fp32"])


@pytest.mark.parametrize("edit, message", [
    (lambda lines: ["7767518", *lines[1:]], " does not start with ncnn's magic 7767517; expected an ncnn .param"),
    (lambda lines: [lines[0], "15 15 15", *lines[2:]], "'s second line is not 'layer_count blob_count' (two positive counts);"
     " expected e.g. '15 15'"),
    (lambda lines: [lines[0], "16 15", *lines[2:]], " says 16 layers but has 15; expected the count it was written with"),
    (lambda lines: [lines[0], "15 14", *lines[2:]], " says 14 blobs but its layers name 15; expected the count it was written with"),
    (lambda lines: [lines[0], "1001 1001", *lines[2:]], " has over 1000 layers; expected an AlexNet's few"),
    (lambda lines: [line.replace("LRN ", "LRNX", 1) for line in lines], f" line 6: unknown layer type 'LRNX'; expected one of {KNOWN}"),
    (lambda lines: [*lines[:-1], "InnerProduct fc8 1"], " line 17 has 3 fields; expected 'Type name bottom_count top_count"
     " blobs k=v...'"),
    (lambda lines: [*lines[:-1], lines[-1].replace(" fc8 ", " fc8" + "8" * 255 + " ")], f" line 17: layer name {'fc8' + '8' * 37!r}"
     " is not 1-255 of A-Za-z0-9_.:/-; expected a plain name"),
    (lambda lines: [*lines[:3], lines[4], lines[3], *lines[5:]], " line 4 (Pooling pool1): blob 'conv1' is used before a layer"
     " makes it; expected data-flow order"),
    (lambda lines: [*lines[:8], lines[8].replace(" pool2 norm2", " conv2 norm2"), *lines[9:]], " line 9 (LRN norm2): blob"
     " 'conv2' is used a second time; expected a Split, as ncnn needs"),
    (lambda lines: [lines[0], "16 17", *lines[2:13], "Split split 1 2 pool5 pool5.a pool5.b", lines[13].replace(" pool5 ",
     " pool5.a "), *lines[14:]], " leaves 2 blobs unused (pool5.b, logits); expected one output blob"),
    (lambda lines: [lines[0], "16 16", *lines[2:], "ReLU relu 1 1 logits relu"], "'s output 'relu' comes from a ReLU;"
     " expected an InnerProduct"),
    (lambda lines: [lines[0], "16 16", *lines[2:4], "Input again 0 1 again", *lines[4:]], " line 5 (Input again): the one"
     " Input must be the first layer; expected one input"),
    (lambda lines: [*lines[:2], "Input images 0 1 images 0=227 1=227 2=3", *lines[3:]], " line 15 (InnerProduct fc6):"
     " weight_data_size (2) is 26214400 but 4096 outputs x 9216 inputs need 37748736; expected the weight count of its input"),
    (lambda lines: [*lines[:2], lines[2].replace(" ", "\t", 1), *lines[3:]], " is not ncnn .param text: byte 0x09 at offset 19"
     " (line 3) is not printable ASCII" + TEXT),
], ids=["magic", "counts", "layer-count", "blob-count", "too-many-layers", "unknown-type", "few-fields", "long-name", "order",
        "used-twice", "two-outputs", "not-classifier", "two-inputs", "input-shape", "tab"])
def test_a_damaged_param_is_refused(exports, tmp_path, edit, message):
    assert _refusal(*_lines_edited(exports, tmp_path, edit)) == "m.ncnn.param" + message


def test_an_input_shape_in_the_param_is_read(exports, tmp_path):
    edit = lambda lines: [*lines[:2], f"{lines[2]} 0=224 1=224 2=3", *lines[3:]]  # noqa: E731
    assert read_ncnn_facts(*_lines_edited(exports, tmp_path, edit)).input_shape == (3, 224, 224)


@pytest.mark.parametrize("content, message", [
    (b"", " is empty" + TEXT),
    (b"\x89PNG\r\n\x1a\n", " is not ncnn .param text: byte 0x89 at offset 0 (line 1) is not printable ASCII" + TEXT),
    (b" " * (1 << 20) + b"\n", " has 1048577 bytes, over 1048576" + TEXT),
], ids=["empty", "binary", "too-big"])
def test_a_param_that_is_not_ncnn_text_is_refused(exports, tmp_path, content, message):
    assert _refusal(_save(tmp_path, content), bin_path(exports["fp32"])) == "m.ncnn.param" + message


def test_missing_and_empty_bins_are_refused(exports, tmp_path):
    missing, empty = tmp_path / "none.ncnn.bin", tmp_path / "m.ncnn.bin"
    empty.write_bytes(b"")
    expected = "expected the .bin written with m.ncnn.param"
    assert _refusal(exports["fp16"], missing) == f"cannot read {missing}: No such file or directory; {expected}"
    assert _refusal(exports["fp16"], empty) == f"m.ncnn.bin is empty; {expected}"


def _size_message(have: int, need: int) -> str:
    return f"m.ncnn.bin has {have} bytes but m.ncnn.param's layers need {need}; the two are not one export (expected the .bin written with it)"


@pytest.mark.parametrize("precision", list(WIDTH))
@pytest.mark.parametrize("change", [-1, 1], ids=["short", "long"])
def test_a_bin_one_byte_short_or_long_is_refused(exports, precision, change):
    bin_file = bin_path(exports[precision])
    size = bin_file.stat().st_size
    with _patched(bin_file, size - (change < 0), b"\0" * (change > 0), cut=change < 0):
        assert _refusal(exports[precision]) == _size_message(size + change, size)
    assert read_ncnn_facts(exports[precision]).bin_bytes == size


def test_a_truncated_bin_gives_a_lower_bound(exports, tmp_path):
    with open(bin_path(exports["int8"]), "rb") as file:
        (tmp_path / "m.ncnn.bin").write_bytes(file.read(1000))
    # conv1's tag was read (int8: 34848 weights, 96 biases, 97 scales); the unread tags count their narrowest width
    assert _refusal(exports["int8"], tmp_path / "m.ncnn.bin").startswith("m.ncnn.bin has 1000 bytes but m.ncnn.param's layers need at least ")


def test_the_bin_of_another_model_is_refused(exports, tmp_path, write):
    other = bin_path(_save(tmp_path, *write(_model(CLASSES + 2), "fp16")))
    have, need = other.stat().st_size, bin_path(exports["fp16"]).stat().st_size
    assert have == need + 2 * (4096 * 2 + 4)  # fc8's two more rows of fp16 weights and fp32 biases
    assert _refusal(exports["fp16"], other) == _size_message(have, need)


def _weighted(facts) -> list[tuple[str, int, int]]:
    """(layer name, tag offset, scales offset or -1) of each weighted layer of the writer's .bin (INT8 scales: 8=2)."""
    found, offset = [], 0
    for layer in (layer for layer in facts.layers if layer.type in ("Convolution", "ConvolutionDepthWise", "InnerProduct")):
        p = layer.params
        count, bias = (p[2], p[1]) if layer.type == "InnerProduct" else (p[6], p[5])
        weights_end = offset + 4 + -(-count * WIDTH[facts.weights] // 4) * 4 + 4 * p[0] * bias
        found.append((layer.name, offset, weights_end if p.get(8) else -1))
        offset = weights_end + (4 * (p[0] + 1) if p.get(8) else 0)
    return found


@pytest.mark.parametrize("precision, tag, message", [
    ("fp32", 0x78563412, "weight tag 0x78563412 is unknown; expected 0 (fp32), 0x01306B47 (fp16) or 0x000D4B38 (int8)"),
    ("fp16", 0x000D4B38, "int8 weights on a layer without int8 scales (8=0); expected 8=1 or 8=2"),
    ("int8", 0x01306B47, "fp16 weights on a layer with int8 scales (8=2); expected int8 or fp32"),
], ids=["unknown", "int8-without-scales", "fp16-with-scales"])
def test_a_wrong_weight_tag_is_refused(exports, precision, tag, message):
    param = exports[precision]
    name, offset, _ = _weighted(read_ncnn_facts(param))[1]
    with _patched(bin_path(param), offset, struct.pack("<I", tag)):
        assert _refusal(param) == f"m.ncnn.bin byte {offset} (weights of layer {name} in m.ncnn.param): {message}"


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_int8_scale_is_refused(exports, scale):
    param = exports["int8"]
    name, _, offset = _weighted(read_ncnn_facts(param))[-1]
    with _patched(bin_path(param), offset + 8, struct.pack("<f", scale)):
        assert _refusal(param) == (f"m.ncnn.bin byte {offset} (weight scales of layer {name} in m.ncnn.param): scale"
                                   f" [{scale!r}] is not finite and positive; expected 127/absmax from calibration")


def _refused_or_consistent(param: Path, bin_file: Path) -> bool:
    """True if refused with a ModelLoadError; else the facts must hang together. Any other exception fails the test."""
    try:
        facts = read_ncnn_facts(param, bin_file)
    except ModelLoadError as error:
        assert "\n" not in str(error)
        return True
    producer = next(layer for layer in facts.layers if facts.output in layer.tops)
    assert producer.type == "InnerProduct" and producer.params[0] == facts.classes
    assert facts.layers[0].type == "Input" and facts.input == facts.layers[0].tops[0] and len(facts.input_shape) == 3
    assert (facts.param_bytes, facts.bin_bytes) == (param.stat().st_size, bin_file.stat().st_size)
    assert facts.weights in WIDTH and facts.lrn_layers == sum(layer.type == "LRN" for layer in facts.layers)
    return False


def test_random_param_mutations_are_refused_or_read_consistently(exports, tmp_path):
    rng, text, alphabet = np.random.default_rng(7767517), exports["int8"].read_bytes(), b"0123456789 =,.-e\n\tLRNx"
    outcomes = []
    for _ in range(200):
        data, at, kind = bytearray(text), int(rng.integers(len(text))), int(rng.integers(4))
        byte = int(rng.integers(256)) if kind == 0 else alphabet[int(rng.integers(len(alphabet)))]
        if kind == 2:
            del data[at]
        elif kind == 3:
            data.insert(at, byte)
        else:
            data[at] = byte
        outcomes.append(_refused_or_consistent(_save(tmp_path, bytes(data)), bin_path(exports["int8"])))
    assert 0 < sum(outcomes) < len(outcomes)  # both happen, so neither branch is vacuous


def test_random_bin_mutations_are_refused_or_read_consistently(exports):
    rng, param = np.random.default_rng(49504952), exports["int8"]
    tags = [offset for _, offset, _ in _weighted(read_ncnn_facts(param))]
    outcomes = []
    for index in range(200):  # half in the first 64 KB (conv1's weights, bias and scales), half on weight tags
        offset = int(rng.integers(1 << 16)) if index % 2 else tags[int(rng.integers(len(tags)))] + int(rng.integers(4))
        with _patched(bin_path(param), offset, bytes([int(rng.integers(256))])):
            outcomes.append(_refused_or_consistent(param, bin_path(param)))
    assert 0 < sum(outcomes) < len(outcomes)
