"""The Open Inference Protocol (KServe v2) for this model: read inference requests, write answers.

JSON tensors and Triton's binary tensor extension: a body may be a JSON header followed by the raw
little-endian bytes of each input whose parameters give `binary_data_size`, in input order, with
the header's length in the `Inference-Header-Content-Length` HTTP header. Outputs come back the
same way when asked (`binary_data_output` on the request, or `binary_data` on an output). The
classification extension (`classification: k` on an output) returns the top k as
"score:index:label" strings, as Triton does for a model with a label file.

Tensor names, type and dims are the Triton repository's (serving/triton_repo.py), so a client
works against both. numpy and json only: no web framework here.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from alexnet_export.errors import InputError
from alexnet_export.models.spec import INPUT_NAME, OUTPUT_NAME, Preprocessing
from alexnet_export.runtimes.checks import BatchBounds, check_batch
from alexnet_export.serving.tensors import DATATYPE, input_tensor

HEADER_LENGTH = "Inference-Header-Content-Length"
MODEL_VERSION = "1"
_FLOAT = np.dtype("<f4")


class ProtocolError(InputError):
    """The request does not follow the protocol or does not fit the model (HTTP 400)."""


@dataclass(frozen=True)
class InferRequest:
    images: np.ndarray  # the model's input, checked: float32 (batch, 3, size, size) or uint8 (batch, size, size, 3)
    request_id: str | None
    binary_output: bool
    classification: int  # 0: the logits; k: the top k as "score:index:label" strings


def parse_infer_request(body: bytes, header_length: str | None, *, preprocessing: Preprocessing, max_batch: int,
                        num_classes: int) -> InferRequest:
    header, binary = _split_body(body, header_length)
    request = _object(_load_json(header), "the request")
    images, used = _read_input(request.get("inputs"), binary, preprocessing, max_batch)
    if used != len(binary):
        raise ProtocolError(f"{len(binary) - used} bytes after the JSON header belong to no input")
    parameters = _object(request.get("parameters", {}), "'parameters'")
    binary_output, classification = _read_outputs(request.get("outputs"), parameters, num_classes)
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(f"'id' is {type(request_id).__name__}; expected a string")
    return InferRequest(images, request_id, binary_output, classification)


def encode_infer_response(request: InferRequest, logits: np.ndarray, model_name: str,
                          labels: tuple[str, ...]) -> tuple[bytes, dict[str, str]]:
    """The body and the headers that go with it."""
    output: dict = {"name": OUTPUT_NAME}
    if request.classification:
        strings = classification_strings(logits, labels, request.classification)
        output.update(datatype="BYTES", shape=[len(logits), request.classification])
        raw = b"".join(struct.pack("<I", len(s)) + s for s in (s.encode() for s in strings))
        values = strings
    else:
        output.update(datatype=DATATYPE, shape=list(logits.shape))
        raw = logits.astype(_FLOAT, copy=False).tobytes()
        values = logits.ravel().tolist()  # float32 -> float is exact, and json writes it back exactly
    header = {"model_name": model_name, "model_version": MODEL_VERSION, "outputs": [output]}
    if request.request_id is not None:
        header["id"] = request.request_id
    if not request.binary_output:
        output["data"] = values
        return json.dumps(header).encode(), {"content-type": "application/json"}
    output["parameters"] = {"binary_data_size": len(raw)}
    head = json.dumps(header).encode()
    return head + raw, {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}


def classification_strings(logits: np.ndarray, labels: tuple[str, ...], k: int) -> list[str]:
    """Triton's classification output, row by row: "<logit>:<class index>:<label>", best first."""
    best = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return [f"{row[i]:f}:{i}:{labels[i]}" for row, order in zip(logits, best) for i in order]


def model_metadata(name: str, platform: str, preprocessing: Preprocessing, num_classes: int) -> dict:
    datatype, _, dims = input_tensor(preprocessing)
    return {
        "name": name,
        "versions": [MODEL_VERSION],
        "platform": platform,
        "inputs": [{"name": INPUT_NAME, "datatype": datatype, "shape": [-1, *dims]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": DATATYPE, "shape": [-1, num_classes]}],
    }


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise ProtocolError(f"{HEADER_LENGTH} is {header_length!r}; expected the JSON header's length, "
                            f"1 to {len(body)} (the body's length)")
    return body[:length], body[length:]


def _load_json(text: bytes):
    try:
        return json.loads(text)
    except UnicodeDecodeError:
        raise ProtocolError("the JSON header is not UTF-8 text (binary tensors need "
                            f"the {HEADER_LENGTH} header)") from None
    except ValueError as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None
    except RecursionError:  # arrays nested thousands deep: the decoder's stack, not a server fault
        raise ProtocolError("malformed JSON: nested too deeply") from None


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is a JSON {type(value).__name__}; expected an object")
    return value


def _read_input(inputs, binary: bytes, preprocessing: Preprocessing, max_batch: int) -> tuple[np.ndarray, int]:
    """The image batch, checked, and how many bytes of `binary` it used."""
    datatype, _, dims = input_tensor(preprocessing)
    item = np.dtype(preprocessing.input_dtype).newbyteorder("<")
    expected = f"[batch, {', '.join(map(str, dims))}]"
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise ProtocolError(f"'inputs' must list one tensor, {INPUT_NAME!r} ({datatype} {expected})")
    tensor = _object(inputs[0], "the input")
    if tensor.get("name") != INPUT_NAME:
        raise ProtocolError(f"unknown input {tensor.get('name')!r}; the model's input is {INPUT_NAME!r}")
    if tensor.get("datatype") != datatype:
        what = " (raw RGB pixels after resize and crop)" if preprocessing.takes_pixels else ""
        raise ProtocolError(f"input {INPUT_NAME!r} has datatype {tensor.get('datatype')!r}; expected {datatype}{what}")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or len(shape) != 4 or not all(type(d) is int for d in shape)
            or shape[1:] != list(dims)):
        raise ProtocolError(f"input {INPUT_NAME!r} has shape {shape!r}; expected {expected}")
    if not 1 <= shape[0] <= max_batch:
        raise ProtocolError(f"input {INPUT_NAME!r} has a batch of {shape[0]}; this server takes 1 to {max_batch}"
                            " images per request (--max-batch)")
    count = int(np.prod(shape))
    parameters = _object(tensor.get("parameters", {}), "the input's 'parameters'")
    if "shared_memory_region" in parameters:
        raise ProtocolError("shared memory is not supported; send the tensor in the request")
    size = parameters.get("binary_data_size")
    if size is None:
        images = _json_tensor(tensor.get("data"), count, item).reshape(shape)
        used = 0
    else:
        if "data" in tensor:
            raise ProtocolError(f"input {INPUT_NAME!r} has both 'data' and binary_data_size; expected one")
        if type(size) is not int or size != count * item.itemsize:
            raise ProtocolError(f"input {INPUT_NAME!r} has binary_data_size {size!r}; shape {shape} of {datatype}"
                                f" needs {count * item.itemsize}")
        if size > len(binary):
            raise ProtocolError(f"input {INPUT_NAME!r} needs {size} bytes after the JSON header; the body has "
                                f"{len(binary)}")
        images = np.frombuffer(binary, item, count).reshape(shape)
        used = size
    return check_batch(images.astype(item.newbyteorder("=")), BatchBounds(1, max_batch), preprocessing.crop,
                       preprocessing.takes_pixels), used


def _json_tensor(data, count: int, item: np.dtype) -> np.ndarray:
    if data is None:
        raise ProtocolError(f"input {INPUT_NAME!r} has neither 'data' nor a binary_data_size parameter")
    try:
        array = np.array(data)
    except (ValueError, TypeError):
        array = np.array(None)
    if array.dtype.kind not in "iuf":  # strings, booleans, nulls and ragged lists
        raise ProtocolError(f"input {INPUT_NAME!r} 'data' must be numbers (flat or nested lists, row-major)")
    if array.size != count:
        raise ProtocolError(f"input {INPUT_NAME!r} 'data' has {array.size} values; its shape needs {count}")
    if item.kind == "u" and array.size and (array.dtype.kind == "f" or array.min() < 0 or array.max() > 255):
        raise ProtocolError(f"input {INPUT_NAME!r} 'data' must be whole numbers 0 to 255 (UINT8 pixels)")
    return array


def _read_outputs(outputs, parameters: dict, num_classes: int) -> tuple[bool, int]:
    binary = parameters.get("binary_data_output", False)
    if not outputs:  # none named: all of them (the one)
        return _flag(binary, "binary_data_output"), 0
    if not isinstance(outputs, list) or len(outputs) != 1:
        raise ProtocolError(f"'outputs' must list at most one tensor, {OUTPUT_NAME!r}")
    output = _object(outputs[0], "the output")
    if output.get("name") != OUTPUT_NAME:
        raise ProtocolError(f"unknown output {output.get('name')!r}; the model's output is {OUTPUT_NAME!r}")
    options = _object(output.get("parameters", {}), "the output's 'parameters'")
    if "shared_memory_region" in options:
        raise ProtocolError("shared memory is not supported; outputs come back in the response")
    classification = options.get("classification", 0)
    if type(classification) is not int or not 0 <= classification <= num_classes:
        raise ProtocolError(f"classification is {classification!r}; expected 1 to {num_classes} (the class count)")
    return _flag(options.get("binary_data", binary), "binary_data"), classification


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{name} is {value!r}; expected true or false")
    return value
