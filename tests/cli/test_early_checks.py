"""Mistakes before work (issue 35 item 2): every export command that calibrates refuses calibration images
that cannot work in one line, exit 2, naming --calib-dir and the number needed, before the FP32 export
starts (exporter/calibration/checks.py, run by every pipeline call's check_arguments)."""

import os
import time

import pytest
from click.testing import CliRunner

from alexnet_export.cli.main import main
from alexnet_export.exporter.calibration.ranges import MIN_IMAGES
from alexnet_export.exporter.commands import declared_commands
from alexnet_export.runtimes.preprocess import find_images

CALIBRATING = [("onnx", "--precision", "int8"), ("onnx", "--precision", "int8-tensorrt"), ("trt", "--int8"),
               ("openvino", "--precision", "int8"),
               *((spec.name, "--precision", "int8") for spec in declared_commands())]
NEEDED = rf"calibration needs at least {MIN_IMAGES} \(--calib-dir\)$"


@pytest.fixture(scope="module")
def folders(tmp_path_factory, calib_dir):
    """An empty folder, one of 26 photos (what scikit-image's wheel ships), and one of MIN_IMAGES text
    files named .jpg, each an absolute path."""
    root = tmp_path_factory.mktemp("early")
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")
    (root / "photos").mkdir()
    for path in find_images(calib_dir)[:26]:
        os.link(path, root / "photos" / path.name)
    (root / "text").mkdir()
    for index in range(MIN_IMAGES):
        (root / "text" / f"img_{index:02d}.jpg").write_text("plain words, not a JPEG")
    return root


def _refused(arguments, folder):
    """The command run in-process (the installed CLI's group): its result and the seconds it took."""
    started = time.perf_counter()
    result = CliRunner().invoke(main, [*arguments, "--calib-dir", str(folder)], catch_exceptions=False)
    return result, time.perf_counter() - started


@pytest.mark.parametrize("arguments", CALIBRATING, ids=" ".join)
def test_every_calibrating_command_refuses_too_few_images_before_any_work(arguments, folders, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(arguments, folders / "empty")  # the command's modules imported once: not the check's time
    for folder, found in ((folders / "empty", 0), (folders / "photos", 26)):
        result, seconds = _refused(arguments, folder)
        assert result.exit_code == 2, result.output
        [line] = result.stderr.strip().splitlines()  # nothing before it: no model was loaded, nothing exported
        assert line.startswith(f"Error: found {found} image files under {folder} (")
        assert line.endswith(f"calibration needs at least {MIN_IMAGES} (--calib-dir)")
        assert seconds < 2, seconds
    assert list(tmp_path.iterdir()) == []


def test_images_that_cannot_be_read_and_a_missing_folder_are_refused_before_any_work(folders, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(("onnx", "--precision", "int8"), folders / "empty")
    result, seconds = _refused(("onnx", "--precision", "int8"), folders / "text")
    assert result.exit_code == 2 and seconds < 2, (result.output, seconds)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: only 0 of {MIN_IMAGES} images under {folders / 'text'} can be read;")
    assert "(first problem: cannot read " in line and line.endswith("(--calib-dir)")
    result, seconds = _refused(("trt", "--int8"), folders / "absent")
    assert result.exit_code == 2 and seconds < 2, (result.output, seconds)
    assert result.stderr.strip().splitlines() == [
        f"Error: calibration folder {folders / 'absent'} does not exist or is not a folder (--calib-dir)"]
    assert list(tmp_path.iterdir()) == []


def test_the_console_script_refuses_26_photos_before_the_fp32_export(cli, one_line_error, folders, tmp_path):
    """The issue's case, as a user runs it: it failed after the FP32 export and its parity table (8.4 s)."""
    started = time.perf_counter()
    result = cli("onnx", "--precision", "int8", "--calib-dir", folders / "photos", "-o", "m.int8-cpu.onnx", cwd=tmp_path)
    seconds = time.perf_counter() - started
    one_line_error(result, r"^Error: found 26 image files under .*photos \(.*\); " + NEEDED, code=2)
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""  # no progress, no parity table
    assert seconds < 15, seconds  # the toolkit's imports only: torch's take most of it
    assert list(tmp_path.iterdir()) == []
