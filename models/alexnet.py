"""The seed AlexNet, layer for layer, and a seeded initialisation.

Module names (`features.N`, `classifier.N`) match the seed so its state dicts load unchanged.
At 224x224 the feature maps are 54x54x96 -> 26x26x96 -> 26x26x256 -> 12x12x256 -> 12x12x384
-> 12x12x384 -> 12x12x256 -> 5x5x256, and the model has 49,430,888 parameters at 1000 classes.
"""

from __future__ import annotations

import torch
from torch import nn

from alexnet_export.models.spec import DEFAULT_NUM_CLASSES

LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0
FLAT_FEATURES = 256 * 5 * 5
FINAL_LAYER = "classifier.6"  # the Linear whose output count is num_classes


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = DEFAULT_NUM_CLASSES):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LocalResponseNorm(size=LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LocalResponseNorm(size=LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(FLAT_FEATURES, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def seeded_alexnet(num_classes: int = DEFAULT_NUM_CLASSES, seed: int = 0) -> AlexNet:
    """A deterministic random AlexNet in eval mode, the same for the same seed on any machine.

    Kaiming-normal weights give logits spread over about one unit, like a trained model;
    PyTorch's default init gives logits near 1e-2, where absolute error gates say little.
    """
    model = AlexNet(num_classes)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                std = (2.0 / fan_in) ** 0.5
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                # Small non-zero biases, as a trained model has: all-zero ones get folded away
                # by the ONNX optimizer, and the exported graph would not be the one users get.
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.01)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
