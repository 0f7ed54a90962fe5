"""Generated Triton repositories, parsed with Triton's own ModelConfig protobuf."""

import json

import pytest
from google.protobuf import text_format

from alexnet_export.serving.triton_repo import RepositoryError, ServingOptions, add_engine, add_onnx
from alexnet_export.runtimes.tensorrt.sidecar import sidecar_path


def _parse(pb2, folder):
    return text_format.Parse((folder / "config.pbtxt").read_text(), pb2.ModelConfig())


def test_onnx_model_config_matches_the_model(tmp_path, small_onnx, model_config_pb2, small_metadata):
    entry = add_onnx(tmp_path / "repo", small_onnx, ServingOptions(max_batch=16, instances=2, preferred_batch=(4, 8),
                                                                    max_queue_delay_us=250))
    config = _parse(model_config_pb2, entry.folder)
    pb2 = model_config_pb2
    assert config.name == entry.name == "small" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 16
    (image_input,), (logits,) = config.input, config.output
    assert (image_input.name, image_input.data_type, list(image_input.dims)) == ("images", pb2.TYPE_FP32, [3, 224, 224])
    assert (logits.name, logits.data_type, list(logits.dims)) == ("logits", pb2.TYPE_FP32, [10])
    assert logits.label_filename == "labels.txt"
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    (group,) = config.instance_group
    assert group.count == 2 and group.kind == pb2.ModelInstanceGroup.KIND_CPU
    assert (entry.folder / "labels.txt").read_text().split("\n")[:10] == list(small_metadata.labels)
    assert (entry.folder / "1" / "model.onnx").read_bytes() == small_onnx.read_bytes()


def test_pixel_model_config_takes_uint8_and_both_warm_up(tmp_path, small_onnx, pixel_onnx, model_config_pb2):
    pb2 = model_config_pb2
    options = ServingOptions(max_batch=16, preferred_batch=(4, 8))
    pixel = _parse(pb2, add_onnx(tmp_path, pixel_onnx, options).folder)
    (image_input,) = pixel.input
    assert (image_input.data_type, image_input.format, list(image_input.dims)) == (
        pb2.TYPE_UINT8, pb2.ModelInput.FORMAT_NHWC, [224, 224, 3])
    assert pixel.output[0].data_type == pb2.TYPE_FP32
    for config, data_type, dims in ((pixel, pb2.TYPE_UINT8, [224, 224, 3]),
                                    (_parse(pb2, add_onnx(tmp_path, small_onnx, options).folder), pb2.TYPE_FP32,
                                     [3, 224, 224])):
        # Triton runs these before it marks the model ready: 1, the preferred sizes and max_batch.
        assert [w.batch_size for w in config.model_warmup] == [1, 4, 8, 16]
        for warmup in config.model_warmup:
            tensor = warmup.inputs["images"]
            assert (tensor.data_type, list(tensor.dims), tensor.zero_data) == (data_type, dims, True)


def test_tensorrt_accelerator_for_onnx_on_gpu(tmp_path, small_onnx, model_config_pb2):
    entry = add_onnx(tmp_path, small_onnx, ServingOptions(kind="gpu", onnx_tensorrt=True))
    config = _parse(model_config_pb2, entry.folder)
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP32"
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_engine_model_config(tmp_path, model_config_pb2, tensorrt_engine):
    labels = [f"thing {i}" for i in range(7)]
    engine = tensorrt_engine(tmp_path / "alexnet.engine", labels, max_batch=32)
    entry = add_engine(tmp_path / "repo", engine, ServingOptions(kind="gpu", max_batch=32))
    config = _parse(model_config_pb2, entry.folder)
    assert config.platform == "tensorrt_plan" and entry.name == "alexnet_trt" and list(config.output[0].dims) == [7]
    assert (entry.folder / "1" / "model.plan").read_bytes() == b"engine bytes"
    assert (entry.folder / "labels.txt").read_text().splitlines() == labels
    with pytest.raises(RepositoryError, match="exceeds the engine's profile maximum 32"):
        add_engine(tmp_path / "repo2", engine, ServingOptions(kind="gpu", max_batch=64))
    with pytest.raises(RepositoryError, match="use kind 'gpu'"):
        add_engine(tmp_path / "repo3", engine, ServingOptions())


def test_an_engine_of_tensorrt_for_rtx_is_not_for_triton(tmp_path):
    engine = tmp_path / "alexnet.engine"
    engine.write_bytes(b"engine bytes")
    sidecar_path(engine).write_text(json.dumps({
        "format": 2, "builder": {"name": "TensorRT for RTX", "version": "1.7.1.116", "version_compatible": False},
        "targets": {"compute_capabilities": ["8.6", "8.9"]}, "precision": "fp16",
        "batch": {"min": 1, "opt": 8, "max": 32}, "metadata": {}}))
    with pytest.raises(RepositoryError, match=r"built by TensorRT for RTX 1.7.1.116, ahead of time without a GPU,"
                                              r" whose engines Triton's TensorRT backend cannot load"):
        add_engine(tmp_path / "repo", engine, ServingOptions(kind="gpu"))
    assert not (tmp_path / "repo").exists()


def test_engine_without_a_class_count_has_the_default(tmp_path, model_config_pb2):
    """A sidecar's metadata without num_classes reads as ImageNet's 1000, labels included."""
    engine = tmp_path / "alexnet.plan"
    engine.write_bytes(b"engine bytes")
    sidecar_path(engine).write_text(json.dumps({
        "tensorrt_version": "10.13.0", "gpu_name": "NVIDIA L4", "compute_capability": "8.9", "precision": "fp32",
        "batch": {"min": 1, "opt": 8, "max": 32}, "metadata": {}}))
    entry = add_engine(tmp_path / "repo", engine, ServingOptions(kind="gpu"))
    assert list(_parse(model_config_pb2, entry.folder).output[0].dims) == [1000]
    assert (entry.folder / "labels.txt").read_text().splitlines()[0] == "tench"


def test_existing_models_are_not_overwritten_without_force(tmp_path, small_onnx):
    add_onnx(tmp_path, small_onnx, ServingOptions())
    (tmp_path / "small" / "config.pbtxt").write_text("mine")
    with pytest.raises(RepositoryError, match="already exists; pass force=True to replace it"):
        add_onnx(tmp_path, small_onnx, ServingOptions())
    assert (tmp_path / "small" / "config.pbtxt").read_text() == "mine"
    add_onnx(tmp_path, small_onnx, ServingOptions(), force=True)
    assert (tmp_path / "small" / "config.pbtxt").read_text().startswith('name: "small"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small"]  # no staging folder left


@pytest.mark.parametrize("options, message", [
    (dict(preferred_batch=(64,), max_batch=32), r"preferred batch sizes \[64\] must lie in 1..32"),
    (dict(kind="tpu"), "instance kind 'tpu' is unknown"),
    (dict(onnx_tensorrt=True), r"\(onnx_tensorrt\) needs kind 'gpu'"),
    (dict(instances=0), "instances is 0; expected at least 1"),
    (dict(max_queue_delay_us=-1), "max_queue_delay_us is -1; expected 0 or more"),
])
def test_bad_options(options, message):
    with pytest.raises(RepositoryError, match=message):
        ServingOptions(**options)


def test_cli(cli, tmp_path, small_onnx):
    result = cli("triton", "--repo", tmp_path / "repo", "--onnx", small_onnx, "--preferred-batch", "2,4")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "repo" / "small" / "config.pbtxt").is_file()
    again = cli("triton", "--repo", tmp_path / "repo", "--onnx", small_onnx)
    assert again.returncode == 2 and "Traceback" not in again.stderr  # refused before any work, as --force says
    assert again.stderr.strip().endswith("already exists; pass force=True to replace it (--force)")
    gpu_only = cli("triton", "--repo", tmp_path / "repo", "--onnx", small_onnx, "--onnx-tensorrt")
    assert gpu_only.returncode == 2 and gpu_only.stderr.strip().endswith("needs kind 'gpu' (--kind)")
    assert cli("triton", "--repo", tmp_path / "repo").returncode == 2
