"""neuromorph.train: the training loop, checkpoints, metrics, recipes and distributed runs."""

from neuromorph.train.checkpoint import load_checkpoint, load_model, register_builder, save_checkpoint
from neuromorph.train.evaluation import evaluate_checkpoint, make_plots
from neuromorph.train.loop import Hooks, evaluate, fit
from neuromorph.train.recipes import RECIPES, Recipe, get_recipe, resolve_recipe
