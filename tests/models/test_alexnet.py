import pytest
import torch
from torch import nn

from alexnet_export.models.alexnet import AlexNet, count_parameters, seeded_alexnet


def test_parameter_count_matches_the_seed():
    assert count_parameters(AlexNet()) == 49_430_888


def test_feature_maps_have_the_seed_shapes():
    model = AlexNet().eval()
    shapes = []
    for module in model.features:
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            module.register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape[1:])))
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 224, 224))
    # conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool3 (channels, height, width)
    assert shapes == [
        (96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12),
        (384, 12, 12), (384, 12, 12), (256, 12, 12), (256, 5, 5),
    ]
    assert logits.shape == (2, 1000)


def test_layers_are_the_seeds():
    model = AlexNet()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.groups) for c in convs] == [
        (3, 96, (11, 11), (4, 4), (0, 0), 1),
        (96, 256, (5, 5), (1, 1), (2, 2), 2),
        (256, 384, (3, 3), (1, 1), (1, 1), 1),
        (384, 384, (3, 3), (1, 1), (1, 1), 2),
        (384, 256, (3, 3), (1, 1), (1, 1), 2),
    ]
    lrns = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert [(m.size, m.alpha, m.beta, m.k) for m in lrns] == [(5, 1e-4, 0.75, 2)] * 2
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6400, 4096), (4096, 4096), (4096, 1000)]
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def test_num_classes_is_configurable():
    model = AlexNet(num_classes=7)
    assert model.classifier[-1].out_features == 7
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 224, 224)).shape == (1, 7)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10"])
def test_invalid_num_classes_is_refused(bad):
    with pytest.raises(ValueError, match="num_classes"):
        AlexNet(num_classes=bad)


def test_seeded_init_is_deterministic_and_seed_dependent():
    first, again, other = seeded_alexnet(10, seed=1), seeded_alexnet(10, seed=1), seeded_alexnet(10, seed=2)
    for (name, a), b, c in zip(first.state_dict().items(), again.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(first.features[0].weight, other.features[0].weight)
    assert not first.training


def test_seeded_init_gives_logits_on_a_trained_models_scale():
    torch.manual_seed(0)
    with torch.no_grad():
        logits = seeded_alexnet(1000, seed=0)(torch.randn(4, 3, 224, 224))
    # PyTorch's default init gives about 1e-2; a spread near one makes absolute gates meaningful.
    assert 0.3 < float(logits.std()) < 10
