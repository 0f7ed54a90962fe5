import threading

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from alexnet_export.errors import InputError, ModelLoadError, OptionError, ProviderError
from alexnet_export.runtimes import OnnxRuntime, open_runtime
from alexnet_export.runtimes.preprocess import preprocess_batch


@pytest.fixture(scope="module")
def batch(onnx_runtime, real_images):
    return preprocess_batch(real_images[:4], onnx_runtime.metadata.preprocessing)


def test_reads_its_own_description(onnx_runtime, small_metadata):
    assert onnx_runtime.metadata == small_metadata
    assert onnx_runtime.providers == ("CPUExecutionProvider",) and onnx_runtime.device == "CPUExecutionProvider"
    assert onnx_runtime.bounds.minimum == 1 and onnx_runtime.bounds.maximum is None


def test_default_providers_pick_one_that_loads_and_say_so(small_onnx):
    runtime = OnnxRuntime(small_onnx)
    assert runtime.providers == tuple(runtime.session.get_providers())
    assert runtime.providers[-1] == "CPUExecutionProvider"


def test_unknown_provider_is_an_error_not_a_fallback(small_onnx):
    with pytest.raises(ProviderError, match="NoSuchExecutionProvider is not available.*available: .*CPUExecutionProvider"):
        OnnxRuntime(small_onnx, providers=["NoSuchExecutionProvider"])


@pytest.mark.parametrize("providers", [
    "CPUExecutionProvider",
    ("CPUExecutionProvider",),
    ["CPUExecutionProvider"],
    ("CPUExecutionProvider", {}),
    [("CPUExecutionProvider", {})],
    (("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"}),),
], ids=["name", "tuple of names", "list of names", "pair", "list of pairs", "tuple of pairs"])
def test_providers_take_names_pairs_and_sequences_of_them(small_onnx, providers):
    assert OnnxRuntime(small_onnx, providers=providers).providers == ("CPUExecutionProvider",)


def test_a_tuple_of_names_is_names_not_a_pair(small_onnx):
    """Two names in a tuple used to be taken as one (name, options) pair."""
    with pytest.raises(ProviderError, match=r"^execution provider NoSuchExecutionProvider is not available"):
        OnnxRuntime(small_onnx, providers=("NoSuchExecutionProvider", "CPUExecutionProvider"))
    with pytest.raises(ProviderError, match="NoSuchExecutionProvider is not available"):
        OnnxRuntime(small_onnx, providers=[("CPUExecutionProvider", {}), "NoSuchExecutionProvider"])


@pytest.mark.parametrize("providers, found", [(["CPUExecutionProvider", 3], "holds 3"), (7, "is 7")])
def test_providers_of_another_shape_are_named(small_onnx, providers, found):
    with pytest.raises(OptionError, match=rf"^providers {found}; expected a provider name, a \(name, options dict\)"):
        OnnxRuntime(small_onnx, providers=providers)


def test_spinning_can_be_turned_off(small_onnx):
    key = "session.intra_op.allow_spinning"
    assert OnnxRuntime(small_onnx, spinning=False).session.get_session_options().get_session_config_entry(key) == "0"
    with pytest.raises(RuntimeError, match="does not have configuration"):  # unset: ONNX Runtime's default, spinning
        OnnxRuntime(small_onnx).session.get_session_options().get_session_config_entry(key)


@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                    reason="this onnxruntime build has no CUDA provider")
def test_cuda_provider_that_cannot_load_is_an_error(small_onnx):
    try:
        runtime = OnnxRuntime(small_onnx, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    except ProviderError as exc:
        assert "CUDAExecutionProvider failed to load" in str(exc)
    else:  # a machine with a working GPU
        assert runtime.providers[0] == "CUDAExecutionProvider"


def test_predict_gives_logits(onnx_runtime, batch):
    logits = onnx_runtime.predict(batch)
    assert logits.shape == (4, 10) and logits.dtype == np.float32 and np.isfinite(logits).all()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda b: b.astype(np.float64), "dtype is float64; expected float32"),
        (lambda b: b.astype(np.float16), "dtype is float16; expected float32"),
        (lambda b: (b * 50).clip(0, 255).astype(np.uint8), "dtype is uint8; expected float32 .*classify"),
        (lambda b: b[0], r"\(rank 3\); expected rank 4 \(batch, 3, 224, 224\)"),
        (lambda b: np.ascontiguousarray(b.transpose(0, 2, 3, 1)), "224 channels .*looks like NHWC"),
        (lambda b: b[:, :1], "1 channels"),
        (lambda b: b[:, :, :200, :200], "spatial size 200x200; expected 224x224"),
        (lambda b: b[:0], "batch size is 0; this model takes a batch of >= 1"),
        (lambda b: np.where(np.arange(b.size).reshape(b.shape) == 5, np.nan, b).astype(np.float32), "1 NaN or infinite"),
        (lambda b: np.full_like(b, np.inf), "NaN or infinite"),
        (lambda b: b.tolist(), r"takes a numpy array or a DLPack array \(torch, CuPy\), got list"),
    ],
)
def test_bad_inputs_are_named_before_onnx_runtime_sees_them(onnx_runtime, batch, make, message):
    with pytest.raises(InputError, match=message):
        onnx_runtime.predict(make(batch))


def test_fixed_batch_model_names_its_batch(tmp_path, small_model, small_metadata, batch):
    from alexnet_export.exporter.onnx.convert import export_onnx

    fixed = OnnxRuntime(export_onnx(small_model, tmp_path / "b2.onnx", small_metadata, batch=2, verify=False).path)
    with pytest.raises(InputError, match="batch size is 4; this model takes a batch of exactly 2"):
        fixed.predict(batch)
    # classify splits and pads to fit, and gives what the dynamic model gives.
    images = [Image.new("RGB", (300, 250), color) for color in ("red", "green", "blue")]
    dynamic = OnnxRuntime(export_onnx(small_model, tmp_path / "dyn.onnx", small_metadata, verify=False).path)
    assert [r[0][0] for r in fixed.classify(images, top_k=1)] == [r[0][0] for r in dynamic.classify(images, top_k=1)]


def test_non_contiguous_views_match_contiguous(onnx_runtime, batch):
    expected = onnx_runtime.predict(batch)
    reversed_view = batch[::-1]
    assert not reversed_view.flags.c_contiguous
    np.testing.assert_array_equal(onnx_runtime.predict(reversed_view), expected[::-1])
    strided = np.zeros((4, 3, 224, 448), np.float32)
    strided[..., ::2] = batch
    np.testing.assert_array_equal(onnx_runtime.predict(strided[..., ::2]), expected)


def test_threads_share_one_runtime_and_get_their_own_results(onnx_runtime, real_images):
    inputs = [preprocess_batch([image], onnx_runtime.metadata.preprocessing) for image in real_images[:16]]
    serial = [onnx_runtime.predict(x) for x in inputs]
    results, errors = [None] * 16, []
    start = threading.Barrier(16)

    def work(i):
        try:
            start.wait()
            for _ in range(3):
                results[i] = onnx_runtime.predict(inputs[i])
        except Exception as exc:  # collected, so a failing thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)


def test_classify_accepts_paths_pil_images_and_arrays(onnx_runtime, photos):
    path = photos[0]
    image = Image.open(path)
    array = np.asarray(image.convert("RGB"))
    by_path, by_image, by_array = (onnx_runtime.classify(x, top_k=3)[0] for x in (path, image, array))
    assert by_path == by_image == by_array
    assert len(by_path) == 3 and all(label.startswith("class_") for label, _ in by_path)
    probabilities = [p for _, p in by_path]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1


def test_classify_agrees_with_predict(onnx_runtime, photos):
    top = onnx_runtime.classify(list(photos[:3]), top_k=10)
    logits = onnx_runtime.predict(preprocess_batch(photos[:3], onnx_runtime.metadata.preprocessing))
    for row, predictions in zip(logits, top):
        probabilities = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        assert [label for label, _ in predictions] == [f"class_{i}" for i in np.argsort(-probabilities)]
        np.testing.assert_allclose([p for _, p in predictions], np.sort(probabilities)[::-1], rtol=1e-5)


@pytest.mark.parametrize("top_k", [0, 11, "3"])
def test_classify_checks_top_k(onnx_runtime, photos, top_k):
    with pytest.raises(InputError, match="top_k"):
        onnx_runtime.classify(photos[0], top_k=top_k)


def test_classify_with_no_images(onnx_runtime):
    with pytest.raises(InputError, match="no images"):
        onnx_runtime.classify([])


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all" * 10], ids=["empty", "garbage"])
def test_unloadable_files_give_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="ONNX Runtime cannot load .*bad.onnx"):
        OnnxRuntime(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        OnnxRuntime(tmp_path / "absent.onnx")
    (tmp_path / "m.mlmodel").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"suffix '\.mlmodel'; expected one of \.onnx, \.ort, \.pt"):
        open_runtime(tmp_path / "m.mlmodel")


def test_open_runtime_picks_the_backend_by_suffix(small_onnx):
    assert isinstance(open_runtime(small_onnx, providers=["CPUExecutionProvider"]), OnnxRuntime)


@pytest.mark.skipif("TensorrtExecutionProvider" not in ort.get_available_providers(),
                    reason="this onnxruntime build has no TensorRT provider")
def test_tensorrt_provider_cache_is_explicit(small_onnx, tmp_path):
    try:
        runtime = OnnxRuntime(small_onnx, tensorrt_cache_dir=tmp_path / "trt-cache")
    except ProviderError as exc:  # no TensorRT libraries or GPU here: an error, never a quiet CPU run
        assert "TensorrtExecutionProvider" in str(exc)
    else:
        assert runtime.providers[0] == "TensorrtExecutionProvider"
        runtime.predict(np.zeros((1, 3, 224, 224), np.float32))
        assert any((tmp_path / "trt-cache").iterdir())
