"""A small stand-in model and data bundle for loop tests (the infrastructure must not depend on a model)."""

from __future__ import annotations

import torch

from neuromorph.train import checkpoint as ck
from neuromorph.train.data import DataBundle, Split
from neuromorph.train.recipes import Recipe


class TimeMLP(torch.nn.Module):
    """[T, B, F] -> [T, B, C]: per-step Linear, ReLU, Dropout (so training draws random numbers), Linear."""

    def __init__(self, in_features: int = 12, hidden: int = 16, n_classes: int = 3, dropout: float = 0.2):
        super().__init__()
        self.fc1 = torch.nn.Linear(in_features, hidden)
        self.drop = torch.nn.Dropout(dropout)
        self.fc2 = torch.nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


ck.register_builder("tests.TimeMLP", TimeMLP)


def toy_bundle(n_train: int = 96, n_test: int = 30, steps: int = 5, features: int = 12, seed: int = 0,
               variable_lengths: bool = False) -> DataBundle:
    """Three classes of Poisson-like count sequences with class-dependent rates per feature.

    ``variable_lengths``: each sample is silent after a random length in [1, steps] and the splits carry
    per-sample lengths (what ``Recipe.pad = "batch"`` uses).
    """
    g = torch.Generator().manual_seed(seed)
    rates = torch.rand(3, features, generator=g) * 3

    def make(n: int) -> Split:
        y = torch.arange(n) % 3
        x = torch.poisson(rates[y].unsqueeze(1).expand(n, steps, features).contiguous(), generator=g)
        if variable_lengths:
            lengths = torch.randint(1, steps + 1, (n,), generator=g)
            x = x * (torch.arange(steps)[None, :, None] < lengths[:, None, None])
            return Split(x.to(torch.uint8), y).with_lengths()
        return Split(x.to(torch.uint8), y)

    train = make(n_train)
    val = make(24)
    return DataBundle(train, val, make(n_test), 3, (features,), {"classes": ["a", "b", "c"]})


def toy_recipe(**changes) -> Recipe:
    base = Recipe(name="digits-dvs", dataset="digits-dvs", model="tests.TimeMLP", epochs=3, batch_size=16,
                  lr=1e-2, schedule="onecycle", seed=3, eval_batch_size=10)
    return base.replace(**changes)
