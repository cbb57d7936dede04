"""Loop hooks of the DCLS delay recipe (Hammouamri et al., ICLR 2024; METHODS.md §3(b)-(c)).

- two Adam optimisers: weights and BN (lr 1e-3, weight decay 1e-5 on weights only, OneCycleLR with
  max_lr 5e-3 stepped once per epoch) and delay positions (lr 100x the weight lr = 0.1, no weight
  decay, cosine annealing with T_max = epochs, stepped once per epoch);
- positions clamped to ±⌊K/2⌋ after every optimiser step;
- σ shrunk at the end of every epoch (``SigmaSchedule.for_training(K, epochs)``);
- every evaluation with rounded integer delays, real-valued positions restored afterwards.

The SHD model module may provide its own ``build_optimizers(model, epochs, ...)``; it is used when
present, so that the recipe and the model cannot drift apart.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from neuromorph.train.loop import Hooks
from neuromorph.train.recipes import Recipe


def split_parameters(model: torch.nn.Module) -> tuple[list, list, list]:
    """(weights, batch-norm/bias parameters, delay positions) of ``model``."""
    from neuromorph.nn import DelayedLinear

    positions, weights, other = [], [], []
    position_ids = set()
    for module in model.modules():
        if isinstance(module, DelayedLinear):
            positions.append(module.positions)
            position_ids.add(id(module.positions))
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in position_ids or not p.requires_grad:
                continue
            is_norm = isinstance(module, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm))
            (other if is_norm or name == "bias" else weights).append(p)
    return weights, other, positions


class DelayHooks(Hooks):
    def __init__(self) -> None:
        self.schedule = None

    def build_optimizers(self, model: torch.nn.Module, recipe: Recipe, steps_per_epoch: int):
        from neuromorph.nn.delays import SigmaSchedule, delayed_layers

        layers = delayed_layers(model)
        if not layers:
            raise TypeError(f"recipe {recipe.name!r} uses the delay optimisers but the model has no DelayedLinear layer")
        self.schedule = SigmaSchedule.for_training(layers[0].kernel_size, recipe.epochs)
        weights, other, positions = split_parameters(model)
        opt_w = torch.optim.Adam(
            [{"params": weights, "weight_decay": recipe.weight_decay}, {"params": other, "weight_decay": 0.0}], lr=recipe.lr
        )
        opt_p = torch.optim.Adam(positions, lr=recipe.lr * 100, weight_decay=0.0)
        # OneCycle max 5e-3 = 5x the base lr 1e-3; stepped once per epoch as in SNN-delays
        sched_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=5 * recipe.lr, total_steps=recipe.epochs)
        sched_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=recipe.epochs)
        return [opt_w, opt_p], [(sched_w, "epoch"), (sched_p, "epoch")]

    def after_step(self, model: torch.nn.Module) -> None:
        from neuromorph.nn.delays import clamp_positions

        clamp_positions(model)

    def end_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        self.schedule.apply(model, epoch + 1)

    @contextlib.contextmanager
    def eval_context(self, model: torch.nn.Module) -> Iterator[None]:
        from neuromorph.nn.delays import rounded_delays

        with rounded_delays(model):
            yield

    def state_dict(self) -> dict[str, Any]:
        return {}  # σ lives in the model's buffers; the schedule is a pure function of the epoch
