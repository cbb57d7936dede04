"""Run a whole network step by step: :class:`Streaming` carries every neuron's state between calls.

A neuron built with ``streaming=True`` returns ``(spikes, state)``, which ``torch.nn.Sequential`` cannot
pass on ("argument 'input' must be Tensor, not tuple"). ``Streaming(seq)`` runs the layers of a
Sequential itself: neurons get their state from the previous call and hand back the new one; stateless
layers (conv, linear, pooling, flatten, eval-mode dropout/batch norm) see the chunk as a short sequence.
Feeding a sequence in pieces therefore gives exactly the spikes of the whole sequence at once.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.layout import InputLayout, check_input, input_layout
from neuromorph.nn.neurons import SpikingNeuron
from neuromorph.nn.protocol import declaration
from neuromorph.nn.recurrent import Recurrent

__all__ = ["Streaming"]

#: the layers whose state Streaming carries between calls (a recurrent layer: its neuron's state and last spikes)
_STATEFUL = (SpikingNeuron, Recurrent)


def _flatten(seq: nn.Sequential, prefix: str = "") -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = []
    for name, module in seq.named_children():
        full = f"{prefix}{name}"
        if isinstance(module, nn.Sequential):
            layers.extend(_flatten(module, full + "."))
        else:
            layers.append((full, module))
    return layers


class Streaming(nn.Module):
    """Step-by-step (online) inference of a ``torch.nn.Sequential`` of neuromorph layers.

    ``stream.step(x)`` runs one time step ``[B, ...]`` and returns ``[B, ...]``; ``stream(x)`` runs a chunk
    of steps ``[t, B, ...]``. Each neuron's state (membrane, synaptic current, adaptation) is kept between
    calls, so any split of a sequence into steps or chunks gives the spikes of the whole sequence run at
    once. :meth:`reset` starts a new sequence (and is needed before a batch of another size).

    The neurons (and :class:`~neuromorph.nn.Recurrent` layers, whose state includes their last spikes) may be
    built with or without ``streaming=True``. Layers that mix time steps without
    keeping state between calls (declared ``mixes_time`` in the layer protocol: ``DelayedLinear``,
    ``DeltaActivation``, recurrent torch layers, a user's layer declaring it), and custom modules that hold
    neurons inside their own ``forward``, are refused with a ``ConfigError`` naming the layer: flatten the
    network into one Sequential of layers. Use it in eval mode: a layer with batch statistics in training
    mode (BatchNorm, SequenceDropout) would only see the current chunk.
    """

    def __init__(self, network: nn.Sequential):
        super().__init__()
        if not isinstance(network, nn.Sequential):
            raise ConfigError(
                f"Streaming runs the layers of a torch.nn.Sequential in order; got {type(network).__name__}, whose "
                f"forward it cannot see into (pass its Sequential part, e.g. model.net)"
            )
        self.network = network
        self._layers = _flatten(network)
        for name, module in self._layers:
            if getattr(declaration(module), "mixes_time", False):  # the layer protocol's declaration
                raise ConfigError(f"Streaming: layer {name!r} ({type(module).__name__}) mixes time steps and keeps no "
                                  f"state between calls, so it cannot be run step by step")
            if not isinstance(module, _STATEFUL):
                inner = [n for n, m in module.named_modules() if isinstance(m, SpikingNeuron)]
                if inner:
                    raise ConfigError(
                        f"Streaming: layer {name!r} ({type(module).__name__}) holds neurons inside its own forward "
                        f"({', '.join(f'{name}.{n}' for n in inner[:3])}), whose state it cannot carry; build the "
                        f"network as one nn.Sequential of layers"
                    )
        self._states: dict[str, Any] = {}

    def reset(self) -> None:
        """Forget every neuron's state: the next call starts a new sequence."""
        self._states = {}
        for _, module in self._layers:
            reset_state = getattr(module, "reset_state", None)
            if callable(reset_state):  # step-mode layers with their own state (QCFSNeuron)
                reset_state()

    @property
    def states(self) -> dict[str, Any]:
        """The current state of each neuron layer, by its name in the Sequential (empty after reset)."""
        return dict(self._states)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run a chunk of ``t`` steps ``[t, B, ...]`` (time-major, like every neuromorph layer)."""
        if x.dim() < 2:
            raise ShapeError(f"Streaming: a chunk must be [t, B, ...], got shape {tuple(x.shape)}; use .step(x) for one "
                             f"step [B, ...]")
        layout = input_layout(self.network)
        if layout is not None:  # declared with expect_input (e.g. a model loaded from a checkpoint)
            check_input(x, InputLayout(layout.shape), f"Streaming({type(self.network).__name__})")
        for name, module in self._layers:
            if isinstance(module, _STATEFUL):
                x, self._states[name] = self._run_neuron(name, module, x)
            else:
                x = module(x)
        return x

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Run one time step ``[B, ...]``; returns that step's output ``[B, ...]``."""
        return self.forward(x.unsqueeze(0)).squeeze(0)

    def _run_neuron(self, name: str, neuron: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        state: Optional[Any] = self._states.get(name)
        if state is not None:
            batch = _state_batch(state)
            if batch is not None and x.dim() >= 2 and batch != x.shape[1]:
                raise ShapeError(f"Streaming: layer {name!r} holds the state of a batch of {batch}, the input has batch "
                                 f"{x.shape[1]}; call reset() before a new sequence")
        was = neuron.streaming
        neuron.streaming = True  # the neuron returns (output, state); restored below
        try:
            out, new_state = neuron(x, state)
        finally:
            neuron.streaming = was
        return out, new_state

    def extra_repr(self) -> str:
        return f"neurons={sum(isinstance(m, _STATEFUL) for _, m in self._layers)}"


def _state_batch(state: Any) -> Optional[int]:
    """The batch size of a neuron state (its first tensor's leading dimension), if it has tensors."""
    values = state.values() if isinstance(state, dict) else state if isinstance(state, (tuple, list)) else (state,)
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            return int(value.shape[0])
    return None
