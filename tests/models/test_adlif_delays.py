"""SE-adLIF with learned DCLS delays (recipe ``shd-adlif-delays``, hooks ``"adlif-delays"``): the delayed input
synapses start with the drive of the Linear they replace, and the recipe's training moves the weights at the
SE-adLIF rate (not DCLS's OneCycle warm-up) and the positions with their own optimiser."""

from __future__ import annotations

import json

import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError
from neuromorph.models.adlif import AdLIFNet
from neuromorph.train.data import DataBundle, Split
from neuromorph.train.delay_hooks import AdLIFDelayHooks
from neuromorph.train.loop import fit, hooks_for
from neuromorph.train.recipes import get_recipe


def test_delayed_input_drive_matches_the_linear_of_the_se_net():
    # spike counts uncorrelated in time, as sparse as SHD's 4 ms bins
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(300, 16, 140, generator=g) < 0.05).float()
    torch.manual_seed(0)
    lin = AdLIFNet(hidden=64)[0]
    torch.manual_seed(0)
    dly = AdLIFNet(hidden=64, delays=True)[0]
    assert isinstance(dly, nm.nn.DelayedLinear) and float(dly.sigma[0, 0]) == 12.0
    with torch.no_grad():
        # each neuron's fluctuation over time, away from the zero padding at both ends
        ref = lin(x)[30:].std(0).mean()
        got = dly(x)[30:300].std(0).mean()
    # the old Kaiming init (bound √6/√fan_in, spread over ~25 taps) gave about half the drive
    assert 0.8 < float(got / ref) < 1.25, (float(got), float(ref))


def _bundle(n: int, steps: int = 40, seed: int = 0) -> DataBundle:
    """Two classes of sparse spike counts on 140 channels: class c fires in channels [70c, 70c + 70)."""
    g = torch.Generator().manual_seed(seed)

    def make(m: int) -> Split:
        y = torch.arange(m) % 2
        rate = torch.full((m, 1, 140), 0.05)
        for c in (0, 1):
            rate[y == c, :, 70 * c : 70 * c + 70] = 0.4
        x = (torch.rand(m, steps, 140, generator=g) < rate).to(torch.uint8)
        return Split(x, y)

    return DataBundle(make(n), make(16), make(16), 2, (140,), {"classes": ["a", "b"]})


def test_recipe_trains_weights_at_the_se_rate_and_moves_the_positions(tmp_path):
    recipe = get_recipe("shd-adlif-delays")
    hooks = hooks_for(recipe)
    assert isinstance(hooks, AdLIFDelayHooks)
    recipe = recipe.replace(epochs=3, batch_size=8, eval_batch_size=16, val_fraction=0.0, seed=0,
                            model_kwargs={**recipe.model_kwargs, "hidden": 24, "n_layers": 1, "max_delay": 9})
    torch.manual_seed(0)
    model = AdLIFNet(n_classes=2, hidden=24, n_layers=1, delays=True, max_delay=9)
    opts, scheds = hooks.build_optimizers(model, recipe, steps_per_epoch=4)
    # weights (and neuron parameters) at the shd-adlif lr from the first step; positions by their own Adam
    assert [g["lr"] for g in opts[0].param_groups] == [0.01]
    assert opts[1].param_groups[0]["lr"] == 0.1
    assert {id(p) for p in opts[1].param_groups[0]["params"]} == {id(model[0].positions)}

    summary = fit(recipe, tmp_path / "run", data=_bundle(64), progress=False)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if "train_loss" in r]
    assert len(epochs) == 3
    # the hidden layers fire and the loss falls within 24 steps (DCLS's OneCycle from lr/25 stayed put)
    assert epochs[0]["train_mean_firing_rate"] > 0
    assert epochs[-1]["train_loss"] < 0.8 * epochs[0]["train_loss"], [r["train_loss"] for r in epochs]
    assert summary["test_accuracy"] >= 0.75
    # the positions moved (fit builds the model after seeding with recipe.seed = 0, as here)
    trained = torch.load(tmp_path / "run" / "last.pt", weights_only=True, map_location="cpu")["state_dict"]
    torch.manual_seed(0)
    init = AdLIFNet(n_classes=2, hidden=24, n_layers=1, delays=True, max_delay=9)
    assert (trained["0.positions"] - init[0].positions).abs().max() > 0.05


def test_hooks_refuse_what_they_would_ignore():
    recipe = get_recipe("shd-adlif-delays")
    model = AdLIFNet(hidden=8, delays=True)
    with pytest.raises(ConfigError, match="schedule='onecycle'") as info:
        AdLIFDelayHooks().build_optimizers(model, recipe.replace(schedule="onecycle"), 1)
    assert info.value.field == "hooks"
    with pytest.raises(ConfigError, match="DelayedLinear"):
        AdLIFDelayHooks().build_optimizers(AdLIFNet(hidden=8), recipe, 1)
