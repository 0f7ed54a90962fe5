"""The table of precisions (models/precisions.py) and which precisions each file kind carries (the backend
table's rows, runtimes/table.py): the facts every command and gate reads from them."""

import pytest

from alexnet_export.errors import ArgumentError
from alexnet_export.models.precisions import INT8_GATE, PRECISIONS, gate_for, is_int8, own_int8, precision
from alexnet_export.models.spec import precision_file_name
from alexnet_export.runtimes.table import BACKENDS, ENGINE, ONNX, OPENVINO


def test_each_command_word_means_one_precision_per_format():
    assert ONNX.command_words() == {"fp32": "fp32", "fp16": "fp16", "int8": "int8-cpu", "int8-tensorrt": "int8-tensorrt",
                                    "int4": "int4"}
    assert ENGINE.command_words() == {"fp32": "fp32", "fp16": "fp16", "int8": "int8-tensorrt"}
    assert OPENVINO.command_words() == {"fp32": "fp32", "bf16": "bf16", "int8": "int8-openvino"}
    for backend in BACKENDS:  # every word a row carries is a known precision, and no command word is used twice
        assert len(set(backend.command_words())) == len(backend.precisions), backend.name
        assert all(precision(word) for word in backend.words())


def test_default_file_names_never_collide_within_a_format():
    for backend, extension in ((ONNX, "onnx"), (OPENVINO, "xml")):
        names = [precision_file_name("alexnet", word, extension) for word in backend.words()]
        assert len(set(names)) == len(names), names
    assert precision_file_name("alexnet", "int8-cpu") == "alexnet.int8-cpu.onnx"
    assert precision_file_name("alexnet", "int8-openvino", "xml") == "alexnet.int8.xml"
    assert precision_file_name("alexnet", "fp16", input_format="uint8") == "alexnet.fp16.uint8.onnx"


def test_calibration_gates_and_modes_follow_int8():
    for row in PRECISIONS:
        assert row.calibrated == is_int8(row.word) == (row.tensorrt_mode == "INT8"), row.word
        assert gate_for(row.word) is row.gate
    assert gate_for("fp64") is None and not is_int8("fp64")
    assert precision("bf16").openvino_hint == "bf16" and precision("int8-openvino").openvino_hint == "f32"


def test_a_precision_a_format_cannot_carry_is_refused_naming_the_argument():
    with pytest.raises(ArgumentError, match="precision 'int8-cpu' is unknown for engine files; expected one of"
                                            " fp32, fp16, int8-tensorrt") as caught:
        ENGINE.precision("int8-cpu")
    assert caught.value.argument == "precision"
    with pytest.raises(ArgumentError, match="precision .int3. is unknown; expected one of fp32, fp16, bf16"):
        precision("int3")


def test_a_backends_own_int8_needs_no_row_but_only_int8_dash_a_name():
    row = own_int8("int8-ncnn")
    assert row is not None and precision("int8-ncnn") == row and row.calibrated and row.gate is INT8_GATE
    assert is_int8("int8-ncnn") and gate_for("int8-ncnn") is INT8_GATE and row.name_part == "int8"
    for word in ("int8-", "int8-Ncnn", "int8-nc nn", "int8-../x", "int9-ncnn"):
        assert own_int8(word) is None, word
        with pytest.raises(ArgumentError, match="is unknown"):
            precision(word)
