"""The SHD delay network of Hammouamri, Khalfaoui-Hassani & Masquelier (ICLR 2024).

Method page: ``docs/methods/delays.md``.

Feed-forward, no recurrence; every synapse has a learnable delay (DCLS, :class:`~neuromorph.nn.DelayedLinear`)::

    [T, B, 140] ─> (DelayedLinear → BatchNorm1d → LIF → Dropout) × n_hidden_layers
               ─> DelayedLinear → LI (membrane readout) ─> v_out [T + n·⌊(K-1)/2⌋, B, classes]

with the defaults of ``best_config_SHD.py`` (Thvnvtos/SNN-delays@d169b4e): 700 SHD channels summed in
groups of 5 (140 inputs, done by the data pipeline), 10 ms bins, 2 hidden layers of 256, K = 25 (250 ms),
τ = 10.05 ms / 10 ms = 1.005 steps, LIF with decay_input=False, hard reset to 0, detach_reset, threshold
1, ATan surrogate α = 5, dropout 0.4, no bias. Each DelayedLinear adds ⌊(K-1)/2⌋ = 12 output steps.

Readout: the reference feeds the last layer to a LIF with threshold 1e9 that never fires and reads its
membrane; here that is the non-spiking leaky integrator ``LI(tau, decay_input=False)``, the same
recurrence v[t] = (1 - 1/τ) v[t-1] + y[t] without a threshold that exporters would have to special-case.
The class scores are m = Σ_t softmax(v_out[t]) and the loss is cross-entropy applied to m as if it were
logits (:func:`summed_softmax_loss`), as the reference does.

Training (:func:`build_optimizers`, :func:`sigma_schedule`): two Adam optimisers, weights lr 1e-3 with
weight decay 1e-5 (0 on BatchNorm) under OneCycleLR (max 5e-3) stepped once per epoch, positions lr 0.1
without decay under cosine annealing (T_max = epochs); positions are clamped after every step; σ shrinks
at the end of each epoch (:class:`~neuromorph.nn.SigmaSchedule`); evaluation runs with rounded integer
delays (:func:`~neuromorph.nn.rounded_delays`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.delays import DelayedLinear, SigmaSchedule, clamp_after_step, delayed_layers
from neuromorph.nn.layers import SequenceDropout  # the model's dropout; importable from here as before

__all__ = [
    "SHDDelayNet",
    "SequenceDropout",
    "build_optimizers",
    "sigma_schedule",
    "summed_softmax",
    "summed_softmax_loss",
]


class SHDDelayNet(torch.nn.Sequential):
    """Delay network for SHD/SSC (Hammouamri et al., ICLR 2024); input spike counts ``[T, B, n_inputs]``, output the
    readout membrane ``[T + (n_hidden_layers + 1)·⌊(K-1)/2⌋, B, n_classes]``.

    Defaults are the SHD configuration; SSC is ``hidden=512, n_hidden_layers=3, max_delay=31, tau=1.5,
    dropout=0.25, n_classes=35``. ``max_delay`` is in steps (K = max_delay made odd), ``tau`` in steps.
    """

    def __init__(
        self,
        n_inputs: int = 140,
        n_classes: int = 20,
        hidden: int = 256,
        n_hidden_layers: int = 2,
        max_delay: int = 25,
        tau: float = 1.005,
        threshold: float = 1.0,
        dropout: float = 0.4,
        surrogate_alpha: float = 5.0,
        backend: str = "auto",
        delay_method: str = "auto",
    ) -> None:
        import neuromorph.nn as nnm  # the neurons and time-distributed BatchNorm live in the core

        for name, value in (("n_inputs", n_inputs), ("n_classes", n_classes), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SHDDelayNet: {name}={value!r} must be a positive integer")
        if isinstance(n_hidden_layers, bool) or not isinstance(n_hidden_layers, int) or n_hidden_layers < 0:
            raise ConfigError(f"SHDDelayNet: n_hidden_layers={n_hidden_layers!r} must be an integer >= 0")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"SHDDelayNet: dropout={dropout!r} must be in [0, 1)")
        layers: list[torch.nn.Module] = []
        width = n_inputs
        for _ in range(n_hidden_layers):
            layers += [
                DelayedLinear(width, hidden, max_delay, method=delay_method),
                nnm.BatchNorm1d(hidden),
                nnm.LIF(
                    tau=tau, threshold=threshold, reset="hard", v_reset=0.0, decay_input=False,
                    detach_reset=True, surrogate="atan", alpha=surrogate_alpha, backend=backend,
                ),
                SequenceDropout(dropout),
            ]
            width = hidden
        layers += [DelayedLinear(width, n_classes, max_delay, method=delay_method), nnm.LI(tau=tau, decay_input=False)]
        super().__init__(*layers)
        self.n_inputs = n_inputs
        self.n_classes = n_classes
        nnm.expect_input(self, (n_inputs,))  # time-major float [T, B, n_inputs], checked at every call


def summed_softmax(v_out: Tensor) -> Tensor:
    """Class scores m = Σ_t softmax(v_out[t]) over the class axis: ``[T, B, C] -> [B, C]``.

    The readout of Hammouamri et al., ICLR 2024.
    """
    if v_out.dim() != 3:
        raise ShapeError(f"summed_softmax: v_out must be [T, B, classes], got shape {list(v_out.shape)}")
    return torch.softmax(v_out, dim=-1).sum(0)


def summed_softmax_loss(v_out: Tensor, target: Tensor) -> Tensor:
    """loss = CrossEntropy(m, y) with m = Σ_t softmax(v_out[t]) used as logits, as SNN-delays does
    (``calc_loss`` with loss='sum'); ``target`` holds class indices ``[B]``."""
    return F.cross_entropy(summed_softmax(v_out), target)


def build_optimizers(
    model: torch.nn.Module,
    epochs: int,
    *,
    lr: float = 1e-3,
    max_lr: float = 5e-3,
    weight_decay: float = 1e-5,
    lr_positions: float = 0.1,
) -> tuple[list[torch.optim.Optimizer], list[tuple[Any, str]]]:
    """The two optimisers of SNN-delays and their per-epoch schedules (best_config_*.py of SNN-delays).

    - weights: Adam(lr, betas (0.9, 0.999)); weight decay on the DelayedLinear weights only (0 on
      BatchNorm, biases and any other parameter), OneCycleLR(max_lr, total_steps=epochs);
    - positions: Adam(lr_positions), no decay, CosineAnnealingLR(T_max=epochs); the positions are
      clamped to ±⌊K/2⌋ after each of its steps (an optimizer step hook).

    Returns ``([weights_opt, positions_opt], [(onecycle, "epoch"), (cosine, "epoch")])``: step each
    scheduler once per epoch. Adam's ``weight_decay`` is the L2 term added to the gradient, as in the
    reference (not AdamW).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"build_optimizers: epochs={epochs!r} must be a positive integer")
    layers = delayed_layers(model)
    if not layers:
        raise ConfigError("build_optimizers: the model has no DelayedLinear layer")
    positions = [m.positions for m in layers]
    decayed = [m.weight for m in layers]
    taken = {id(p) for p in positions + decayed}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
    groups = [{"params": decayed, "weight_decay": weight_decay}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    opt_w = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999))
    opt_p = torch.optim.Adam(positions, lr=lr_positions, betas=(0.9, 0.999), weight_decay=0.0)
    clamp_after_step(opt_p, model)
    sched_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=max_lr, total_steps=epochs)
    sched_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=epochs)
    return [opt_w, opt_p], [(sched_w, "epoch"), (sched_p, "epoch")]


def sigma_schedule(model: torch.nn.Module, epochs: int) -> SigmaSchedule:
    """The σ schedule for ``model``'s delay layers: σ_init = ⌊K/2⌋, final_epoch = ⌊epochs/4⌋.

    Call ``schedule.apply(model, epoch + 1)`` at the end of each epoch.
    """
    sizes = {m.kernel_size for m in delayed_layers(model)}
    if len(sizes) != 1:
        raise ConfigError(f"sigma_schedule: expected one kernel size across the DelayedLinear layers, got {sorted(sizes)}")
    return SigmaSchedule.for_training(sizes.pop(), epochs)
