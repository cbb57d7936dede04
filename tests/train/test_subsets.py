"""--set train_limit / test_limit and the held-out validation split are class-stratified and seeded: a
label-sorted data set (N-MNIST's folders) must not give only its first classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuromorph.train.data import Split, load_data, materialize, split_validation, stratified_indices
from neuromorph.train.recipes import get_recipe


class LabelSorted:
    """A label-sorted data set like N-MNIST's Train/<label>/ folders: 10 classes of unequal size."""

    def __init__(self, sizes=(30, 50, 20, 40, 30, 30, 60, 20, 10, 10)):
        self.targets = np.repeat(np.arange(len(sizes)), sizes)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return np.full((3, 2), i, dtype=np.float32), int(self.targets[i])  # the sample encodes its index


def test_limit_keeps_every_class_in_proportion():
    ds = LabelSorted()
    split = materialize(ds, limit=60, seed=3)
    counts = torch.bincount(split.y, minlength=10)
    # 60/300 of each class: 6, 10, 4, 8, 6, 6, 12, 4, 2, 2
    assert counts.tolist() == [6, 10, 4, 8, 6, 6, 12, 4, 2, 2]
    index = split.x[:, 0, 0].long()  # which samples were taken
    assert torch.equal(torch.as_tensor(ds.targets)[index], split.y)
    assert len(set(index.tolist())) == 60


def test_limit_is_deterministic_per_seed():
    ds = LabelSorted()
    a, b, c = (materialize(ds, limit=45, seed=s).x[:, 0, 0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    counts = torch.bincount(materialize(ds, limit=45, seed=2).y, minlength=10)
    assert counts.sum() == 45 and (counts >= 1).all()
    assert ((counts.double() - torch.tensor([30, 50, 20, 40, 30, 30, 60, 20, 10, 10]) * 45 / 300).abs() < 1).all()


def test_stratified_indices_rounding_adds_up():
    labels = np.repeat([0, 1, 2], [1, 1, 1])
    assert stratified_indices(labels, 2, seed=0).numel() == 2
    with pytest.raises(ValueError):
        stratified_indices(labels, 4, seed=0)


def test_validation_split_is_stratified():
    y = torch.as_tensor(LabelSorted().targets)
    split = Split(torch.arange(len(y)).reshape(-1, 1, 1).to(torch.float32), y)
    train, val = split_validation(split, 0.1, seed=5)
    assert torch.bincount(val.y, minlength=10).tolist() == [3, 5, 2, 4, 3, 3, 6, 2, 1, 1]
    taken = torch.cat([train.x.reshape(-1), val.x.reshape(-1)]).long().sort().values
    assert torch.equal(taken, torch.arange(len(y)))  # a partition: nothing lost, nothing twice
    _, val2 = split_validation(split, 0.1, seed=5)
    assert torch.equal(val.x, val2.x)


def test_nmnist_train_limit_covers_all_digits(shared_data):
    recipe = get_recipe("nmnist").replace(data_root=str(shared_data / "nmnist"), train_limit=50, test_limit=20,
                                          val_fraction=0.2, n_time_bins=2)
    data = load_data(recipe)
    seen = torch.cat([data.train.y, data.val.y])
    assert len(seen) == 50 and torch.bincount(seen, minlength=10).min() >= 4  # ~5 per digit, not digits 0 and 1
    assert torch.bincount(data.val.y, minlength=10).min() >= 1
    assert len(data.test) == 20 and len(torch.unique(data.test.y)) >= 9  # the test set has 2 samples of digit 8
