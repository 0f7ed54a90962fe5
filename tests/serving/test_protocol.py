"""serving/protocol.py on its own: KServe v2 request bodies in, arrays or one-line errors out, and
answers that Triton's own client reads back. No server: the bodies are what the client would send.

Valid bodies are written by tritonclient's own encoder (InferenceServerClient.generate_request_body)
where it can write them, and answers decoded by its parser (parse_response_body), so the tests hold
the module to the client rather than to itself. The parser takes the input size from the model's
preprocessing record; a 16-pixel crop keeps these bodies small (test_server.py sends 224 x 224).
"""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

from alexnet_export.errors import InputError
from alexnet_export.models.spec import CHANNELS, INPUT_NAME, OUTPUT_NAME, PIXEL_INPUT, Preprocessing
from alexnet_export.serving.protocol import (
    HEADER_LENGTH,
    MODEL_VERSION,
    InferRequest,
    ProtocolError,
    classification_strings,
    encode_infer_response,
    model_metadata,
    parse_infer_request,
)

tritonclient_http = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http] (the test extra)")

SIZE = 16
FLOAT, PIXELS = Preprocessing(resize=SIZE, crop=SIZE), Preprocessing(resize=SIZE, crop=SIZE, input_format=PIXEL_INPUT)
MAX_BATCH, CLASSES = 4, 10
LABELS = tuple(f"class {i}" for i in range(CLASSES))
FLOAT_DIMS, PIXEL_DIMS = [CHANNELS, SIZE, SIZE], [SIZE, SIZE, CHANNELS]
VALUES = CHANNELS * SIZE * SIZE  # per image: 768


def parse(body: bytes | dict, header_length: int | str | None = None, preprocessing: Preprocessing = FLOAT):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return parse_infer_request(body, None if header_length is None else str(header_length),
                               preprocessing=preprocessing, max_batch=MAX_BATCH, num_classes=CLASSES)


def floats(seed: int, count: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, *FLOAT_DIMS), dtype=np.float32)


def pixels(seed: int, count: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *PIXEL_DIMS), dtype=np.uint8)


def client_body(images: np.ndarray, *, binary: bool, outputs=None, request_id: str = "") -> tuple[bytes, int | None]:
    """The body tritonclient sends for `images`, and its header length (None for plain JSON)."""
    tensor = tritonclient_http.InferInput(INPUT_NAME, list(images.shape), "UINT8" if images.dtype == np.uint8 else "FP32")
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tritonclient_http.InferenceServerClient.generate_request_body([tensor], outputs=outputs,
                                                                         request_id=request_id)


def json_request(count: int = 1, *, inputs: dict | None = None, **request) -> dict:
    """A JSON request for `count` float images (zeros, flat data), with the input's fields and the
    request's fields replaced by those given."""
    tensor = {"name": INPUT_NAME, "datatype": "FP32", "shape": [count, *FLOAT_DIMS], "data": [0.0] * (count * VALUES)}
    return {"inputs": [{**tensor, **(inputs or {})}], **request}


def binary_request(images: np.ndarray, *, datatype: str = "FP32", size: int | None = None, extra: bytes = b"",
                   cut: int = 0, **parameters) -> tuple[bytes, int]:
    """A binary-tensor body by hand, to bend what the client would not: size, datatype, trailing bytes."""
    header = json.dumps({"inputs": [{"name": INPUT_NAME, "datatype": datatype, "shape": list(images.shape),
                                     "parameters": {"binary_data_size": images.nbytes if size is None else size,
                                                    **parameters}}]}).encode()
    raw = images.astype(images.dtype.newbyteorder("<")).tobytes()
    return header + raw[: len(raw) - cut] + extra, len(header)


# --- valid bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_tritonclient_float_request_is_read_exactly(binary):
    images = floats(1, 3)
    outputs = [tritonclient_http.InferRequestedOutput(OUTPUT_NAME, binary_data=binary, class_count=3)]
    body, length = client_body(images, binary=binary, outputs=outputs, request_id="req-7")
    assert (length is not None) == binary
    parsed = parse(body, length)
    assert isinstance(parsed, InferRequest)
    assert parsed.images.dtype == np.float32 and parsed.images.flags.c_contiguous
    assert np.array_equal(parsed.images, images)  # bitwise: JSON carries float32 values exactly too
    assert (parsed.request_id, parsed.binary_output, parsed.classification) == ("req-7", binary, 3)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_tritonclient_pixel_request_is_read_exactly(binary):
    images = pixels(2, 2)
    parsed = parse(*client_body(images, binary=binary), preprocessing=PIXELS)
    assert parsed.images.dtype == np.uint8 and np.array_equal(parsed.images, images)
    # tritonclient asks for binary outputs when no output is named.
    assert (parsed.request_id, parsed.binary_output, parsed.classification) == (None, True, 0)


def test_hand_written_json_with_nested_lists_and_integers():
    images = floats(3, 2)
    nested = parse(json_request(2, inputs={"data": images.tolist()}))
    assert np.array_equal(nested.images, images)
    assert (nested.request_id, nested.binary_output, nested.classification) == (None, False, 0)
    whole = parse(json_request(1, inputs={"data": [7] * VALUES}))
    assert whole.images.dtype == np.float32 and (whole.images == 7).all()


def test_an_output_option_overrides_the_requests_binary_data_output():
    asked = {"parameters": {"binary_data_output": True}}
    assert parse(json_request(**asked)).binary_output is True
    refused = parse(json_request(**asked, outputs=[{"name": OUTPUT_NAME, "parameters": {"binary_data": False}}]))
    assert refused.binary_output is False
    assert parse(json_request(outputs=[{"name": OUTPUT_NAME}])).binary_output is False


def test_a_binary_request_of_max_batch_images_is_read():
    images = floats(4, MAX_BATCH)
    parsed = parse(*binary_request(images))
    assert np.array_equal(parsed.images, images) and parsed.images.shape == (MAX_BATCH, *FLOAT_DIMS)


# --- malformed bodies: one line each, a ProtocolError unless the values themselves are bad --------

_one = floats(5)
_nan, _inf = _one.copy(), _one.copy()
_nan[0, 1, 2, 3] = np.nan
_inf[0, 0, 0, :2] = [np.inf, -np.inf]

# name: (a function giving parse()'s arguments, the error class, a pattern of its message)
BAD_BODIES = {
    # the body and its header
    "malformed JSON": (lambda: (b'{"inputs": [',), ProtocolError, "^malformed JSON: "),
    "JSON nested 100,000 deep": (lambda: (b"[" * 100_000 + b"]" * 100_000,), ProtocolError, "nested too deeply"),
    "a JSON list": (lambda: (b"[1, 2]",), ProtocolError, "request is a JSON list; expected an object"),
    "binary without the header length": (lambda: (binary_request(_one)[0],), ProtocolError,
                                         "not UTF-8 text .*Inference-Header-Content-Length|malformed JSON"),
    "header length not a number": (lambda: (b"{}", "two"), ProtocolError,
                                   r"Inference-Header-Content-Length is 'two'; expected .* 1 to 2"),
    "header length zero": (lambda: (b"{}", 0), ProtocolError, "Inference-Header-Content-Length is '0'"),
    "header length past the body": (lambda: (b"{}", 99), ProtocolError, "Inference-Header-Content-Length is '99'"),
    "request parameters a list": (lambda: (json_request(parameters=[1]),), ProtocolError,
                                  "'parameters' is a JSON list; expected an object"),
    "id a number": (lambda: (json_request(id=7),), ProtocolError, "'id' is int; expected a string"),
    # the input tensor
    "no inputs": (lambda: ({"outputs": []},), ProtocolError, "'inputs' must list one tensor, 'images' \\(FP32 "),
    "two inputs": (lambda: ({"inputs": json_request()["inputs"] * 2},), ProtocolError, "'inputs' must list one"),
    "an input that is a string": (lambda: ({"inputs": ["images"]},), ProtocolError,
                                  "the input is a JSON str; expected an object"),
    "wrong input name": (lambda: (json_request(inputs={"name": "input"}),), ProtocolError,
                         "unknown input 'input'; the model's input is 'images'"),
    "wrong datatype": (lambda: (json_request(inputs={"datatype": "FP16"}),), ProtocolError,
                       "input 'images' has datatype 'FP16'; expected FP32$"),
    "UINT8 for a float model": (lambda: (json_request(inputs={"datatype": "UINT8"}),), ProtocolError,
                                "datatype 'UINT8'; expected FP32$"),
    "FP32 for a pixel model": (lambda: (*binary_request(_one), PIXELS), ProtocolError,
                               r"datatype 'FP32'; expected UINT8 \(raw RGB pixels after resize and crop\)"),
    "spatial size": (lambda: (json_request(inputs={"shape": [1, 3, 32, 32]}),), ProtocolError,
                     r"shape \[1, 3, 32, 32\]; expected \[batch, 3, 16, 16\]"),
    "rank 3": (lambda: (json_request(inputs={"shape": FLOAT_DIMS}),), ProtocolError, r"shape \[3, 16, 16\]"),
    "shape of floats": (lambda: (json_request(inputs={"shape": [1.0, 3, SIZE, SIZE]}),), ProtocolError,
                        r"shape \[1.0, 3, 16, 16\]; expected"),
    "shape of booleans": (lambda: (json_request(inputs={"shape": [True, 3, SIZE, SIZE]}),), ProtocolError,
                          r"shape \[True, 3, 16, 16\]; expected"),
    "NCHW to a pixel model": (lambda: (*binary_request(pixels(6).transpose(0, 3, 1, 2), datatype="UINT8"), PIXELS),
                              ProtocolError, r"shape \[1, 3, 16, 16\]; expected \[batch, 16, 16, 3\]"),
    "batch of 0": (lambda: (json_request(0),), ProtocolError, "a batch of 0; this server takes 1 to 4 images"),
    "batch over max_batch": (lambda: (json_request(5),), ProtocolError,
                             "a batch of 5; this server takes 1 to 4 images per request"),
    "input parameters a list": (lambda: (json_request(inputs={"parameters": []}),), ProtocolError,
                                "the input's 'parameters' is a JSON list"),
    "shared memory input": (lambda: (json_request(inputs={"parameters": {"shared_memory_region": "r"}}),),
                            ProtocolError, "shared memory is not supported; send the tensor in the request"),
    # JSON data
    "neither data nor binary": (lambda: (json_request(inputs={"data": None}),), ProtocolError,
                                "has neither 'data' nor a binary_data_size parameter"),
    "too few values": (lambda: (json_request(inputs={"data": [1.0, 2.0]}),), ProtocolError,
                       "'data' has 2 values; its shape needs 768$"),
    "too many values": (lambda: (json_request(inputs={"data": [0.0] * (VALUES + 1)}),), ProtocolError,
                        "'data' has 769 values; its shape needs 768"),
    "strings": (lambda: (json_request(inputs={"data": ["1.0"] * VALUES}),), ProtocolError, "'data' must be numbers"),
    "booleans": (lambda: (json_request(inputs={"data": [True] * VALUES}),), ProtocolError, "must be numbers"),
    "nulls": (lambda: (json_request(inputs={"data": [None] * VALUES}),), ProtocolError, "must be numbers"),
    "ragged lists": (lambda: (json_request(inputs={"data": [[0.0] * 3, [0.0] * (VALUES - 4)]}),), ProtocolError,
                     "must be numbers"),
    "an object": (lambda: (json_request(inputs={"data": {"0": 1}}),), ProtocolError, "must be numbers"),
    "JSON NaN": (lambda: (json_request(inputs={"data": [float("nan")] + [0.0] * (VALUES - 1)}),), InputError,
                 "^input contains 1 NaN or infinite values; expected finite numbers$"),
    "JSON infinities": (lambda: (json_request(inputs={"data": [float("inf"), float("-inf")] + [0.0] * (VALUES - 2)}),),
                        InputError, "contains 2 NaN or infinite"),
    "past float32's range": (lambda: (json_request(inputs={"data": [1e39] + [0.0] * (VALUES - 1)}),), InputError,
                             "contains 1 NaN or infinite"),
    "fractions for pixels": (lambda: ({"inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [1, *PIXEL_DIMS],
                                                   "data": [0.5] * VALUES}]}, None, PIXELS),
                             ProtocolError, "'data' must be whole numbers 0 to 255 \\(UINT8 pixels\\)"),
    "negative pixels": (lambda: ({"inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [1, *PIXEL_DIMS],
                                              "data": [-1] + [0] * (VALUES - 1)}]}, None, PIXELS),
                        ProtocolError, "whole numbers 0 to 255"),
    "pixels past 255": (lambda: ({"inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [1, *PIXEL_DIMS],
                                              "data": [256] + [0] * (VALUES - 1)}]}, None, PIXELS),
                        ProtocolError, "whole numbers 0 to 255"),
    # binary data
    "binary size not the shape's": (lambda: binary_request(_one, size=_one.nbytes - 4), ProtocolError,
                                    r"binary_data_size 3068; shape \[1, 3, 16, 16\] of FP32 needs 3072"),
    "binary size a string": (lambda: binary_request(_one, size="3072"), ProtocolError,
                             "binary_data_size '3072'"),
    "binary size past the body": (lambda: binary_request(_one, cut=4), ProtocolError,
                                  "needs 3072 bytes after the JSON header; the body has 3068"),
    "binary and data both": (lambda: (json_request(inputs={"parameters": {"binary_data_size": 4 * VALUES}}),),
                             ProtocolError, "has both 'data' and binary_data_size; expected one"),
    "bytes left over": (lambda: binary_request(_one, extra=b"xx"), ProtocolError,
                        "^2 bytes after the JSON header belong to no input$"),
    "binary NaN": (lambda: binary_request(_nan), InputError, "contains 1 NaN or infinite"),
    "binary infinities": (lambda: binary_request(_inf), InputError, "contains 2 NaN or infinite"),
    "pixel size of floats": (lambda: (*binary_request(pixels(7), datatype="UINT8", size=4 * VALUES), PIXELS),
                             ProtocolError, "of UINT8 needs 768$"),
    # outputs
    "outputs an object": (lambda: (json_request(outputs={"name": OUTPUT_NAME}),), ProtocolError,
                          "'outputs' must list at most one tensor, 'logits'"),
    "two outputs": (lambda: (json_request(outputs=[{"name": OUTPUT_NAME}] * 2),), ProtocolError,
                    "'outputs' must list at most one tensor"),
    "unknown output": (lambda: (json_request(outputs=[{"name": "probs"}]),), ProtocolError,
                       "unknown output 'probs'; the model's output is 'logits'"),
    "shared memory output": (lambda: (json_request(outputs=[{"name": OUTPUT_NAME, "parameters": {
        "shared_memory_region": "r"}}]),), ProtocolError, "outputs come back in the response"),
    "classification over the class count": (
        lambda: (json_request(outputs=[{"name": OUTPUT_NAME, "parameters": {"classification": 11}}]),),
        ProtocolError, "classification is 11; expected 1 to 10 \\(the class count\\)"),
    "classification negative": (
        lambda: (json_request(outputs=[{"name": OUTPUT_NAME, "parameters": {"classification": -1}}]),),
        ProtocolError, "classification is -1"),
    "classification a string": (
        lambda: (json_request(outputs=[{"name": OUTPUT_NAME, "parameters": {"classification": "3"}}]),),
        ProtocolError, "classification is '3'"),
    "binary_data a string": (lambda: (json_request(outputs=[{"name": OUTPUT_NAME, "parameters": {
        "binary_data": "yes"}}]),), ProtocolError, "binary_data is 'yes'; expected true or false"),
    "binary_data_output a number": (lambda: (json_request(parameters={"binary_data_output": 1}),), ProtocolError,
                                    "binary_data_output is 1; expected true or false"),
}


# numpy warns as 1e39 becomes float32 infinity; the check after it refuses the request.
OVERFLOW_WARNING = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


@pytest.mark.parametrize("case", [pytest.param(case, marks=OVERFLOW_WARNING if case == "past float32's range" else ())
                                  for case in BAD_BODIES])
def test_malformed_bodies_get_one_line_errors(case):
    arguments, error, pattern = BAD_BODIES[case]
    with pytest.raises(error) as caught:
        parse(*arguments())
    message = str(caught.value)
    assert "\n" not in message and re.search(pattern, message), message
    assert isinstance(caught.value, InputError)  # what the server answers with 400


# --- answers -----------------------------------------------------------------------------------


def _decoded(body: bytes, headers: dict):
    length = headers.get(HEADER_LENGTH)
    return tritonclient_http.InferenceServerClient.parse_response_body(
        body, header_length=None if length is None else int(length))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_logits_come_back_exactly_as_tritonclient_reads_them(binary):
    logits = np.random.default_rng(8).standard_normal((3, CLASSES), dtype=np.float32)
    request = InferRequest(floats(9, 3), "req-1", binary, 0)
    body, headers = encode_infer_response(request, logits, "alexnet", LABELS)
    assert headers["content-type"] == ("application/octet-stream" if binary else "application/json")
    assert (HEADER_LENGTH in headers) == binary
    if binary:
        assert len(body) - int(headers[HEADER_LENGTH]) == logits.nbytes
    result = _decoded(body, headers)
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("alexnet", MODEL_VERSION, "req-1")
    assert response["outputs"][0]["datatype"] == "FP32" and response["outputs"][0]["shape"] == [3, CLASSES]
    assert np.array_equal(result.as_numpy(OUTPUT_NAME), logits)


def test_an_answer_without_an_id_has_none():
    body, headers = encode_infer_response(InferRequest(floats(1), None, False, 0), np.zeros((1, CLASSES), np.float32),
                                          "alexnet", LABELS)
    assert "id" not in json.loads(body)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_classification_answers_are_score_index_label_best_first(binary):
    logits = np.zeros((2, CLASSES), np.float32)
    logits[0, [4, 1, 7]] = [3.5, 2.25, -1.0]  # the rest are 0, which ranks above -1
    logits[1, [2, 6]] = [1.5, 1.5]  # a tie: the lower index first
    body, headers = encode_infer_response(InferRequest(floats(1, 2), None, binary, 3), logits, "alexnet", LABELS)
    if binary:  # BYTES: each string is its 4-byte little-endian length, then its bytes
        raw = body[int(headers[HEADER_LENGTH]):]
        first = struct.unpack("<I", raw[:4])[0]
        assert raw[4 : 4 + first] == b"3.500000:4:class 4"
    strings = _decoded(body, headers).as_numpy(OUTPUT_NAME)
    assert strings.shape == (2, 3)
    assert [[s.decode() if isinstance(s, bytes) else s for s in row] for row in strings] == [
        ["3.500000:4:class 4", "2.250000:1:class 1", "0.000000:0:class 0"],
        ["1.500000:2:class 2", "1.500000:6:class 6", "0.000000:0:class 0"]]
    assert classification_strings(logits, LABELS, 1) == ["3.500000:4:class 4", "1.500000:2:class 2"]


@pytest.mark.parametrize("preprocessing, datatype, dims", [
    (FLOAT, "FP32", FLOAT_DIMS), (PIXELS, "UINT8", PIXEL_DIMS), (Preprocessing(), "FP32", [CHANNELS, 224, 224])],
    ids=["float", "pixels", "default"])
def test_model_metadata_names_the_input_the_parser_takes(preprocessing, datatype, dims):
    metadata = model_metadata("alexnet", "onnxruntime_onnx", preprocessing, CLASSES)
    assert metadata == {"name": "alexnet", "versions": [MODEL_VERSION], "platform": "onnxruntime_onnx",
                        "inputs": [{"name": INPUT_NAME, "datatype": datatype, "shape": [-1, *dims]}],
                        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, CLASSES]}]}
    tensor = metadata["inputs"][0]
    images = np.zeros([2, *tensor["shape"][1:]], preprocessing.input_dtype)
    request = {"inputs": [{"name": tensor["name"], "datatype": tensor["datatype"], "shape": list(images.shape),
                           "data": images.ravel().tolist()}]}
    assert parse(request, preprocessing=preprocessing).images.shape == images.shape
