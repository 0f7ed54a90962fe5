"""Train the seed AlexNet on an ImageFolder, on the CPU, and save a state dict.

Images go through the toolkit's own preprocessing (the transform the exported file carries), so
training and deployment see the same inputs. Augmentation is a random shift of up to
SHIFT_PIXELS in each direction; digits sit on a black background, so a wrapped shift adds no edge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from alexnet_export.bench.accuracy import image_set
from alexnet_export.models.alexnet import seeded_alexnet
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes.preprocess import preprocess_batch

SHIFT_PIXELS = 24


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 16
    batch_size: int = 32
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    threads: int | None = None


def load_folder(folder: Path, class_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed images (N, 3, 224, 224) and class indices from folder/<class>/<image>."""
    labelled = image_set(folder, class_names)
    return preprocess_batch(labelled.paths, Preprocessing()), labelled.labels


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, settings: TrainSettings,
          log=print) -> nn.Module:
    """SGD with momentum, a linear warm-up over the first epoch and cosine decay after it."""
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    model = seeded_alexnet(num_classes, seed=settings.seed).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(images) // settings.batch_size)
    total = settings.epochs * steps_per_epoch
    warmup = steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step + 1) / warmup if step < warmup
        else 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, total - warmup))))
    generator = torch.Generator().manual_seed(settings.seed)
    started = time.perf_counter()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(images), generator=generator)
        seen, loss_sum, correct = 0, 0.0, 0
        for start in range(0, len(images), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            inputs = random_shift(images[batch], generator)
            logits = model(inputs)
            loss = nn.functional.cross_entropy(logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            seen += len(batch)
            loss_sum += loss.item() * len(batch)
            correct += int((logits.argmax(1) == labels[batch]).sum())
        elapsed = time.perf_counter() - started
        remaining = elapsed / (epoch + 1) * (settings.epochs - epoch - 1)
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {loss_sum / seen:.3f}, train accuracy {correct / seen:.1%}, "
            f"{elapsed:.0f}s elapsed, about {remaining:.0f}s left")
    return model.eval()


def random_shift(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    dy, dx = (int(v) for v in torch.randint(-SHIFT_PIXELS, SHIFT_PIXELS + 1, (2,), generator=generator))
    return torch.roll(batch, shifts=(dy, dx), dims=(2, 3))


def save_state_dict(model: nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path
