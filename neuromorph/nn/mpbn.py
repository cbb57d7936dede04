"""MPBN: membrane-potential batch normalisation between charge and fire, and its folding into thresholds.

Source: Guo et al., "Membrane Potential Batch Normalization for Spiking Neural Networks", ICCV 2023;
official code ``yfguo91/MPBN@149379d`` (``models/spike_layer.py``).
Method page: ``docs/methods/mpbn.md`` (equations, defaults, what neuromorph does differently).

Per step (time in steps)::

    u_t = λ v_{t-1} + x_t                          charge (λ = 0.25: τ = 4/3, no input decay)
    ũ_t = γ (u_t − μ) / sqrt(σ² + ε) + β            MPBN, one BN shared by all t
    o_t = H(ũ_t − θ)                                strict ">", θ = 0.5
    v_t = u_t (1 − o_t)                             hard reset on the RAW potential u, not on ũ

Channel-wise MPBN (the official code) has one (μ, σ², γ, β) per channel with statistics over batch and
space; the element-wise form (paper only) has one per neuron (c, h, w) with statistics over the batch.
In training mode each step is normalised with that step's batch statistics and the running statistics
are an EMA over all T calls, as in the official code (``BatchNorm2d`` called once per step).

Folding (eval mode):  o_t = H(s (u_t − θ̃)) with  θ̃ = (θ − β) sqrt(σ² + ε)/γ + μ  and  s = sign(γ):
for γ < 0 the inequality flips, so the folded neuron fires when u < θ̃ (test s·u > s·θ̃); for γ = 0,
ũ ≡ β, so it fires at every step when β > θ (θ̃ = −∞) and never otherwise (θ̃ = +∞).
Note SpikingJelly's ``MPBNLIFNode`` resets the normalised potential instead; it is not equivalent.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from neuromorph.errors import ConfigError, ExportError, ShapeError, check_choice
from neuromorph.functional.neuron import check_sequence
from neuromorph.kernels import reference
from neuromorph.kernels import run as run_dynamics
from neuromorph.kernels.config import DynamicsParams, NeuronState
from neuromorph.nn.neurons import LIF, NeuronSpec
from neuromorph.nn.protocol import LayerDecl, Role

__all__ = ["MPBN", "MPBNLIF", "fold_mpbn"]


class MPBN(torch.nn.Module):
    """Batch norm of the membrane potential ``u_t`` ``[B, *features]`` (applied per time step).

    Args:
        features: the number of channels C (``mode="channel"``; input ``[B, C, ...]``) or the full
            feature shape, e.g. ``(C, H, W)`` (``mode="element"``: one statistic per neuron).
        mode: ``"channel"`` (official code) or ``"element"`` (paper's element-wise form).
        eps, momentum: as ``torch.nn.BatchNorm2d`` (PyTorch defaults, as in the official code).
    """

    layer_decl = LayerDecl(Role.NORMALISATION, "mpbn", mode_dependent=True)  # folded into the neuron's threshold at inference

    def __init__(self, features: int | Sequence[int], mode: str = "channel", eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        check_choice("MPBN mode", mode, ("channel", "element"))
        shape = (features,) if isinstance(features, int) else tuple(int(f) for f in features)
        if mode == "channel" and len(shape) != 1:
            raise ConfigError(f"MPBN: mode='channel' takes the channel count, got features={features!r}")
        if not shape or any(f < 1 for f in shape):
            raise ConfigError(f"MPBN: features={features!r} must be positive")
        self.mode = mode
        self.shape = shape
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.weight = torch.nn.Parameter(torch.ones(shape))
        self.bias = torch.nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _check(self, u: torch.Tensor) -> None:
        if self.mode == "channel":
            ok = u.dim() >= 2 and u.shape[1] == self.shape[0]
        else:
            ok = tuple(u.shape[1:]) == self.shape
        if not ok:
            want = f"[B, {self.shape[0]}, ...]" if self.mode == "channel" else f"[B, {', '.join(map(str, self.shape))}]"
            raise ShapeError(f"MPBN({self.mode}): membrane of shape {tuple(u.shape)} does not match {want}")
        per_stat = u.numel() // (self.shape[0] if self.mode == "channel" else max(1, u[0].numel()))
        if self.training and per_stat < 2:
            raise ShapeError(f"MPBN({self.mode}): training-mode statistics need more than one value per "
                             f"{'channel' if self.mode == 'channel' else 'neuron'}; got a membrane of shape "
                             f"{tuple(u.shape)} (batch size 1): use a larger batch or eval mode")

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """ũ = γ (u − μ)/sqrt(σ² + ε) + β for one step's membrane ``u`` ``[B, *features]``."""
        self._check(u)
        if self.training:
            self.num_batches_tracked.add_(1)
        if self.mode == "channel":
            return F.batch_norm(u, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.momentum, self.eps)
        flat = F.batch_norm(
            u.reshape(u.shape[0], -1),
            self.running_mean.view(-1),  # views: batch_norm updates the running statistics in place
            self.running_var.view(-1),
            self.weight.view(-1),
            self.bias.view(-1),
            self.training,
            self.momentum,
            self.eps,
        )
        return flat.view(u.shape)

    def folded_threshold(self, threshold: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(θ̃, s): the per-channel ``[C]`` or per-neuron ``features`` threshold and firing sign.

        Computed in float64 from the running statistics.
        """
        theta = torch.as_tensor(threshold, dtype=torch.float64)
        gamma, beta = self.weight.detach().double(), self.bias.detach().double()
        std = torch.sqrt(self.running_var.double() + self.eps)
        mu = self.running_mean.double()
        safe_gamma = torch.where(gamma == 0, torch.ones_like(gamma), gamma)
        folded = (theta - beta) * std / safe_gamma + mu
        # γ = 0: ũ ≡ β, so the neuron fires always (β > θ) or never; ±inf thresholds say exactly that
        inf = torch.full_like(folded, float("inf"))
        folded = torch.where(gamma == 0, torch.where(beta > theta, -inf, inf), folded)
        sign = torch.where(gamma < 0, -torch.ones_like(gamma), torch.ones_like(gamma))
        return folded, sign


class MPBNLIF(LIF):
    """LIF neuron with membrane-potential batch norm between charge and fire (MPBN, Guo et al., ICCV 2023).

    A :class:`neuromorph.nn.LIF` (so monitors and exporters see a spiking neuron): input
    ``[T, B, *features]`` (float), output spikes of the same shape, stateless across calls (or
    ``streaming=True``). Defaults are the official code's: λ = 0.25 (``tau=4/3``, ``decay_input=False``),
    θ = 0.5, hard reset to 0 on the raw potential, surrogate ``"mpr"`` with k = 3 (the tanh bump of
    ũ on [0, 1]).

    ``features``/``mode``/``eps``/``momentum`` are those of :class:`MPBN`. After :func:`fold_mpbn`
    the module has ``mpbn = None``, a per-channel ``[C]`` or per-neuron threshold θ̃ and a
    ``fire_sign`` buffer (−1 where γ < 0), and emits exactly the spikes of the unfolded module in
    eval mode. While MPBN is present the neuron runs on the reference backend (its ``pre_fire`` hook
    applies MPBN while the reset keeps acting on the raw potential); a folded neuron with all signs
    positive is a plain per-channel-threshold LIF and uses ``backend``.
    """

    def __init__(
        self,
        features: int | Sequence[int],
        mode: str = "channel",
        tau: float = 4.0 / 3.0,
        threshold: float = 0.5,
        reset: str = "hard",
        v_reset: float = 0.0,
        decay_input: bool = False,
        detach_reset: bool = False,
        surrogate: str = "mpr",
        alpha: float | None = None,
        eps: float = 1e-5,
        momentum: float = 0.1,
        learn_tau: bool = False,
        backend: str = "auto",
        streaming: bool = False,
        check_finite: bool = False,
    ) -> None:
        super().__init__(tau=tau, threshold=threshold, reset=reset, v_reset=v_reset, decay_input=decay_input,
                         detach_reset=detach_reset, surrogate=surrogate, alpha=alpha, learn_tau=learn_tau,
                         backend=backend, streaming=streaming, check_finite=check_finite)
        self.mpbn: MPBN | None = MPBN(features, mode=mode, eps=eps, momentum=momentum)
        self.register_buffer("fire_sign", None)
        self.features = self.mpbn.shape
        self.mode = mode

    @property
    def folded(self) -> bool:
        return self.mpbn is None

    def _per_channel(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # a folded channel-wise [C] tensor must broadcast over [B, C, *spatial]
        if self.mode == "channel" and p.dim() == 1 and p.numel() > 1:
            return p.view((-1,) + (1,) * (x.dim() - 3))
        return p

    def forward(self, x: torch.Tensor, state: NeuronState | None = None):
        check_sequence(x, "MPBNLIF input", self.check_finite)
        if state is not None and not self.streaming:
            raise ConfigError("MPBNLIF: a state was passed but streaming=False")
        cfg, params = self.dynamics()
        beta = params.beta.to(x.dtype)
        threshold = self._per_channel(self.threshold, x).to(x.dtype)
        sign = None if self.fire_sign is None else self._per_channel(self.fire_sign, x).to(x.dtype)
        if self.mpbn is not None:
            mpbn = self.mpbn
            out, _, final = reference.run(x, DynamicsParams(beta, threshold), cfg, state, pre_fire=lambda h, t: mpbn(h))
        elif sign is None or bool((sign > 0).all()):
            out, _, final = run_dynamics(x, DynamicsParams(beta, threshold), cfg, state, backend=self.backend)
        else:
            # s·u > s·θ̃: multiply the tested potential by the sign, keep the reset on the raw u
            out, _, final = reference.run(x, DynamicsParams(beta, sign * threshold), cfg, state,
                                          pre_fire=lambda h, t: sign * h)
        return (out, final) if self.streaming else out

    def spec(self) -> NeuronSpec:
        """The plain LIF this neuron equals once folded (per-channel ``[C]`` or per-neuron θ̃).

        Raises ``ExportError`` before :func:`fold_mpbn`, or when a channel has γ < 0 (a LIF cannot
        fire below its threshold).
        """
        if self.mpbn is not None:
            raise ExportError("MPBNLIF: call neuromorph.nn.fold_mpbn(model) (in eval mode) before export; "
                              "MPBN itself has no hardware equivalent, its folded threshold has")
        if self.fire_sign is not None and bool((self.fire_sign < 0).any()):
            raise ExportError("MPBNLIF: folded with gamma < 0 on some channels (fires below threshold); "
                              "refold with allow_negative_gamma=False to find them")
        return super().spec()

    def extra_repr(self) -> str:
        state = "folded" if self.folded else f"mpbn={self.mode}"
        return f"features={self.features}, {super().extra_repr()}, {state}"


def fold_mpbn(model: torch.nn.Module, allow_negative_gamma: bool = True) -> torch.nn.Module:
    """Remove every MPBN of ``model`` (in place) and write the equivalent thresholds; returns ``model``.

    θ̃ = (θ − β) sqrt(σ² + ε)/γ + μ per channel (channel-wise) or per neuron (element-wise), with the
    firing sign s = sign(γ) (Guo et al., ICCV 2023). In eval mode the folded model emits exactly the spikes of
    the unfolded one. ``allow_negative_gamma=False`` refuses γ < 0 (for targets that cannot flip a
    comparison, e.g. hardware export) instead of storing a sign.

    Raises:
        ConfigError: a neuron in training mode (its batch statistics cannot be folded), or with
            γ < 0 when not allowed; the message names the layer.
    """
    found = False
    for name, m in model.named_modules():
        if not isinstance(m, MPBNLIF) or m.mpbn is None:
            continue
        found = True
        label = name or type(model).__name__
        if m.training or m.mpbn.training:
            raise ConfigError(
                f"fold_mpbn: layer {label!r} is in training mode; call model.eval() first "
                "(folding uses the running statistics, training mode uses batch statistics)"
            )
        if int(m.mpbn.num_batches_tracked) == 0:
            raise ConfigError(
                f"fold_mpbn: layer {label!r} has no running statistics yet (never run in training mode); "
                "folding would bake in the initial mean 0 / variance 1"
            )
        threshold, sign = m.mpbn.folded_threshold(m.threshold)
        if not allow_negative_gamma and bool((sign < 0).any()):
            bad = (m.mpbn.weight.detach() < 0).nonzero().flatten().tolist()
            raise ConfigError(f"fold_mpbn: layer {label!r} has gamma < 0 at {bad[:10]}; the folded neuron would fire below its threshold")
        dtype = m.tau.dtype
        m.threshold = threshold.to(dtype)  # a buffer (MPBNLIF has no learnable θ: MPBN's β plays that role)
        m.fire_sign = sign.to(dtype)
        m.mpbn = None
    if not found:
        raise ConfigError(f"fold_mpbn: {type(model).__name__} contains no unfolded MPBNLIF layer")
    return model
