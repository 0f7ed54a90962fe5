import numpy as np
import pytest

from alexnet_export.errors import ParityError
from alexnet_export.runtimes.verification.parity import compare_logits, enforce
from alexnet_export.models.precisions import FP32_GATE, ParityGate


@pytest.fixture
def logits():
    return np.random.default_rng(0).normal(0, 1.5, size=(64, 100)).astype(np.float32)


def test_identical_logits_are_perfect(logits):
    report = compare_logits(logits, logits.copy())
    assert report.max_abs == 0 and report.min_cosine == pytest.approx(1)
    assert report.top1_agreement == report.decisive_top1_agreement == report.top5_overlap == 1
    assert report.failures(FP32_GATE) == []


def test_small_noise_passes_and_large_noise_fails_with_figures(logits):
    rng = np.random.default_rng(1)
    close = compare_logits(logits, logits + rng.normal(0, 1e-6, logits.shape))
    assert enforce(close, FP32_GATE, "x") is close  # passed: the report comes back, nothing raised
    assert close.failures(FP32_GATE) == []
    assert 1e-7 < close.max_abs <= FP32_GATE.max_abs and close.max_rel <= FP32_GATE.max_rel
    assert close.min_cosine > 0.9999999 and close.top1_agreement == close.decisive_top1_agreement == 1
    noisy = logits + rng.normal(0, 1e-2, logits.shape).astype(np.float32)
    with pytest.raises(ParityError, match=r"max abs error .* > 0\.0001; relative error .* > 1e-05") as caught:
        enforce(compare_logits(logits, noisy), FP32_GATE, "candidate")
    assert caught.value.report.max_abs > 1e-3


def test_top1_counts_only_decisive_inputs():
    reference = np.array([[5.0, 0.0, 0.0], [1.0, 1.0 + 1e-6, 0.0], [0.0, 4.0, 1.0]])
    candidate = reference + np.array([[0.01, 0, 0], [0.0, -0.01, 0.0], [0, 0.01, 0]])
    report = compare_logits(reference, candidate)
    assert report.top1_agreement == pytest.approx(2 / 3)  # the near-tie flipped
    assert report.decisive == 2 and report.decisive_top1_agreement == 1.0



def test_a_flip_on_a_clear_input_fails_the_top1_gate():
    rng = np.random.default_rng(3)
    reference = np.eye(10)[rng.integers(0, 10, 40)] * 5 + rng.normal(0, 0.1, (40, 10))
    candidate = reference + rng.normal(0, 0.01, reference.shape)
    candidate[0] = np.roll(candidate[0], 1)  # one clear input now picks another class
    report = compare_logits(reference, candidate)
    assert report.decisive == 40 and report.decisive_top1_agreement == pytest.approx(39 / 40)
    gate = ParityGate("t", min_cosine=0.0, min_top1=1.0)
    assert any("top-1 agreement 97.5% < 100%" in p for p in report.failures(gate))


def test_shape_mismatch_is_an_error(logits):
    with pytest.raises(ValueError, match="differ"):
        compare_logits(logits, logits[:, :5])


def test_table_names_every_figure(logits):
    table = compare_logits(logits, logits).table()
    for name in ("max abs error", "logit scale", "cosine", "top-1 agreement", "top-5 overlap"):
        assert name in table
