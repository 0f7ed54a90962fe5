"""`sign`, `verify-signature`, `--sign-key` and `--trusted-key`, run as a user would."""

import os

from alexnet_export.runtimes.signing import verify_model


def test_sign_then_verify_then_predict(cli, tmp_path, small_onnx, signing_keys, photos):
    os.link(small_onnx, tmp_path / "alexnet.onnx")
    signed = cli("sign", "alexnet.onnx", "--key", signing_keys.private, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.startswith("signed alexnet.onnx: alexnet.onnx.sig (")
    checked = cli("verify-signature", "alexnet.onnx", "--trusted-key", signing_keys.public, cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.startswith("verified alexnet.onnx ("), checked.stderr
    predicted = cli("predict", "alexnet.onnx", photos[0], "--top-k", "1", "--trusted-key", signing_keys.public,
                    cwd=tmp_path)
    assert predicted.returncode == 0 and predicted.stdout.startswith(f"{photos[0]}:"), predicted.stderr


def test_onnx_export_signs_with_sign_key(cli, tmp_path, signing_keys):
    result = cli("onnx", "--num-classes", "10", "--seed", "3", "--no-verify", "-o", "m.onnx",
                 "--sign-key", signing_keys.private, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.sig"]
    assert verify_model(tmp_path / "m.onnx", signing_keys.public).files == ("m.onnx",)


def test_key_problems_name_their_flag(cli, tmp_path, small_onnx, signing_keys, one_line_failure):
    os.link(small_onnx, tmp_path / "alexnet.onnx")
    line = one_line_failure(cli("sign", "alexnet.onnx", "--key", signing_keys.public, cwd=tmp_path), alone=True)
    assert line.startswith("Error: cannot sign with ") and line.endswith(" (--key)")
    assert not (tmp_path / "alexnet.onnx.sig").exists()
    cli("sign", "alexnet.onnx", "--key", signing_keys.private, cwd=tmp_path)
    line = one_line_failure(cli("verify-signature", "alexnet.onnx", "--trusted-key", signing_keys.private,
                                 cwd=tmp_path), alone=True)
    assert line.startswith("Error: cannot use ") and line.endswith(" (--trusted-key)")
    usage = cli("sign", "alexnet.onnx", "--key", signing_keys.private, "--chain", signing_keys.ca, cwd=tmp_path)
    assert usage.returncode == 2 and "--certificate and --chain go together" in usage.stderr


def test_verify_and_bench_refuse_unsigned_models(cli, tmp_path, small_onnx, signing_keys, photos):
    os.link(small_onnx, tmp_path / "alexnet.onnx")
    (tmp_path / "images").mkdir()
    os.link(photos[0], tmp_path / "images" / photos[0].name)
    expected = ("Error: refused alexnet.onnx: it is not signed (no alexnet.onnx.sig beside it); expected a signature"
                " that verifies with owner.pub.pem")
    for command in (["verify", "alexnet.onnx", "--images", "images", "--reference", "alexnet.onnx"],
                    ["bench", "alexnet.onnx", "--batch-sizes", "1", "--iterations", "1", "--no-cold-start"]):
        result = cli(*command, "--trusted-key", signing_keys.public, cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1] == expected, command  # after bench's progress lines
