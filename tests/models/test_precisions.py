"""The table of precisions (models/precisions.py): the facts every command and gate reads from it."""

import pytest

from alexnet_export.errors import ArgumentError
from alexnet_export.models.precisions import (
    ENGINE_FORMAT,
    OPENVINO_FORMAT,
    ONNX_FORMAT,
    PRECISIONS,
    command_words,
    gate_for,
    is_int8,
    precision,
    words,
)
from alexnet_export.models.spec import precision_file_name


def test_each_command_word_means_one_precision_per_format():
    assert command_words(ONNX_FORMAT) == {"fp32": "fp32", "fp16": "fp16", "int8": "int8-cpu", "int8-tensorrt": "int8-tensorrt",
                                  "int4": "int4"}
    assert command_words(ENGINE_FORMAT) == {"fp32": "fp32", "fp16": "fp16", "int8": "int8-tensorrt"}
    assert command_words(OPENVINO_FORMAT) == {"fp32": "fp32", "bf16": "bf16", "int8": "int8-openvino"}


def test_default_file_names_never_collide_within_a_format():
    for fmt, extension in ((ONNX_FORMAT, "onnx"), (OPENVINO_FORMAT, "xml")):
        names = [precision_file_name("alexnet", word, extension) for word in words(fmt)]
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
        precision("int8-cpu", ENGINE_FORMAT)
    assert caught.value.argument == "precision"
    with pytest.raises(ArgumentError, match="precision .int3. is unknown; expected one of fp32, fp16, bf16"):
        precision("int3")
