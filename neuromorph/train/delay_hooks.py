"""Training hooks ``"dcls-delays"`` of the DCLS delay recipes shd and ssc (Hammouamri et al., ICLR 2024;
code Thvnvtos/SNN-delays, ``best_config_{SHD,SSC}.py``);
a recipe selects them by name (``Recipe.hooks``, registry ``recipes.HOOKS``):

- two Adam optimisers: weights and BN (lr 1e-3, weight decay 1e-5 on weights only, OneCycleLR with
  max_lr 5e-3 stepped once per epoch) and delay positions (lr 100x the weight lr = 0.1, no weight
  decay, cosine annealing with T_max = epochs, stepped once per epoch);
- positions clamped to ±⌊K/2⌋ after every optimiser step (``DelayedLinear.apply_constraints``, which the
  training loop applies to every layer that declares one, whatever the hooks);
- σ shrunk at the end of every epoch (``SigmaSchedule.for_training(K, epochs)``);
- every evaluation with rounded integer delays, real-valued positions restored afterwards.

The optimisers and the σ schedule come from ``neuromorph.models.shd`` (``build_optimizers``,
``sigma_schedule``), so that the recipe and the model cannot drift apart.

Hooks ``"adlif-delays"`` (:class:`AdLIFDelayHooks`, recipe shd-adlif-delays): the same delay steps around the
SE-adLIF network's own weight training (Adam at a constant lr), see that class.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from neuromorph.train.loop import Hooks
from neuromorph.train.recipes import Recipe


class DelayHooks(Hooks):
    """The DCLS method's steps around the generic loop (the list in the module docstring)."""

    def __init__(self) -> None:
        self.schedule = None

    def build_optimizers(self, model: torch.nn.Module, recipe: Recipe, steps_per_epoch: int):
        from neuromorph.errors import ConfigError
        from neuromorph.models.shd import build_optimizers, sigma_schedule

        if (recipe.optimizer, recipe.schedule) != ("adam", "onecycle"):
            raise ConfigError(f"hooks='dcls-delays' train with Adam and OneCycle (delay positions: Adam, cosine); "
                              f"optimizer={recipe.optimizer!r}, schedule={recipe.schedule!r} would be ignored: use "
                              "optimizer='adam', schedule='onecycle', or hooks='standard'", field="hooks")

        self.schedule = sigma_schedule(model, recipe.epochs)
        # max_lr 5e-3 = 5x the base lr and positions at 100x the base lr, as in best_config_SHD.py
        return build_optimizers(model, recipe.epochs, lr=recipe.lr, max_lr=5 * recipe.lr,
                                weight_decay=recipe.weight_decay, lr_positions=100 * recipe.lr)

    def end_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        self.schedule.apply(model, epoch + 1)

    @contextlib.contextmanager
    def eval_context(self, model: torch.nn.Module) -> Iterator[None]:
        from neuromorph.nn.delays import rounded_delays

        with rounded_delays(model):
            yield

    def state_dict(self) -> dict[str, Any]:
        return {}  # σ lives in the model's buffers; the schedule is a pure function of the epoch


class AdLIFDelayHooks(DelayHooks):
    """Hooks ``"adlif-delays"``: learned DCLS delays on the input synapses of the SE-adLIF network
    (recipe ``shd-adlif-delays``, :class:`~neuromorph.models.adlif.AdLIFNet` with ``delays=True``).

    The weights and neuron parameters train as in ``shd-adlif`` (the recipe's Adam at its ``lr``, weight
    decay and ``schedule`` "none" or "cosine" per epoch; the loop clips the gradient norm and projects the
    neuron constraints). Only the delay positions get their own Adam (lr :attr:`POSITION_LR`, no decay,
    cosine annealing over the epochs) and, as in DCLS, σ shrinks from ⌊K/2⌋ over the first quarter of the
    epochs and every evaluation runs with rounded integer delays.

    Why not ``"dcls-delays"``: its OneCycle starts the weights at lr/25 (4e-4 for lr 0.01), where the
    adaptive network, whose neurons start silent and learn from the surrogate's tail, barely moves during
    the first epochs; the SE-adLIF recipe trains at a constant 0.01 instead.
    """

    #: Adam lr of the delay positions (steps per unit gradient sign): SNN-delays' 0.1 (100 × its weight lr)
    POSITION_LR = 0.1

    def build_optimizers(self, model: torch.nn.Module, recipe: Recipe, steps_per_epoch: int):
        from neuromorph.errors import ConfigError
        from neuromorph.models.shd import sigma_schedule
        from neuromorph.nn.delays import delayed_layers

        if recipe.optimizer != "adam" or recipe.schedule not in ("none", "cosine"):
            raise ConfigError(f"hooks='adlif-delays' train the weights with Adam at a constant lr ('none') or under "
                              f"'cosine' (delay positions: their own Adam, cosine); optimizer={recipe.optimizer!r}, "
                              f"schedule={recipe.schedule!r} is not supported: use optimizer='adam' and schedule "
                              "'none' or 'cosine'", field="hooks")
        layers = delayed_layers(model)
        if not layers:
            raise ConfigError("hooks='adlif-delays' need a model with DelayedLinear layers (AdLIFNet(delays=True))",
                              field="hooks")
        self.schedule = sigma_schedule(model, recipe.epochs)
        positions = [m.positions for m in layers]
        taken = {id(p) for p in positions}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
        opt_w = torch.optim.Adam(rest, lr=recipe.lr, weight_decay=recipe.weight_decay)
        opt_p = torch.optim.Adam(positions, lr=self.POSITION_LR, weight_decay=0.0)
        scheds: list[tuple[Any, str]] = [(torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=recipe.epochs), "epoch")]
        if recipe.schedule == "cosine":
            scheds.append((torch.optim.lr_scheduler.CosineAnnealingLR(opt_w, T_max=recipe.epochs), "epoch"))
        return [opt_w, opt_p], scheds
