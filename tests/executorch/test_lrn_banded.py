"""The LRN rewrite the ExecuTorch export uses (exporter/rewrites/lrn_banded.py): the same numbers as the
seed's nn.LocalResponseNorm in eager PyTorch, without the avg_pool3d XNNPACK lacks. Needs torch only."""

import torch
from torch import nn

from alexnet_export.exporter.rewrites.lrn_banded import BandedLRN, banded_weight, for_executorch
from alexnet_export.models.alexnet import LRN_ALPHA, LRN_BETA, LRN_K, LRN_SIZE, seeded_alexnet


def test_each_band_sums_the_window_pytorch_uses():
    weight = banded_weight(8, 5)[:, :, 0, 0]
    # Channel c sums c-2..c+2, cut at the edges (zero padding).
    assert weight.sum(dim=1).tolist() == [3, 4, 5, 5, 5, 5, 4, 3]
    assert weight[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0] and weight[7].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert set(weight.unique().tolist()) == {0.0, 1.0}


def test_banded_lrn_matches_pytorchs_lrn_within_float_rounding():
    lrn = nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)
    generator = torch.Generator().manual_seed(0)
    # Post-ReLU activations of AlexNet's first LRN, scaled up so the sum term matters (k=2 else dominates).
    x = torch.relu(torch.randn(4, 96, 27, 27, generator=generator)) * 40
    expected, actual = lrn(x), BandedLRN(lrn, 96)(x)
    without_window = x / LRN_K**LRN_BETA  # what LRN would give if the window's sum did not matter
    assert (expected - without_window).abs().max() > 0.1 * expected.abs().max()
    relative = ((actual - expected).abs() / expected.abs().clamp_min(1e-6)).max().item()
    assert relative < 2e-6, relative  # a few float32 roundings (exp/log instead of pow)


def test_the_rewritten_model_gives_the_seeds_logits_and_leaves_the_seed_alone():
    seed = seeded_alexnet(10, seed=3)
    rewritten = for_executorch(seed)
    assert isinstance(seed.features[3], nn.LocalResponseNorm) and isinstance(seed.features[7], nn.LocalResponseNorm)
    assert [type(rewritten.features[i]) for i in (3, 7)] == [BandedLRN, BandedLRN]
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = seed(x), rewritten(x)
    scale = expected.abs().max().item()
    # Measured 1.3e-6 of the scale (float32 rounding in another order); the FP32 gate allows 1e-5.
    assert (actual - expected).abs().max().item() <= 2e-6 * scale


def test_pytorchs_lrn_decomposes_into_avg_pool3d_and_the_rewrite_into_ops_xnnpack_has():
    example = (torch.relu(torch.randn(1, 96, 27, 27)),)

    def targets(module):
        program = torch.export.export(module.eval(), example).run_decompositions()
        return {str(node.target).split(".")[1] for node in program.graph.nodes if node.op == "call_function"}

    lrn = nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)
    assert "avg_pool3d" in targets(lrn)
    # XNNPACK's partitioner takes each of these (pow only with exponent 2, hence exp/log).
    assert targets(BandedLRN(lrn, 96)) == {"mul", "convolution", "add", "log", "exp"}
