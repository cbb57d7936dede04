"""neuromorph.train: the training loop, checkpoints, metrics, recipes and distributed runs."""

from typing import TYPE_CHECKING

from neuromorph._lazy import lazy_exports

if TYPE_CHECKING:  # the public names; each loads its submodule on first use (neuromorph._lazy)
    from neuromorph.train.checkpoint import load_checkpoint, load_model, register_builder, save_checkpoint
    from neuromorph.train.evaluation import evaluate_checkpoint, make_plots
    from neuromorph.train.loop import Hooks, evaluate, fit
    from neuromorph.train.recipes import RECIPES, Recipe, get_recipe, resolve_recipe

__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
