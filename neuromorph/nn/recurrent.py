"""Recurrent spiking layers: a neuron whose input current includes its own spikes of the previous step.

``Recurrent(neuron, features)`` runs ``neuron`` with the input current ``y_t = x_t + V s_{t−1} (+ bias)``:
``x`` is the feed-forward current ``[T, B, features]`` (a ``Linear`` or ``Conv`` precedes the layer, as
before any neuron), ``V = layer.weight`` ``[features, features]`` is learned, ``s_0 = 0``. It is the
recurrent layer of snnTorch's ``RLeaky``/``RSynaptic`` (all-to-all) and of the SE-adLIF networks, for any
neuromorph neuron. Like every neuron it keeps no state between calls unless built with ``streaming=True``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.functional.neuron import check_sequence
from neuromorph.kernels import recurrent as _rec
from neuromorph.kernels.recurrent import RecurrentState
from neuromorph.nn.neurons import NeuronSpec, SpikingNeuron
from neuromorph.nn.protocol import LayerDecl, Role, declaration

__all__ = ["Recurrent", "RecurrentState"]


class Recurrent(nn.Module):
    """A spiking neuron layer with all-to-all recurrent connections.

    Args:
        neuron: the neuron (``LIF``, ``CubaLIF``, ``ALIF``, ... any neuromorph spiking neuron); its
            parameters, surrogate and backend are used as they are.
        features: the number of neurons N (the last input dimension).
        bias: add a learned bias ``[N]`` to the input current.
        streaming: ``forward(x, state)`` returns ``(spikes, state)`` (a :class:`RecurrentState`: the
            neuron's state and the last spikes) for online inference.

    ``weight`` ``[N, N]`` (``[to, from]``, as ``torch.nn.Linear``) starts as ``nn.Linear``'s default
    (uniform in ±1/√N); re-initialise it as a recipe needs (e.g. ``torch.nn.init.orthogonal_``).
    The fused backend runs the whole sequence in one compiled loop with an event-driven recurrent
    product (:mod:`neuromorph.kernels.recurrent`); the reference and Triton backends step through time.
    """

    def __init__(self, neuron: nn.Module, features: int, bias: bool = False, streaming: bool = False):
        super().__init__()
        decl = declaration(neuron) if isinstance(neuron, nn.Module) else None
        if decl is None or decl.role is not Role.NEURON or decl.stepwise:
            raise ConfigError(f"Recurrent: neuron must be a spiking neuron layer run on whole sequences (LIF, CubaLIF, "
                              f"ALIF, ...), got {type(neuron).__name__}"
                              + ("" if decl is None else f" (declared {decl.role.value} {decl.op!r})"))
        if isinstance(neuron, Recurrent):
            raise ConfigError("Recurrent: the neuron is already a Recurrent layer")
        if not isinstance(features, int) or isinstance(features, bool) or features < 1:
            raise ConfigError(f"Recurrent: features must be a positive int, got {features!r}")
        shape = getattr(neuron, "shape", None)
        if shape is not None and tuple(shape) != (features,):
            raise ConfigError(f"Recurrent: the neuron has shape={tuple(shape)}, the layer features={features}")
        self.neuron = neuron
        self.features = features
        self.streaming = bool(streaming)
        self.weight = nn.Parameter(torch.empty(features, features))
        self.bias = nn.Parameter(torch.zeros(features)) if bias else None
        bound = 1.0 / math.sqrt(features)
        nn.init.uniform_(self.weight, -bound, bound)

    @property
    def layer_decl(self) -> LayerDecl:
        """Layer protocol: the neuron's kind, declared ``recurrent`` (its input adds ``weight @ s[t-1]``)."""
        inner = declaration(self.neuron)
        return LayerDecl(Role.NEURON, inner.op, mode_dependent=inner.mode_dependent, recurrent=True)

    @property
    def kind(self) -> str:
        """The neuron's kind (``"LIF"``, ``"CubaLIF"``, ...)."""
        return declaration(self.neuron).op

    @property
    def dt(self) -> Optional[float]:
        """The neuron's ``dt`` (seconds per step), which NIR export reads."""
        return getattr(self.neuron, "dt", None)

    def spec(self) -> NeuronSpec:
        """The neuron's spec (the recurrent weight is ``self.weight``, the bias ``self.bias``)."""
        spec = getattr(self.neuron, "spec", None)
        if not callable(spec):
            raise ConfigError(f"Recurrent: the neuron {type(self.neuron).__name__} has no spec()")
        return spec()

    def _fused_dynamics(self):
        """(cfg, params) when the neuron is a SpikingNeuron that runs its own dynamics (not a custom forward)."""
        n = self.neuron
        if isinstance(n, SpikingNeuron) and type(n).forward is SpikingNeuron.forward:
            cfg, params = n.dynamics()
            if not cfg.fire:
                raise ConfigError(f"Recurrent: {type(n).__name__} never fires; a recurrent layer needs a spiking neuron")
            return cfg, params
        return None

    def forward(self, x: torch.Tensor, state: Optional[RecurrentState] = None):
        name = f"Recurrent({type(self.neuron).__name__})"
        check_sequence(x, name + " input", getattr(self.neuron, "check_finite", False))
        if x.dim() != 3 or x.shape[2] != self.features:
            raise ShapeError(f"{name}: expected input [T, B, {self.features}], got shape {tuple(x.shape)}")
        if state is not None and not self.streaming:
            raise ConfigError(f"{name}: a state was passed but streaming=False; construct the layer with streaming=True "
                              f"for online inference")
        if self.bias is not None:
            x = x + self.bias
        weight = self.weight.to(x.dtype)
        dyn = self._fused_dynamics()
        if dyn is not None:
            cfg, params = dyn
            out, final = _rec.run(x, weight, params, cfg, state, getattr(self.neuron, "backend", "auto"))
        else:  # any other neuron, one step at a time through its own streaming forward
            out, final = _rec.run_steps(x, weight, self._neuron_step, state)
        return (out, final) if self.streaming else out

    def _neuron_step(self, y: torch.Tensor, st):
        n = self.neuron
        was = getattr(n, "streaming", False)
        n.streaming = True
        try:
            return n(y, st)
        finally:
            n.streaming = was

    def extra_repr(self) -> str:
        return f"features={self.features}" + (", bias=True" if self.bias is not None else "") + (
            ", streaming=True" if self.streaming else "")
