"""Per-batch padding (Recipe.pad = "batch"): each batch keeps the steps up to its longest sample, as
SNN-delays' pad_sequence_collate pads SHD/SSC."""

from __future__ import annotations

import pytest
import torch

from neuromorph.errors import ConfigError
from neuromorph.train.data import Split, split_validation
from neuromorph.train.loop import evaluate
from neuromorph.train.recipes import get_recipe

from .helpers import TimeMLP, toy_bundle, toy_recipe


def _split() -> Split:
    x = torch.zeros(4, 6, 2, dtype=torch.uint8)
    x[0, 0, 0] = 1  # length 1
    x[1, 3, 1] = 2  # length 4 (a silent gap before the last event counts as part of the sample)
    x[1, 0, 0] = 1
    x[2, 5, 0] = 1  # length 6
    # x[3] is silent: length 1, so that a batch of silent samples still has one step
    return Split(x, torch.arange(4)).with_lengths()


def test_lengths_are_last_active_step_plus_one():
    assert _split().lengths.tolist() == [1, 4, 6, 1]


def test_batch_is_cut_to_its_longest_sample():
    s = _split()
    x, y = s.batch(torch.tensor([0, 1]))
    assert x.shape == (4, 2, 2) and y.tolist() == [0, 1]
    assert torch.equal(x[:, 1], s.x[1, :4].float())
    assert s.batch(torch.tensor([0, 3]))[0].shape[0] == 1
    assert s.batch(torch.tensor([1, 2]))[0].shape[0] == 6
    # an explicit length (the longest sample of the global batch under DDP) overrides the own maximum
    assert s.batch(torch.tensor([0]), steps=4)[0].shape == (4, 1, 2)
    # without lengths every batch keeps all steps
    assert Split(s.x, s.y).batch(torch.tensor([0]))[0].shape[0] == 6


def test_validation_split_keeps_lengths():
    train, val = split_validation(_split(), 0.5, seed=0)
    for part in (train, val):
        assert part.lengths is not None
        assert torch.equal(part.lengths, Split(part.x, part.y).with_lengths().lengths)


def test_audio_recipes_pad_per_batch_and_frame_recipes_do_not():
    assert get_recipe("shd").pad == get_recipe("ssc").pad == "batch"
    assert get_recipe("nmnist").pad == get_recipe("digits-dvs").pad == "dataset"
    with pytest.raises(ConfigError, match="pad"):
        get_recipe("shd").replace(pad="sample")


def test_evaluation_pads_each_batch_to_its_longest_sample():
    """A model whose output depends on the padded length: evaluation must see per-batch lengths."""
    data = toy_bundle(n_test=30, steps=9, variable_lengths=True)
    recipe = toy_recipe(pad="batch", eval_batch_size=7, readout="sum")
    torch.manual_seed(0)
    model = TimeMLP(dropout=0.0)
    got = evaluate(model, data.test, recipe, 3)
    loss = 0.0
    for start in range(0, 30, 7):
        idx = torch.arange(start, min(start + 7, 30))
        steps = int(data.test.lengths[idx].max())
        x = data.test.x[idx, :steps].float().transpose(0, 1)
        with torch.no_grad():
            loss += float(torch.nn.functional.cross_entropy(model(x).sum(0), data.test.y[idx], reduction="sum"))
    assert got["loss"] == pytest.approx(loss / 30, rel=1e-6)
    full = evaluate(model, Split(data.test.x, data.test.y), recipe, 3)  # all 9 steps: differs
    assert full["loss"] != pytest.approx(got["loss"], rel=1e-3)
