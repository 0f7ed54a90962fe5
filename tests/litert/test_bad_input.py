"""Bad input to `litert`, and .tflite files the runtime must refuse: one line each, exit 1, nothing
left behind, the previous good file kept."""

import json
import shutil

import pytest

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install '.[litert]')")


@pytest.fixture
def good_pair(fp32_tflite, tmp_path):
    """A good .tflite and its sidecar in an empty folder, as an earlier export left them."""
    shutil.copy(fp32_tflite.path, tmp_path / "m.tflite")
    shutil.copy(fp32_tflite.sidecar, tmp_path / "m.tflite.json")
    return {p.name: p.read_bytes() for p in tmp_path.iterdir()}


def _unchanged(folder, before):
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing new, nothing lost


def test_a_checkpoint_the_converter_cannot_take_leaves_the_good_file(cli, one_line_error, good_pair, tmp_path,
                                                                     tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights") / "not-alexnet.pt"
    import torch

    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, weights)
    result = cli("litert", "--weights", weights, "-o", "m.tflite", cwd=tmp_path)
    one_line_error(result, r"^Error: .*not-alexnet.pt is not an AlexNet state dict: expected keys .* found only features.0.weight$")
    _unchanged(tmp_path, good_pair)


def test_a_calibration_folder_too_small_leaves_the_good_file(cli, one_line_error, good_pair, calib_dir, tmp_path,
                                                              tmp_path_factory):
    few = tmp_path_factory.mktemp("few")
    for image in sorted(calib_dir.rglob("*.jpg"))[:10]:
        shutil.copy(image, few / image.name)
    result = cli("litert", "--precision", "int8", "--calib-dir", few, "-o", "m.tflite", cwd=tmp_path)
    one_line_error(result, r"^Error: found 10 image files under .*few.*; calibration needs at least 64 \(--calib-dir\)$",
                   code=2)  # found before any work (exporter/calibration/checks.py): a usage mistake
    _unchanged(tmp_path, good_pair)


def _refused(cli, path, photo):
    result = cli("predict", path, photo)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


def test_corrupt_and_truncated_files_are_refused_in_one_line(cli, fp32_tflite, photos, tmp_path):
    sidecar = json.loads(fp32_tflite.sidecar.read_text())
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(fp32_tflite.path.read_bytes()[:5_000_000])
    (tmp_path / "cut.tflite.json").write_text(fp32_tflite.sidecar.read_text())
    assert "describes a .tflite of 181" in _refused(cli, truncated, photos[0])  # the sidecar is another file's
    (tmp_path / "cut.tflite.json").write_text(json.dumps({**sidecar, "tflite_bytes": 5_000_000}))
    assert "cut.tflite is damaged or truncated (5000000 bytes)" in _refused(cli, truncated, photos[0])
    garbage = tmp_path / "noise.tflite"
    garbage.write_bytes(bytes(range(256)) * 64)
    (tmp_path / "noise.tflite.json").write_text(json.dumps({**sidecar, "tflite_bytes": 256 * 64}))
    assert "noise.tflite is not a LiteRT (.tflite) flatbuffer" in _refused(cli, garbage, photos[0])
    lone = tmp_path / "lone.tflite"
    shutil.copy(fp32_tflite.path, lone)
    assert "lone.tflite.json is missing" in _refused(cli, lone, photos[0])


def _foreign(module, example, path, sidecar):
    """`module` converted by litert-torch (someone else's .tflite), with a sidecar of the right size."""
    import litert_torch

    from alexnet_export.exporter.litert.convert import converter_quiet
    from alexnet_export.runtimes.sidecar import write_sidecar

    with converter_quiet():
        path.write_bytes(litert_torch.convert(module.eval(), example).model_content())
    write_sidecar(path, {**sidecar, "tflite_bytes": path.stat().st_size})
    return path


def test_a_tflite_made_by_someone_else_is_refused_in_one_line(cli, fp32_tflite, photos, tmp_path):
    import torch
    from torch import nn

    sidecar = json.loads(fp32_tflite.sidecar.read_text())
    small = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))
    small(torch.zeros(1, 3, 32, 32))
    other_shape = _foreign(small, (torch.zeros(1, 3, 32, 32),), tmp_path / "shape.tflite", sidecar)
    assert "shape.tflite takes FLOAT32 [1, 3, 32, 32] and gives FLOAT32 [1, 10]; expected one (N, 224, 224, 3)" \
        in _refused(cli, other_shape, photos[0])

    class Pixels(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 10)

        def forward(self, x):
            return self.fc(x.float().mean(dim=(1, 2)))

    other_dtype = _foreign(Pixels(), (torch.zeros(1, 224, 224, 3, dtype=torch.uint8),), tmp_path / "u8.tflite",
                           sidecar)
    assert "u8.tflite takes UINT8 [1, 224, 224, 3]" in _refused(cli, other_dtype, photos[0])
