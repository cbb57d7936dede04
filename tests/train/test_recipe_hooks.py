"""Recipes name their training hooks (``Recipe.hooks`` from the ``HOOKS`` registry): no magic strings."""

from __future__ import annotations

import pytest

from neuromorph.errors import ConfigError
from neuromorph.train.delay_hooks import AdLIFDelayHooks, DelayHooks
from neuromorph.train.loop import Hooks, fit, hooks_for
from neuromorph.train.recipes import HOOKS, RECIPES, Recipe

from .helpers import toy_bundle, toy_recipe


class CountingHooks(Hooks):
    """Hooks defined only in this test module, named by a recipe through the registry."""

    steps = 0
    epochs: list[int] = []

    def after_step(self, model) -> None:
        CountingHooks.steps += 1

    def end_epoch(self, model, epoch: int) -> None:
        CountingHooks.epochs.append(epoch)


def test_named_recipes_name_their_hooks():
    expected = {"shd": DelayHooks, "ssc": DelayHooks, "nmnist": Hooks, "digits-dvs": Hooks, "shd-adlif": Hooks,
                "ssc-adlif": Hooks, "shd-adlif-delays": AdLIFDelayHooks}
    for name, recipe in RECIPES.items():
        assert recipe.hooks in HOOKS
        assert type(hooks_for(recipe)) is expected[name], name
    # the optimiser/schedule fields say what is used; "shd-delays" is no longer a value of either
    assert (RECIPES["shd"].optimizer, RECIPES["shd"].schedule) == ("adam", "onecycle")
    with pytest.raises(ConfigError, match="choose one of"):
        RECIPES["shd"].replace(optimizer="shd-delays")


def test_recipe_stored_before_hooks_were_named_reads_the_same():
    old = {**RECIPES["shd"].to_dict(), "optimizer": "shd-delays", "schedule": "shd-delays"}
    del old["hooks"]
    recipe = Recipe.from_dict(old)
    assert recipe == RECIPES["shd"] and isinstance(hooks_for(recipe), DelayHooks)


def test_unknown_hooks_and_hooks_that_would_ignore_options_are_refused():
    with pytest.raises(ConfigError, match="hooks='magic' is not valid; choose one of 'adlif-delays', 'dcls-delays', 'standard'"):
        RECIPES["nmnist"].replace(hooks="magic")
    recipe = RECIPES["shd"].replace(optimizer="sgd")
    with pytest.raises(ConfigError, match="optimizer='sgd'") as info:
        hooks_for(recipe).build_optimizers(None, recipe, 1)
    assert info.value.field == "hooks"


def test_fit_runs_the_hooks_the_recipe_names(monkeypatch, tmp_path):
    monkeypatch.setitem(HOOKS, "counting", f"{__name__}:CountingHooks")
    CountingHooks.steps, CountingHooks.epochs = 0, []
    recipe = toy_recipe(hooks="counting", epochs=2)
    fit(recipe, tmp_path, data=toy_bundle(), progress=False)
    assert CountingHooks.epochs == [0, 1] and CountingHooks.steps > 0


class ShrinkHooks(Hooks):
    """A regulariser only this test adds: a large L2 on the first layer's weights."""

    calls = 0

    def regularizer(self, model):
        ShrinkHooks.calls += 1
        return 10.0 * model.fc1.weight.pow(2).sum()


def test_regularizer_hook_is_added_to_the_training_loss(tmp_path):
    # the Hoyer regulariser and the Delta layer's penalty enter training this way (benchmarks/repro)
    import torch

    from neuromorph.train import checkpoint as ck

    norms = {}
    for name, hooks in (("plain", Hooks()), ("shrink", ShrinkHooks())):
        ShrinkHooks.calls = 0
        recipe = toy_recipe(epochs=2, schedule="none", lr=1e-2, val_fraction=0.0)
        fit(recipe, tmp_path / name, data=toy_bundle(), progress=False, hooks=hooks)
        state = ck.load_checkpoint(tmp_path / name / "last.pt")["state_dict"]
        norms[name] = float(state["fc1.weight"].norm())
        if name == "shrink":
            assert ShrinkHooks.calls == 2 * (96 // 16)  # once per training step, never in evaluation
    assert norms["shrink"] < 0.5 * norms["plain"]
    assert torch.isfinite(torch.tensor(list(norms.values()))).all()
