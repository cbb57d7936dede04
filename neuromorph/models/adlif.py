"""The recurrent adaptive-LIF network for SHD/SSC (Baronig, Ferrand, Sabathiel & Legenstein, Nat Commun 2025)::

    [T, B, 140] ─> (Linear → Recurrent(SEAdLIF) → Dropout) × n_layers ─> Linear → LI ─> [T − ignore_first, B, C]

Defaults are the released SHD configuration (IGITUGraz/SE-adlif, ``SHD_SE_adLIF.yaml``): 2 recurrent layers
of 360 SE-adLIF neurons (q = 120; EF-adLIF: q = 60), τ_u ∈ [5, 25] and τ_w ∈ [60, 300] steps of 4 ms, input
weights and readout uniform in ±1/√fan_in with zero biases, orthogonal recurrent weights, dropout 0.15 on
the emitted spikes (the recurrence sees the undropped ones), a leaky-integrator readout with the fixed
decay κ = exp(−1/15), and the first 10 output steps left out of the loss. SSC: ``hidden=720``.

Variants: ``neuron="ef"`` (Euler-forward adLIF), ``neuron="lif"`` (the recurrent LIF baseline: the same
neuron without adaptation, learnable per-neuron τ), ``recurrent=False`` (feed-forward), ``delays=True``
(every input synapse a learned DCLS delay, :class:`~neuromorph.nn.DelayedLinear`, in place of the Linear,
initialised to the Linear's input drive; train with ``hooks="adlif-delays"``, recipe ``shd-adlif-delays``).
"""

from __future__ import annotations

import math

import torch

from neuromorph.errors import ConfigError

__all__ = ["AdLIFNet", "parameter_count"]

NEURONS = ("se", "ef", "lif")


class AdLIFNet(torch.nn.Sequential):
    """Recurrent SE-adLIF (or EF-adLIF, LIF) network; input counts ``[T, B, n_inputs]``, output the readout
    potential ``[T − ignore_first (+ n_layers·⌊(K−1)/2⌋ with delays), B, n_classes]``."""

    def __init__(
        self,
        n_inputs: int = 140,
        n_classes: int = 20,
        hidden: int = 360,
        n_layers: int = 2,
        neuron: str = "se",
        recurrent: bool = True,
        dropout: float = 0.15,
        q: float | None = None,
        tau_u_range: tuple[float, float] = (5.0, 25.0),
        tau_w_range: tuple[float, float] = (60.0, 300.0),
        tau_out: float = 15.0,
        ignore_first: int = 10,
        delays: bool = False,
        max_delay: int = 25,
        backend: str = "auto",
    ) -> None:
        import neuromorph.nn as nnm

        for name, value in (("n_inputs", n_inputs), ("n_classes", n_classes), ("hidden", hidden), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"AdLIFNet: {name}={value!r} must be a positive integer")
        if neuron not in NEURONS:
            raise ConfigError(f"AdLIFNet: neuron={neuron!r} must be one of {', '.join(NEURONS)}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"AdLIFNet: dropout={dropout!r} must be in [0, 1)")
        if isinstance(ignore_first, bool) or not isinstance(ignore_first, int) or ignore_first < 0:
            raise ConfigError(f"AdLIFNet: ignore_first={ignore_first!r} must be an integer >= 0")
        layers: list[torch.nn.Module] = []
        width = n_inputs
        for _ in range(n_layers):
            if delays:
                syn: torch.nn.Module = nnm.DelayedLinear(width, hidden, max_delay, bias=True)
                _match_linear_drive(syn)
            else:
                syn = nnm.Linear(width, hidden)
            torch.nn.init.zeros_(syn.bias)
            cell = self._neuron(nnm, neuron, hidden, q, tau_u_range, tau_w_range, backend)
            if recurrent:
                cell = nnm.Recurrent(cell, hidden)
                torch.nn.init.orthogonal_(cell.weight)
            layers += [syn, cell, nnm.Dropout(dropout)]
            width = hidden
        out = nnm.Linear(width, n_classes)
        torch.nn.init.zeros_(out.bias)
        # LI decays by 1 − 1/τ per step; this τ gives the reference's κ = exp(−1/τ_out)
        layers += [out, nnm.LI(tau=1.0 / (1.0 - math.exp(-1.0 / tau_out)), decay_input=True)]
        super().__init__(*layers)
        self.n_inputs = n_inputs
        self.n_classes = n_classes
        self.ignore_first = ignore_first
        nnm.expect_input(self, (n_inputs,))

    @staticmethod
    def _neuron(nnm, kind: str, n: int, q, tau_u_range, tau_w_range, backend: str) -> torch.nn.Module:
        if kind == "lif":
            lo, hi = (float(v) for v in tau_u_range)
            tau = lo + (hi - lo) * torch.rand(n)
            # the adLIF membrane without adaptation: hard reset to 0 (detached), exp decay learned per neuron.
            # LIF decays by 1 − 1/τ, so store the τ whose Euler decay equals exp(−1/τ_u)
            return nnm.LIF(tau=1.0 / (1.0 - torch.exp(-1.0 / tau)), learn_tau=True, shape=(n,), reset="hard",
                           detach_reset=True, decay_input=True, surrogate="slayer_exp", backend=backend)
        cls = nnm.SEAdLIF if kind == "se" else nnm.EFAdLIF
        return cls(n, tau_u_range=tau_u_range, tau_w_range=tau_w_range, q=q, backend=backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.ignore_first and y.shape[0] > self.ignore_first:
            y = y[self.ignore_first :]
        return y


def _match_linear_drive(syn: torch.nn.Module) -> None:
    """Initialise a DelayedLinear so that its input drive matches the Linear it replaces.

    The Linear's weights are U(±1/√fan_in). A DCLS synapse spreads its weight w over the K taps of its
    Gaussian (σ = ⌊K/2⌋ at the start: nearly flat over K = 25 taps), so a spike train uncorrelated in time
    reaches the neuron with a standard deviation ‖g‖₂·w (g: the normalised taps, ‖g‖₂ ≈ 1/√K), about 5 times
    less than through the Linear. Each weight is therefore U(±1/√fan_in) / ‖g_ji‖₂; as σ shrinks during
    training the taps narrow to one and the weights (trained at Adam lr 0.01) adapt.
    """
    with torch.no_grad():
        bound = 1.0 / math.sqrt(syn.in_features)
        syn.weight.fill_(1.0)
        gain = syn.taps().pow(2).sum(0).rsqrt().t()  # 1/‖g_ji‖₂, [out, in]
        syn.weight.uniform_(-bound, bound).mul_(gain)


def parameter_count(n_inputs: int, hidden: int, n_layers: int, n_classes: int) -> int:
    """Trainable parameters of the recurrent adLIF net: per layer W, bias, V and 4 per neuron (w_u, w_w, a, b),
    plus the readout W_o, b_o (the readout decay is fixed)."""
    total, width = 0, n_inputs
    for _ in range(n_layers):
        total += hidden * width + hidden + hidden * hidden + 4 * hidden
        width = hidden
    return total + width * n_classes + n_classes
