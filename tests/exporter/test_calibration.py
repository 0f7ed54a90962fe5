import json
import shutil

import numpy as np
import pytest
from PIL import Image

from alexnet_export.exporter.calibration.ranges import (
    MIN_IMAGES,
    CalibrationError,
    calibration_ranges,
    find_images,
    load_calibration_set,
)
from alexnet_export.errors import InputError
from alexnet_export.models.spec import Preprocessing

SPEC = Preprocessing()


def test_finds_images_recursively_in_a_stable_order(calib_dir):
    found = find_images(calib_dir)
    assert len(found) == 90 and found == sorted(found)
    assert {p.parent.name for p in found} == {f"class_{i}" for i in range(5)}


def test_set_is_deterministic_and_holds_out_the_rest(calib_dir):
    first, again = load_calibration_set(calib_dir, 64, SPEC), load_calibration_set(calib_dir, 64, SPEC)
    assert first.images.shape == (64, 3, 224, 224) and first.holdout.shape == (26, 3, 224, 224)
    assert first.digest == again.digest
    np.testing.assert_array_equal(first.images, again.images)


def test_cache_hits_and_invalidates(small_onnx, calib_dir, tmp_path):
    calibration = load_calibration_set(calib_dir, 64, SPEC)
    ticks = []
    first = calibration_ranges(small_onnx, calibration, "minmax", tmp_path, tick=ticks.append)
    assert not first.cache_hit and first.path.is_file() and sum(ticks) == 64
    stamp = first.path.stat().st_mtime_ns
    ticks.clear()
    again = calibration_ranges(small_onnx, calibration, "minmax", tmp_path, tick=ticks.append)
    assert again.cache_hit and again.path == first.path and ticks == []  # no inference ran
    assert first.path.stat().st_mtime_ns == stamp
    # another method, or another image set, is another cache entry
    other_method = calibration_ranges(small_onnx, calibration, "entropy", tmp_path)
    assert not other_method.cache_hit and other_method.path != first.path
    changed = tmp_path / "changed"
    shutil.copytree(calib_dir, changed)
    first_image = find_images(changed)[0]
    Image.open(first_image).rotate(90).save(first_image)
    other_images = load_calibration_set(changed, 64, SPEC)
    assert other_images.digest != calibration.digest
    assert calibration_ranges(small_onnx, other_images, "minmax", tmp_path).path != first.path
    assert sorted(p.suffix for p in tmp_path.iterdir() if p.is_file()) == [".json"] * 3


def test_missing_empty_and_small_folders_fail_before_any_work(tmp_path, calib_dir):
    with pytest.raises(InputError, match="calibration folder .*absent does not exist"):
        load_calibration_set(tmp_path / "absent", 64, SPEC)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(CalibrationError, match=r"found 0 image files .* needs at least 64"):
        load_calibration_set(tmp_path / "empty", 64, SPEC)
    few = tmp_path / "few"
    few.mkdir()
    for path in find_images(calib_dir)[:10]:
        shutil.copy(path, few / path.name)
    with pytest.raises(CalibrationError, match="found 10 image files"):
        load_calibration_set(few, 64, SPEC)
    with pytest.raises(CalibrationError, match="asked to calibrate on 10 images; calibration needs at least 64"):
        load_calibration_set(calib_dir, 10, SPEC)


def test_unreadable_images_are_skipped_or_reported(tmp_path, calib_dir):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for path in find_images(calib_dir)[:60]:
        shutil.copy(path, mixed / path.name)
    for index in range(10):
        (mixed / f"broken_{index}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CalibrationError, match=r"only 60 of 70 images .* could be read.*first problem: cannot read"):
        load_calibration_set(mixed, 64, SPEC)
    for path in find_images(calib_dir)[60:70]:
        shutil.copy(path, mixed / path.name)
    calibration = load_calibration_set(mixed, 64, SPEC)
    assert len(calibration.images) == 64 and len(calibration.skipped) == 10


def test_unknown_method(small_onnx, calib_dir, tmp_path):
    with pytest.raises(CalibrationError, match="expected one of minmax, entropy, percentile"):
        calibration_ranges(small_onnx, load_calibration_set(calib_dir, 64, SPEC), "kl", tmp_path)


def test_small_folders_still_hold_images_out(calib_dir):
    calibration = load_calibration_set(calib_dir, 256, SPEC)  # 90 images: 64 calibrate, 26 verify
    assert len(calibration.images) == MIN_IMAGES and len(calibration.holdout) == 26


def _ranges(path) -> dict[str, tuple[float, float]]:
    """(lowest, highest) per tensor from ONNX Runtime's calibration cache (numpy values as JSON)."""
    data = json.loads(path.read_text())["data"]
    value = lambda v: float(np.ravel(v["data"] if isinstance(v, dict) else v)[0])  # noqa: E731
    return {name: (value(t["lowest"]), value(t["highest"])) for name, t in data.items()}


def test_entropy_and_percentile_search_inside_the_observed_range(small_onnx, calib_dir, tmp_path):
    """With ONNX Runtime's default entropy options the search had one candidate, the full range,
    so "entropy" gave min/max ranges; each method must give ranges of its own."""
    calibration = load_calibration_set(calib_dir, 64, SPEC)
    minmax, entropy, percentile = (_ranges(calibration_ranges(small_onnx, calibration, method, tmp_path).path)
                                   for method in ("minmax", "entropy", "percentile"))
    assert minmax.keys() == entropy.keys() == percentile.keys()
    for ranges in (entropy, percentile):
        narrower = [name for name in minmax if ranges[name][1] - ranges[name][0] < 0.99 * (minmax[name][1] - minmax[name][0])]
        assert len(narrower) > len(minmax) // 2, f"only {len(narrower)} of {len(minmax)} ranges are narrower than min/max"
        for name in minmax:  # a search never widens the observed range (percentile is symmetric in |x|)
            assert ranges[name][1] <= max(abs(minmax[name][0]), abs(minmax[name][1])) * 1.001


def test_the_methods_options_are_part_of_the_cache_key(small_onnx, calib_dir, tmp_path, monkeypatch):
    import alexnet_export.exporter.calibration.ranges as calibration_module

    calibration = load_calibration_set(calib_dir, 64, SPEC)
    first = calibration_ranges(small_onnx, calibration, "percentile", tmp_path)
    monkeypatch.setitem(calibration_module.METHOD_OPTIONS, "percentile", {"percentile": 99.0})
    other = calibration_ranges(small_onnx, calibration, "percentile", tmp_path)
    assert not other.cache_hit and other.path != first.path and other.path.name.endswith("-percentile-99.0.json")
    assert _ranges(other.path) != _ranges(first.path)


def test_the_cache_key_ignores_what_does_not_change_the_ranges(small_onnx, tmp_path):
    """Exporting again with only --labels (or another name, or another tool version) reuses the ranges; other
    weights are other ranges. (test_cache_hits_and_invalidates shows that one name is one cache entry.)"""
    import onnx

    from alexnet_export.exporter.calibration.ranges import CalibrationSet, cache_name

    none = np.empty((0, 3, 224, 224), np.float32)
    calibration = CalibrationSet(none, none, "0123456789abcdef" * 4, ())  # the key reads the set's digest only
    model = onnx.load(str(small_onnx))
    for prop in model.metadata_props:
        if prop.key == "labels":
            prop.value = json.dumps([f"kind {i}" for i in range(10)])
    model.metadata_props.add(key="note", value="exported again")
    model.doc_string, model.producer_version = "other words", "9.9"
    relabelled = tmp_path / "relabelled.onnx"
    onnx.save(model, str(relabelled))
    assert relabelled.read_bytes() != small_onnx.read_bytes()
    original = cache_name(small_onnx, calibration, "percentile")
    assert cache_name(relabelled, calibration, "percentile") == original
    model.graph.initializer[0].raw_data = bytes(len(model.graph.initializer[0].raw_data))  # other weights
    onnx.save(model, str(tmp_path / "other.onnx"))
    assert cache_name(tmp_path / "other.onnx", calibration, "percentile") != original


def test_a_process_reads_a_folders_calibration_images_once(calib_dir, tmp_path):
    """`optimize` makes several calibrated files from one folder: the images are decoded once, and again only
    when a file in the folder changes."""
    import os

    from alexnet_export.events import Advance
    from alexnet_export.exporter.calibration.images import CalibrationOptions, images_for

    folder = tmp_path / "photos"
    shutil.copytree(calib_dir, folder)
    options = CalibrationOptions(folder, 64)
    reads = []

    def read():
        events = []
        calibration_set, inputs, verified_on, _ = images_for(options, SPEC, True, events.append)
        reads.append(max((e.done for e in events if isinstance(e, Advance) and e.task == "reading calibration images"),
                         default=0))
        return calibration_set, inputs

    first, inputs = read()
    again, inputs_again = read()
    assert again is first and inputs_again is inputs and reads == [90, 0]
    changed = find_images(folder)[5]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    third, _ = read()
    assert reads[-1] > 0 and third.digest == first.digest  # read again; the same bytes, the same set
