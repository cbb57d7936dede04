"""Run a whole network step by step: :class:`Streaming` carries every neuron's state between calls.

A neuron built with ``streaming=True`` returns ``(spikes, state)``, which ``torch.nn.Sequential`` cannot
pass on ("argument 'input' must be Tensor, not tuple"). ``Streaming(seq)`` runs the layers of a
Sequential itself: neurons get their state from the previous call and hand back the new one; stateless
layers (conv, linear, pooling, flatten, eval-mode dropout/batch norm) see the chunk as a short sequence.
Feeding a sequence in pieces therefore gives exactly the spikes of the whole sequence at once.
``DelayedLinear`` keeps its delayed currents in flight between calls (:meth:`DelayedLinear.stream`).

The per-step cost matters for online use (batch 1, one step per call): in inference (no gradient, CPU
float32/float64, a neuron run by the fused backend without hooks) a neuron's step calls the fused backend's
compiled loop for its configuration directly, with its parameters flattened once and its state kept in
place, instead of going through the autograd Function with its per-call flattening (about 10 µs instead of
about 150 µs per neuron layer and step here). The loop is the same compiled definition, so the spikes are
the same bits. Eval-mode ``BatchNorm1d`` and dropout without hooks are applied without their module call
(the same ATen batch-norm call; the identity): their module calls are a sizeable part of a batch-1 step.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as _torch_module

from neuromorph import kernels
from neuromorph.errors import ConfigError, ShapeError
from neuromorph.kernels import fused
from neuromorph.kernels.config import NeuronState, carries_a, carries_i, flat_param
from neuromorph.nn.delays import DelayedLinear, DelayState
from neuromorph.kernels import sparse
from neuromorph.nn.layers import BatchNorm1d, Linear, SequenceDropout
from neuromorph.nn.layout import InputLayout, check_input, input_layout
from neuromorph.nn.neurons import SpikingNeuron
from neuromorph.nn.protocol import declaration
from neuromorph.nn.recurrent import Recurrent

__all__ = ["Streaming"]

#: the layers whose state Streaming carries between calls (a recurrent layer: its neuron's state and last spikes;
#: a delay layer: the currents still in flight)
_STATEFUL = (SpikingNeuron, Recurrent, DelayedLinear)


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
    built with or without ``streaming=True``. :class:`~neuromorph.nn.DelayedLinear` carries its delayed
    currents between calls; its stream gives the whole sequence's first T output steps (the extra
    ``⌊(K-1)/2⌋`` steps of the whole-sequence output are what feeding zero steps gives); it is stepped
    through its own buffer, not called, so hooks registered on a ``DelayedLinear`` (an energy monitor's
    included) do not run while streaming (a ``RuntimeWarning`` says so once per layer);
    :func:`neuromorph.kernels.sparse.count_work` counts what its streamed steps deliver. Other layers that
    mix time steps without keeping state between calls (declared ``mixes_time`` in the layer protocol:
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
            if getattr(declaration(module), "mixes_time", False) and not isinstance(module, DelayedLinear):
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
        self._plans: dict[str, Any] = {}  # the fast inference steps: _NeuronStep, _LinearStep, _NoStep
        self._warned: set[str] = set()

    def reset(self) -> None:
        """Forget every neuron's state: the next call starts a new sequence."""
        self._states = {}
        self._plans = {}
        for _, module in self._layers:
            reset_state = getattr(module, "reset_state", None)
            if callable(reset_state):  # step-mode layers with their own state (QCFSNeuron)
                reset_state()

    @property
    def states(self) -> dict[str, Any]:
        """The current state of each stateful layer (neurons, delay layers), by its name in the Sequential (empty
        after reset); a copy, which later steps do not change."""
        return {k: _copy_state(v) for k, v in self._states.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run a chunk of ``t`` steps ``[t, B, ...]`` (time-major, like every neuromorph layer)."""
        if x.dim() < 2:
            raise ShapeError(f"Streaming: a chunk must be [t, B, ...], got shape {tuple(x.shape)}; use .step(x) for one "
                             f"step [B, ...]")
        layout = input_layout(self.network)
        if layout is not None:  # declared with expect_input (e.g. a model loaded from a checkpoint)
            check_input(x, InputLayout(layout.shape), f"Streaming({type(self.network).__name__})")
        for name, module in self._layers:
            if isinstance(module, DelayedLinear):
                if name not in self._warned and _hooked(module):
                    self._warned.add(name)  # once per layer and stream
                    warnings.warn(
                        f"Streaming: the hooks on layer {name!r} (DelayedLinear) do not run while streaming: its delayed "
                        f"currents are stepped through DelayedLinear.stream, not its forward, so an energy monitor does "
                        f"not count its synaptic operations; neuromorph.kernels.sparse.count_work() counts what the "
                        f"streamed steps deliver", RuntimeWarning, stacklevel=2)
                x, self._states[name] = module.stream(x, self._states.get(name))
            elif isinstance(module, _STATEFUL):
                x, self._states[name] = self._run_neuron(name, module, x)
            elif isinstance(module, Linear):
                x = self._run_linear(name, module, x)
            else:
                x = _stateless(module, x)
        return x

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Run one time step ``[B, ...]``; returns that step's output ``[B, ...]``."""
        return self.forward(x.unsqueeze(0)).squeeze(0)

    def _run_neuron(self, name: str, neuron: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        plan = self._plans.get(name)
        if plan is not None and plan.fits(neuron, x):  # its state has x's batch (the plan's shape includes it)
            return plan(x)
        state: Optional[Any] = self._states.get(name)
        if state is not None:
            batch = _state_batch(state)
            if batch is not None and x.dim() >= 2 and batch != x.shape[1]:
                raise ShapeError(f"Streaming: layer {name!r} holds the state of a batch of {batch}, the input has batch "
                                 f"{x.shape[1]}; call reset() before a new sequence")
        if plan is None or not plan.fits(neuron, x):
            plan = _NeuronStep.build(neuron, x, state)
            if plan is None:
                self._plans.pop(name, None)
            else:
                self._plans[name] = plan
        if plan is not None:
            return plan(x)
        was = neuron.streaming
        neuron.streaming = True  # the neuron returns (output, state); restored below
        try:
            out, new_state = neuron(x, state)
        finally:
            neuron.streaming = was
        return out, new_state

    def _run_linear(self, name: str, layer: Linear, x: torch.Tensor) -> torch.Tensor:
        plan = self._plans.get(name)
        if plan is None or not plan.fits(layer, x):
            plan = _LinearStep.build(layer, x) or _NoStep(layer, x)
            self._plans[name] = plan
        y = plan(x)
        return y if y is not None else layer(x)  # the layer itself where no fast step applies

    def extra_repr(self) -> str:
        return f"neurons={sum(isinstance(m, _STATEFUL) for _, m in self._layers)}"


def _stateless(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A stateless layer on a chunk. Eval-mode dropout and batch norm without hooks skip the module call
    (a sizeable part of a batch-1 step): dropout is the identity, batch norm the same ATen call its forward
    makes, so the result is the same bits."""
    if module.training or _hooked(module):
        return module(x)
    forward = type(module).forward
    if forward is nn.Dropout.forward or forward is SequenceDropout.forward:
        return x
    if forward is BatchNorm1d.forward and x.dim() == 3:
        p, b = module._parameters, module._buffers  # the dicts, not Module.__getattr__ (it adds ~3 µs a step)
        mean, var = b.get("running_mean"), b.get("running_var")
        if mean is not None and var is not None:
            steps, batch, channels = x.shape
            y = torch.batch_norm(x.reshape(steps * batch, channels), p.get("weight"), p.get("bias"), mean, var, False,
                                 0.0, module.eps, torch.backends.cudnn.enabled)
            return y.view(steps, batch, channels)
    return module(x)


def _copy_state(state: Any) -> Any:
    if isinstance(state, DelayState):
        return DelayState(state.ring.clone(), state.head)
    if isinstance(state, NeuronState):
        return NeuronState(*(None if t is None else t.clone() for t in state))
    return state


def _hooked(module: nn.Module) -> bool:
    """Whether calling ``module`` would run hooks (its own or global ones), which the fast step would skip."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or _torch_module._global_forward_hooks
                or _torch_module._global_forward_pre_hooks or _torch_module._global_backward_hooks
                or _torch_module._global_backward_pre_hooks)


class _NeuronStep:
    """One neuron layer's inference step through the fused backend's compiled loop, without the autograd
    Function: parameters flattened once (rebuilt when a parameter or buffer changes), state updated in place."""

    def __init__(self, neuron, key, shape, dtype, fn, params, consts, cfg, v, i, a):
        self.neuron, self.key, self.shape, self.dtype = neuron, key, torch.Size(shape), dtype
        self.fn, self.params, self.consts, self.cfg = fn, params, consts, cfg
        self.v, self.i, self.a = v, i, a
        self.dummy = np.zeros((1, 1), v.dtype)
        # views of the state arrays, which the loop updates in place: built once, not at every step
        view = lambda arr, used: torch.from_numpy(arr).view(self.shape) if used else None  # noqa: E731
        self.state = NeuronState(view(v, True), view(i, carries_i(cfg)), view(a, carries_a(cfg)))

    @staticmethod
    def _key(neuron: nn.Module) -> tuple:
        """What the flattened parameters depend on (a neuron holds its parameters itself, no submodules)."""
        tensors = (*neuron._parameters.values(), *neuron._buffers.values())
        return (neuron.backend, neuron.check_finite, neuron.shape,
                *((t.data_ptr(), t._version) for t in tensors if t is not None))

    @classmethod
    def eligible(cls, neuron: nn.Module, x: torch.Tensor) -> bool:
        return (type(neuron).forward is SpikingNeuron.forward and not isinstance(neuron, Recurrent)
                and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.dim() >= 2
                and (neuron.shape is None or tuple(x.shape[2:]) == neuron.shape)
                and not neuron.check_finite and kernels.resolve_backend(neuron.backend, x) == "fused"
                and not _hooked(neuron)
                and not (torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad
                                                                              for p in neuron.parameters()))))

    def fits(self, neuron: nn.Module, x: torch.Tensor) -> bool:
        """Whether this plan still runs ``neuron`` on ``x`` (what :meth:`eligible` checked at build time, less
        what cannot change without changing the key: the class, the backend, the check_finite flag)."""
        return (neuron is self.neuron and x.shape[1:] == self.shape and x.dtype == self.dtype
                and x.device.type == "cpu" and not _hooked(neuron) and self._key(neuron) == self.key
                and not (torch.is_grad_enabled() and (x.requires_grad or any(
                    p.requires_grad for p in neuron._parameters.values() if p is not None))))

    @classmethod
    def build(cls, neuron: SpikingNeuron, x: torch.Tensor, state: Optional[NeuronState]) -> Optional["_NeuronStep"]:
        if not cls.eligible(neuron, x):
            return None
        with torch.no_grad():
            cfg, params = neuron.dynamics()
            shape = tuple(x.shape[1:])
            ref = x.detach()[:1].reshape(shape) if x.shape[0] else x.new_zeros(shape)
            flat = [flat_param(None if q is None else torch.as_tensor(q, dtype=x.dtype), shape, ref).numpy()
                    for q in (params.beta, params.threshold, params.syn_decay, params.rho, params.adapt, params.couple)]
            M = int(np.prod(shape)) if shape else 1
            dt = flat[0].dtype

            def slot(t: Optional[torch.Tensor], used: bool, fill: float) -> np.ndarray:
                if not used:
                    return np.zeros(1, dt)
                if t is None:
                    return np.full(M, fill, dt)
                return t.detach().to(x.dtype).reshape(M).numpy().copy()

            st = state if state is not None else NeuronState(None, None, None)
            v = slot(st.v, True, cfg.v_rest)
            i = slot(st.i, carries_i(cfg), 0.0)
            a = slot(st.a, carries_a(cfg), 0.0)
        return cls(neuron, cls._key(neuron), shape, x.dtype, fused._compiled(cfg, False, dtype=dt, save_h=False), flat,
                   fused._consts(cfg, dt), cfg, v, i, a)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, NeuronState]:
        shape = tuple(x.shape)
        xn = x.detach().numpy().reshape(shape[0], -1)  # a view (a copy only if x is not contiguous)
        out = np.empty_like(xn)
        d = self.dummy  # no backward: h_t, a_{t-1} and i_t are not kept (save_h=False)
        self.fn(xn, *self.params, self.consts, out, d, d, d, d, self.v, self.i, self.a,
                max(xn.shape[1], 1))  # all neurons in one block (serial)
        return torch.from_numpy(out.reshape(shape)), self.state


class _LinearStep:
    """A :class:`~neuromorph.nn.Linear`'s inference step on the few rows of a streamed step, without its
    forward's Python work: for an event-driven layer one compiled call applies the auto rule (nonzero inputs
    below the crossover) and computes, the same scan in the same order as the layer's own event-driven
    forward (so the same bits); where the layer would run dense (above the crossover, a narrow layer,
    ``backend="dense"``) the same dense product its forward runs. ``last_path`` and
    ``last_density`` are set as the forward sets them."""

    def __init__(self, layer, key, shape, dtype, forced, dense_only, fn, limit):
        self.layer, self.key, self.shape, self.dtype, self.forced = layer, key, shape, dtype, forced
        self.dense_only, self.fn, self.limit = dense_only, fn, limit
        self.weight, self.bias = layer._parameters["weight"], layer._parameters.get("bias")
        self.w = self.weight.detach().numpy()
        self.b = self.bias.detach().numpy() if self.bias is not None else np.zeros(self.w.shape[0], self.w.dtype)
        self.n_in, self.n_out = self.w.shape[1], self.w.shape[0]

    @staticmethod
    def _key(layer: Linear) -> tuple:
        w, b = layer._parameters["weight"], layer._parameters.get("bias")
        return (layer.backend, layer.crossover, w.data_ptr(), w._version,
                None if b is None else b.data_ptr(), None if b is None else b._version)

    @staticmethod
    def _needs_grad(layer: Linear, x: torch.Tensor) -> bool:
        return torch.is_grad_enabled() and (x.requires_grad or any(
            p.requires_grad for p in layer._parameters.values() if p is not None))

    @classmethod
    def build(cls, layer: Linear, x: torch.Tensor) -> Optional["_LinearStep"]:
        w = layer._parameters["weight"]
        if (type(layer).forward is not Linear.forward or _hooked(layer) or sparse._WORK.get() is not None
                or cls._needs_grad(layer, x) or not sparse.eligible(x, w) or x.dim() < 2
                or x.shape[-1] != layer.in_features or x.numel() // x.shape[-1] >= sparse.PARALLEL_ROWS):
            return None
        mode, crossover = sparse.rule(x, w, layer.backend, layer.crossover)  # the layer's forward decides so too
        return cls(layer, cls._key(layer), x.shape, x.dtype, sparse._FORCED.get(), mode == "dense",
                   sparse._kernel("forward_scan_w", 1), crossover * x.numel())

    def fits(self, layer: Linear, x: torch.Tensor) -> bool:
        return (layer is self.layer and x.shape == self.shape and x.dtype == self.dtype and x.device.type == "cpu"
                and sparse._FORCED.get() == self.forced and sparse._WORK.get() is None and not _hooked(layer)
                and self._key(layer) == self.key and not self._needs_grad(layer, x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense_only:
            self.layer.__dict__.update(last_path="dense", last_density=float("nan"))
            return sparse.dense_linear(x, self.weight, self.bias, self.layer.backend)
        xn = x.detach().numpy().reshape(-1, self.n_in)  # a view (a copy only if x is not contiguous)
        out = np.empty((xn.shape[0], self.n_out), self.w.dtype)
        n = self.fn(xn, self.w, self.b, out, self.limit)
        if n < 0:  # at or above the crossover: the dense product, as the layer's forward would run
            self.layer.__dict__.update(last_path="dense", last_density=(-1 - n) / max(1, xn.size))
            return sparse.dense_linear(x, self.weight, self.bias, self.layer.backend)
        self.layer.__dict__.update(last_path="sparse", last_density=n / max(1, xn.size))
        return torch.from_numpy(out.reshape(*self.shape[:-1], self.n_out))


class _NoStep:
    """Remembers that :meth:`_LinearStep.build` found no fast step for this layer and input, so that it is not
    tried again at every step while nothing it depends on changes (the layer is then simply called)."""

    def __init__(self, layer: Linear, x: torch.Tensor):
        self.layer, self.signature = layer, self._signature(layer, x)

    @staticmethod
    def _signature(layer: Linear, x: torch.Tensor) -> tuple:
        return (x.shape, x.dtype, x.device, x.requires_grad, torch.is_grad_enabled(), sparse._FORCED.get(),
                sparse._WORK.get() is None, _hooked(layer), type(layer).forward, _LinearStep._key(layer))

    def fits(self, layer: Linear, x: torch.Tensor) -> bool:
        return layer is self.layer and self._signature(layer, x) == self.signature

    def __call__(self, x: torch.Tensor) -> None:
        return None


def _state_batch(state: Any) -> Optional[int]:
    """The batch size of a neuron state (its first tensor's leading dimension), if it has tensors."""
    if isinstance(state, DelayState):
        return int(state.ring.shape[1])
    values = state.values() if isinstance(state, dict) else state if isinstance(state, (tuple, list)) else (state,)
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            return int(value.shape[0])
    return None
