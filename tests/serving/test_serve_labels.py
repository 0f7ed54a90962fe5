"""`serve CHECKPOINT --labels FILE` (issue 35 item 1): a checkpoint is served eagerly with the class names the
file gives, as predict, classify and verify name them (tests/cli/test_cli.py checks the refusals)."""

import json

import torch

from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.runtimes import TorchRuntime


def test_a_checkpoint_is_served_with_the_labels_given(console, server_process, photos, tmp_path):
    checkpoint, labels = tmp_path / "ckpt.pt", tmp_path / "classes.txt"
    torch.save(seeded_alexnet(10, seed=6).state_dict(), checkpoint)
    labels.write_text("".join(f"species {i}\n" for i in range(10)))
    server = server_process(console, checkpoint, "--labels", labels, "--no-warmup")
    try:
        assert "10 classes" in server.log[0] and "torch eager cpu" in server.log[0]
        status, _, body = server.request("POST", "/v2/models/alexnet/classify?top_k=3", photos[1].read_bytes(),
                                         {"Content-Type": "image/png"})
        assert status == 200, body
        expected = TorchRuntime(checkpoint).classify(photos[1], top_k=3)[0]
        assert [p["label"] for p in json.loads(body)["predictions"]] == [
            f"species {label.removeprefix('class_')}" for label, _ in expected]
    finally:
        assert server.stop() == 0, "".join(server.log)
