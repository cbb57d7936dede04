"""Monitors that count spikes and operations per layer by forward hooks, without changing the model.

``EnergyMonitor(model)`` is a context manager: inside it every forward pass of ``model`` is counted;
on exit every hook is removed, so the model is exactly as before (same outputs, same state dict).
Counting rules are in :mod:`neuromorph.energy.counters`. Counts are taken on the tensors a layer
actually receives, so spikes removed by Random Spike Masking (``SpikeMask``) or dropout never count.

What each layer is comes from the layer protocol (:mod:`neuromorph.nn.protocol`), nothing else:
synapses (``linear``, ``conv1d/2d/3d``, ``delayed_linear``) cost synops or MACs; pooling costs
accumulates; neurons and readouts cost neuron updates and emit the spikes counted; masks pass spikes on;
normalisation (folded at inference), reshapes, identities (Dropout) and real-valued activations cost
nothing. A layer that declares no role raises the package's one ``UnknownLayerError`` before anything
runs. Containers are looked into: linear algebra called directly inside a container's ``forward``
(``F.linear``, ``F.conv*``, ``matmul``/``@``, ``mm``, ``bmm``, ``addmm``, ``baddbmm``,
``F.scaled_dot_product_attention``, ``einsum`` (dense)) is caught by a ``TorchFunctionMode`` and counted
too, e.g. the ``Q·Kᵀ`` product of two spike tensors in attention (MACs). A container with
weights of its own whose forward showed no such operation (a fused kernel) is reported by name and type
(``ConfigError``) by :meth:`EnergyMonitor.check`, never counted as zero silently.
Not counted (by convention, as in most papers): softmax, normalisations at inference (folded),
element-wise additions of residual paths, and reductions such as a mean over tokens.
"""

from __future__ import annotations

import math

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from neuromorph.energy.counters import (
    LayerCounts,
    conv_fanout,
    is_binary,
    linear_fanout,
    numel,
    pool_fanout,
    spike_indicator,
    split_leading,
)
from neuromorph.errors import ConfigError
from neuromorph.nn.protocol import LayerDecl, Role, declaration, walk

__all__ = ["EnergyMonitor"]

# rule sentinels besides the counting functions below
FREE = "free"  # costs nothing at inference (folded, moves data, identity, activation)
CONTAINER = "container"  # look inside: count its layers and the linear algebra in its forward

Handler = Callable[["EnergyMonitor", str, torch.nn.Module, tuple, Any], None]


def _output_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]  # streaming neurons return (spikes, state)
    return None


# ----------------------------------------------------------------------------------- built-in rules


def _count_synaptic(mon: "EnergyMonitor", name: str, module: torch.nn.Module, x: torch.Tensor,
                    fan: torch.Tensor, role: str = "synaptic") -> None:
    """Synops (spike or event-count input) or dense MACs (real input) of a layer with per-position
    fan-out ``fan``."""
    rec = mon.record(name, module, role)
    nfeat = fan.dim()
    xv, timed = split_leading(x.detach(), nfeat, mon.time_steps, mon.batch_size)
    slots = xv.shape[0] * xv.shape[1]
    rec.add_call(numel(tuple(fan.shape)), slots)
    total_fan = float(fan.sum())
    kind, xd = _events(mon, xv)
    binary = xd is not None
    rec.input_type = _merge_type(rec.input_type, kind)
    if role == "synaptic":
        rec.dense_macs += slots * total_fan
    if binary:
        dims = tuple(range(1, xd.dim()))
        spikes = xd.sum(dim=dims)
        ops = (xd * fan).sum(dim=dims)
        rec.spikes_in += float(spikes.sum())
        if role == "synaptic":
            rec.synops += float(ops.sum())
        else:
            rec.acs += float(ops.sum())
        if timed:
            rec.add_per_step("spikes_per_step", spikes)
            if role == "synaptic":
                rec.add_per_step("synops_per_step", ops)
    else:
        # real-valued input: every synapse works at every step, unless the hardware skips zero
        # activations (delta / event-driven inference, Yousefzadeh & Sifalakis 2021), then only nonzero inputs count
        dense = float((spike_indicator(xv) * fan).sum()) if mon.skip_zeros else slots * total_fan
        if role == "synaptic":
            rec.macs += dense
        else:
            rec.acs += dense


def _events(mon: "EnergyMonitor", x: torch.Tensor) -> tuple[str, torch.Tensor | None]:
    """Classify a layer input: ``("spikes", 1[x≠0])``, ``("counts", x)`` for non-negative integer event
    counts (binned event frames: each event is one spike, so a count of n costs n synaptic operations),
    or ``("real", None)`` (dense MACs). Counts are recognised only on the measured input itself (or a
    view of it), so an integer-valued activation inside the network is never mistaken for events."""
    if is_binary(x):
        return "spikes", spike_indicator(x)
    pooled = mon.pooled_counts.get(_storage(x))
    if pooled is not None and pooled[0] == x.numel():
        counts = x.to(torch.float64) * pooled[1]
        if bool((counts >= 0).all()) and bool((counts == torch.round(counts)).all()):
            return "counts", torch.round(counts)
    if (mon.counts_as_spikes and _storage(x) in mon.input_storages
            and bool((x >= 0).all()) and bool((x == torch.round(x)).all())):
        return "counts", x.to(torch.float64)
    return "real", None


def _storage(x: torch.Tensor) -> int:
    try:
        return x.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return -1


def _merge_type(old: str, new: str) -> str:
    return new if old in ("", new) else "mixed"


def _linear_rule(mon, name, module, inputs, output):
    _count_synaptic(mon, name, module, inputs[0], linear_fanout(module.weight))
    _neurobench_counts(mon.record(name, module, "synaptic"), inputs[0], linear_fanout(module.weight),
                       float(module.weight.shape[0]) * module.weight.shape[1])


def _neurobench_counts(rec: LayerCounts, x: torch.Tensor, fan: torch.Tensor, dense_per_slot: float) -> None:
    """NeuroBench's ``SynapticOperations`` rule for one call of a Linear/Conv layer (neurobench 2.3,
    ``metrics/utils/layers``): the input is "spiking" when every value is -1, 0 or 1; the effective
    operations are ``Σ_i 1[x_i ≠ 0] · fanout_i`` (nonzero weights), counted as ACs for spiking input and
    as MACs otherwise; ``Dense`` counts every synapse (zero weights too) at every input position."""
    xd = x.detach()
    spiking = bool(((xd == 0) | (xd == 1) | (xd == -1)).all())
    nfeat = fan.dim()
    ops = float((spike_indicator(xd).reshape(-1, *xd.shape[xd.dim() - nfeat:]) * fan).sum())
    if spiking:
        rec.nb_acs += ops
    else:
        rec.nb_macs += ops
    slots = xd.numel() // max(numel(tuple(fan.shape)), 1)
    rec.nb_dense += slots * dense_per_slot


def _conv_rule(mon, name, module, inputs, output):
    x = inputs[0]
    nd = module.weight.dim() - 2
    feature_shape = tuple(x.shape[-(nd + 1):])
    # the weight's version counter changes with every in-place update (an optimizer step, pruning), so a
    # monitor kept open during training never reuses a stale fan-out map
    key = (id(module), feature_shape, "conv", str(module.weight.device), module.weight._version)
    fan = mon._cache.get(key)
    if fan is None:
        # the module's own _conv_forward applies its stride, padding (and padding_mode), dilation, groups
        fan = conv_fanout(lambda inp, w: module._conv_forward(inp, w, None), module.weight, feature_shape)
        mon._cache[key] = fan
    _count_synaptic(mon, name, module, x, fan)
    key_all = key + ("all synapses",)
    fan_all = mon._cache.get(key_all)
    if fan_all is None:  # every synapse, zero weights too (NeuroBench's Dense)
        fan_all = conv_fanout(lambda inp, w: module._conv_forward(inp, w, None), torch.ones_like(module.weight), feature_shape)
        mon._cache[key_all] = fan_all
    _neurobench_counts(mon.record(name, module, "synaptic"), x, fan, float(fan_all.sum()))


def _pool_dims(op: str) -> int:
    return int(op[-2])  # "max_pool2d" -> 2


def _pool_rule(mon, name, module, inputs, output):
    x = inputs[0]
    op = mon._decls[id(module)].op
    nd = _pool_dims(op)
    feature_shape = tuple(x.shape[-(nd + 1):])
    key = (id(module), feature_shape, "pool", str(x.device))
    fan = mon._cache.get(key)
    if fan is None:
        fan = pool_fanout(module, feature_shape, device=x.device)
        mon._cache[key] = fan
    _count_synaptic(mon, name, module, x, fan, role="pool")
    out = _output_tensor(output)
    if op.startswith("max_pool") and out is not None and _events(mon, x)[0] == "spikes":
        # exported (NIR, Loihi) as sum pooling + one gate neuron per pooled output: priced where a profile
        # prices active/inactive neuron updates (energy.report.MAXPOOL_GATE_RULE)
        rec = mon.record(name, module, "pool")
        rec.gate_updates += float(out.numel())
        rec.gate_active_updates += float(torch.count_nonzero(out.detach()))
    if op.startswith("avg_pool") and _events(mon, x)[0] in ("spikes", "counts"):
        # average pooling of spikes is a linear map that hardware folds into the next synapse (every spike
        # of a window reaches the next layer through the pooled position): the next layer sees event
        # counts scaled by 1/divisor, and costs count x fan-out synaptic operations, not dense MACs
        divisor = getattr(module, "divisor_override", None)
        if divisor is None:
            ks = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * nd
            divisor = math.prod(ks)
        mon.pooled_counts[_storage(out)] = (out.numel(), float(divisor))


def _neuron_rule(mon, name, module, inputs, output):
    x = inputs[0]
    out = _output_tensor(output)
    rec = mon.record(name, module, "neuron")
    if x.dim() < 2:
        raise ConfigError(f"layer {name!r} ({type(module).__name__}): expected input [T, B, ...], got shape {tuple(x.shape)}")
    rec.add_call(numel(tuple(x.shape[2:])), x.shape[0] * x.shape[1])
    # a neuron with a second state variable updated every step (the adLIF adaptation current) declares
    # updates_per_step = 2: both updates are charged, with the neuron's activity (energy.report rule)
    # (a Recurrent layer: its neuron's)
    per = float(getattr(module, "updates_per_step", getattr(getattr(module, "neuron", None), "updates_per_step", 1)))
    rec.neuron_updates += float(x.numel()) * per
    active = _neuron_activity(module, inputs, out)
    if active is None:  # state not observable: charged as active (upper bound), flagged in the report
        rec.activity = _merge_activity(rec.activity, "not tracked")
        rec.active_updates += float(x.numel()) * per
    else:
        rec.activity = _merge_activity(rec.activity, "tracked")
        rec.active_updates += float(active.sum()) * per
    rec.input_type = _merge_type(rec.input_type, "spikes" if is_binary(x) else "real")
    if out is not None:
        rec.outputs += float(out.numel())
        rec.nonzero_outputs += float(torch.count_nonzero(out.detach()))
    if out is not None and is_binary(out):
        per_step = spike_indicator(out.detach()).reshape(out.shape[0], -1).sum(1)
        rec.spikes_out += float(per_step.sum())
        rec.add_per_step("spikes_per_step", per_step)
    if out is not None and getattr(declaration(module), "recurrent", False):
        _recurrent_synapses(mon, name, module, inputs, out)


def _recurrent_synapses(mon, name, module, inputs, out):
    """The recurrent synapses of a layer declared ``recurrent`` (``nn.Recurrent``: input x_t + V s_{t-1}), counted as
    the synaptic layer ``<name>.recurrent``: the spikes s_{t-1} reach the layer's own neurons at step t, one synop
    per spike per nonzero weight of its column of ``module.weight`` [N, N]. s_0 is the state passed in (streaming),
    else no spikes; the spikes of the last step reach no step of this call (the next call counts them)."""
    state = inputs[1] if len(inputs) > 1 else None
    s0 = getattr(state, "s", None)
    s0 = out.new_zeros(out.shape[1:]) if s0 is None else s0.detach().to(out.dtype)
    prev = torch.cat([s0.unsqueeze(0), out.detach()[:-1]])
    _count_synaptic(mon, f"{name}.recurrent", module, prev, linear_fanout(module.weight))


def _merge_activity(old: str, new: str) -> str:
    return new if old in ("", new) else "not tracked"


def _neuron_activity(module: torch.nn.Module, inputs: tuple, out: torch.Tensor | None) -> torch.Tensor | None:
    """Which neuron updates were **active** (Loihi prices active and inactive updates apart: 81 / 52 pJ):
    ``active[t, b, i]`` is true when neuron ``i`` of sample ``b`` received nonzero input at step ``t``
    (``x[t, b, i] != 0``) or any of its state variables (membrane ``v``, synaptic current ``i``,
    adaptation ``a``) after step ``t`` differs from before it (the state before step 0 is the initial
    state: the one passed in, or rest).

    The state trajectory of a neuromorph neuron (``SpikingNeuron`` and subclasses) is obtained by running
    the module's own forward once per step in streaming mode from the same initial state; its outputs
    must reproduce the measured ones, else (and for any other neuron layer, whose state the monitor
    cannot see) the activity is unknown: ``None``.
    """
    from neuromorph.nn import Recurrent, SpikingNeuron

    x = inputs[0]
    recurrent = isinstance(module, Recurrent)  # its state: (the neuron's state, last spikes s)
    if not (isinstance(module, SpikingNeuron) or recurrent) or out is None or x.dim() < 3:
        return None
    state = inputs[1] if len(inputs) > 1 else None
    streaming = module.streaming
    buffers = [(b, b.clone()) for b in module.buffers()]  # e.g. MPBN running statistics in training mode
    try:
        from neuromorph.kernels.config import initial_state

        if state is None and not recurrent:
            state = initial_state(x, module.dynamics()[0])
        module.streaming = True
        xd = x.detach()
        active = xd != 0
        outs = []
        for t in range(xd.shape[0]):
            # forward, not __call__: the monitor's own hooks must not see these replays
            y, new = module.forward(xd[t : t + 1], state)
            outs.append(y)
            changed = torch.zeros_like(active[t])
            if recurrent:  # the recurrent current V s_{t-1} is input too; compare the neuron's state parts
                if state is not None:
                    changed |= (state.s.to(xd.dtype) @ module.weight.detach().t().to(xd.dtype)) != 0
                old_parts = state.neuron if state is not None else (None,) * len(new.neuron)
                parts = zip(old_parts, new.neuron)
            else:
                parts = zip(state, new)
            for old_part, new_part in parts:
                if new_part is not None:
                    changed |= (old_part != new_part) if old_part is not None else (new_part != 0)
            active[t] |= changed
            state = new
    except (AttributeError, TypeError, ValueError, NotImplementedError):  # a subclass without the streaming protocol
        return None
    finally:
        module.streaming = streaming
        for b, saved in buffers:
            b.copy_(saved)
    if not torch.allclose(torch.cat(outs), out.detach(), rtol=1e-5, atol=1e-6):
        return None  # the replay does not reproduce the layer (e.g. a stochastic neuron): unknown
    return active


def _mask_rule(mon, name, module, inputs, output):
    x = inputs[0]
    out = _output_tensor(output)
    rec = mon.record(name, module, "mask")
    xv, timed = split_leading(x.detach(), max(x.dim() - 2, 1) if x.dim() >= 3 else 1, mon.time_steps, mon.batch_size)
    rec.add_call(numel(tuple(xv.shape[2:])), xv.shape[0] * xv.shape[1])
    rec.input_type = _merge_type(rec.input_type, "spikes" if is_binary(x) else "real")
    rec.spikes_in += float(spike_indicator(x.detach()).sum())
    if out is not None:
        ov = spike_indicator(out.detach()).reshape(xv.shape)
        per_step = ov.reshape(ov.shape[0], -1).sum(1)
        rec.spikes_out += float(per_step.sum())
        if timed:
            rec.add_per_step("spikes_per_step", per_step)


def _step_neuron_rule(mon, name, module, inputs, output):
    """A neuron run one time step per call (``QCFSNeuron`` of a converted network): input ``[B, ...]``,
    one update per neuron per call, nonzero outputs (``spike·λ``) counted as spikes."""
    x = inputs[0]
    out = _output_tensor(output)
    rec = mon.record(name, module, "neuron")
    rec.add_call(numel(tuple(x.shape[1:])), x.shape[0])
    rec.neuron_updates += float(x.numel())
    rec.active_updates += float(x.numel())  # its state lives in the module between calls: not tracked
    rec.activity = _merge_activity(rec.activity, "not tracked")
    rec.input_type = _merge_type(rec.input_type, "spikes" if is_binary(x) else "real")
    if out is not None:
        rec.outputs += float(out.numel())
        rec.nonzero_outputs += float(torch.count_nonzero(out.detach()))
        rec.spikes_out += float(spike_indicator(out.detach()).sum())


def _delayed_linear_rule(mon, name, module, inputs, output):
    """DelayedLinear (DCLS delays, Hammouamri et al., ICLR 2024): one synop per input spike per synapse with a nonzero
    weight, at the synapse's integer delay (``integer_delays()``, what rounding gives for inference and
    hardware). A spike at input step t through a synapse of delay d lands at output step t + d; the
    layer's output has T + ⌊(K-1)/2⌋ steps, so deliveries past its end never happen and are not counted.
    """
    x = inputs[0]
    if x.dim() != 3:
        raise ConfigError(f"layer {name!r} (DelayedLinear): expected input [T, B, in], got shape {tuple(x.shape)}")
    steps = x.shape[0]
    out_steps = steps + int(module.output_extension)
    nz = module.weight.detach() != 0  # [out, in]
    delays = module.integer_delays().to(nz.device)  # [out, in]
    last = (out_steps - 1) - torch.arange(steps, device=nz.device)  # latest delay still delivered from step t
    fan = ((delays.unsqueeze(0) <= last.view(-1, 1, 1)) & nz.unsqueeze(0)).sum(1).to(torch.float64)  # [T, in]
    rec = mon.record(name, module, "synaptic")
    rec.add_call(int(x.shape[-1]), steps * x.shape[1])
    rec.dense_macs += float(nz.sum()) * steps * x.shape[1]  # an ANN with these synapses: all of them per step
    kind, xd = _events(mon, x.detach())
    binary = xd is not None
    rec.input_type = _merge_type(rec.input_type, kind)
    if binary:
        spikes = xd.sum(dim=(1, 2))
        ops = (xd * fan.unsqueeze(1)).sum(dim=(1, 2))
        rec.spikes_in += float(spikes.sum())
        rec.synops += float(ops.sum())
        rec.add_per_step("spikes_per_step", spikes)
        rec.add_per_step("synops_per_step", ops)
    elif mon.skip_zeros:
        rec.macs += float((spike_indicator(x.detach()) * fan.unsqueeze(1)).sum())
    else:
        rec.macs += float(fan.sum()) * x.shape[1]


def _recurrent_rule(mon, name, module, inputs, output):
    """torch's RNN/GRU/LSTM (ANN baselines) on time-major ``[T, B, in]``: dense MACs, every weight matrix
    element used once per step and sample (input, recurrent and projection weights of every layer,
    gate and direction)."""
    x = inputs[0]
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or module.batch_first:
        raise ConfigError(f"layer {name!r} ({type(module).__name__}): the energy counter takes a time-major [T, B, in] "
                          "tensor (batch_first=False, no PackedSequence)")
    per_step = float(sum(p.numel() for p in module.parameters() if p.dim() == 2))
    rec = mon.record(name, module, "synaptic")
    rec.add_call(int(x.shape[-1]), x.shape[0] * x.shape[1])
    rec.input_type = _merge_type(rec.input_type, "real")
    rec.macs += per_step * x.shape[0] * x.shape[1]
    rec.dense_macs += per_step * x.shape[0] * x.shape[1]


# how each declared layer is counted: by role, and for synapses and pooling by op
_SYNAPSE_RULES: dict[str, Any] = {
    "linear": _linear_rule,
    "conv1d": _conv_rule,
    "conv2d": _conv_rule,
    "conv3d": _conv_rule,
    "delayed_linear": _delayed_linear_rule,
    "rnn": _recurrent_rule,
    "gru": _recurrent_rule,
    "lstm": _recurrent_rule,
    "delay": FREE,  # a delay line moves spikes in time; the synops are counted at the weights after it
}
_POOL_OPS = {f"{kind}_pool{nd}d" for kind in ("max", "avg", "adaptive_avg") for nd in (1, 2, 3)}
_ROLE_RULES: dict[Role, Any] = {
    Role.MASK: _mask_rule,
    Role.READOUT: _neuron_rule,  # one update per neuron per step; it never fires
    Role.NORMALISATION: FREE,  # folded into weights or thresholds at inference
    Role.RESHAPE: FREE,
    Role.IDENTITY: FREE,
    Role.ACTIVATION: FREE,  # element-wise non-linearities are not priced (the usual SNN estimate counts MACs/ACs only)
    Role.CONTAINER: CONTAINER,
}


def _rule_for(name: str, module: torch.nn.Module, decl: LayerDecl) -> str | Handler:
    """The counting rule of a declared layer; a declaration the counter has no rule for is refused by name."""
    if decl.role is Role.NEURON:
        return _step_neuron_rule if decl.stepwise else _neuron_rule
    if decl.role is Role.SYNAPSE and decl.op in _SYNAPSE_RULES:
        return _SYNAPSE_RULES[decl.op]
    if decl.role is Role.POOLING and decl.op in _POOL_OPS:
        return _pool_rule
    if decl.role in _ROLE_RULES:
        return _ROLE_RULES[decl.role]
    raise ConfigError(
        f"layer {name!r} ({type(module).__name__}): the energy counter has no rule for a {decl.role.value} with "
        f"op {decl.op!r}; it counts synapse ops {sorted(k for k, v in _SYNAPSE_RULES.items() if v is not FREE)} and "
        f"pooling ops {sorted(_POOL_OPS)}. Declare the layer a container whose forward uses torch's linear algebra "
        "(F.linear, F.conv*, matmul), which is counted"
    )


# ------------------------------------------------------------------------- functional linear algebra

_MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.bmm, torch.Tensor.mm, torch.Tensor.bmm}
# out = beta·input + alpha·(b1 @ b2): the product is counted like a matmul of the last two operands
_ADD_MATMULS = {torch.addmm, torch.baddbmm, torch.Tensor.addmm, torch.Tensor.baddbmm}
_CONVS = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
_OTHER_PRODUCTS = {F.scaled_dot_product_attention, torch.einsum}


class _FunctionCounter(TorchFunctionMode):
    def __init__(self, monitor: "EnergyMonitor") -> None:
        super().__init__()
        self.monitor = monitor

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        mon = self.monitor
        if mon._opaque == 0 and mon._active and (func in _MATMULS or func in _ADD_MATMULS or func in _CONVS
                                                  or func in _OTHER_PRODUCTS or func is F.linear):
            mon._count_functional(func, args, kwargs, out)
        return out


class EnergyMonitor:
    """Count spikes, synops, MACs and neuron updates of ``model`` per layer while the context is open.

    Args:
        model: any ``torch.nn.Module``; hooks are attached on entry and removed on exit.
        time_steps, batch_size: ``T`` and ``B`` of the inputs, used to split the flattened ``[T·B, ...]``
            form of time-distributed layers into time steps (``measure`` sets them).
        skip_zeros: charge real-valued inputs MACs only where they are nonzero (hardware that skips
            zero activations, e.g. delta inference); default False: dense MACs at every position.
        counts_as_spikes: treat non-negative integer inputs (binned event counts) as that many spikes
            (synops = Σ count · fan-out) rather than real values (dense MACs); default True. Turn it off
            for integer-valued analog inputs such as raw 0-255 pixels.

    After the forward passes, ``layers`` holds one :class:`LayerCounts` per counted layer in call order.
    ``check()`` raises ``ConfigError`` naming every layer the monitor does not understand.
    """

    def __init__(self, model: torch.nn.Module, time_steps: int | None = None, batch_size: int | None = None,
                 skip_zeros: bool = False, counts_as_spikes: bool = True) -> None:
        self.model = model
        self.skip_zeros = bool(skip_zeros)
        self.counts_as_spikes = bool(counts_as_spikes)
        #: storages of the tensors fed to the model (``measure`` sets them): where event counts may appear
        self.input_storages: set[int] = set()
        #: outputs of average pooling over spikes (and views of them, e.g. flattened): storage ->
        #: (numel, divisor), read back as event counts
        self.pooled_counts: dict[int, tuple[int, float]] = {}
        self.time_steps = time_steps
        self.batch_size = batch_size
        self._records: dict[str, LayerCounts] = {}
        self._unknown: dict[str, str] = {}
        self._cache: dict[tuple, torch.Tensor] = {}
        self._handles: list[Any] = []
        self._names: dict[int, str] = {}
        self._rules: dict[int, Any] = {}
        self._decls: dict[int, LayerDecl] = {}
        self._stack: list[torch.nn.Module] = []
        self._opaque = 0
        self._active = False
        self._fn_calls: dict[int, int] = {}
        self._mode: _FunctionCounter | None = None

    # -- records
    @property
    def layers(self) -> list[LayerCounts]:
        return list(self._records.values())

    @property
    def unknown_layers(self) -> dict[str, str]:
        """``{name: type}`` of containers whose own weights went into no operation the counter saw."""
        return dict(self._unknown)

    def record(self, name: str, module: torch.nn.Module | None, role: str) -> LayerCounts:
        rec = self._records.get(name)
        if rec is None:
            kind = type(module).__name__ if module is not None else role
            rec = self._records[name] = LayerCounts(name=name, kind=kind, role=role)
        return rec

    def check(self) -> None:
        """Raise ``ConfigError`` naming every container that holds weights its forward used in no
        operation the counter sees (a fused kernel): it would be counted as zero."""
        if self._unknown:
            listed = ", ".join(f"{n!r} ({t})" for n, t in self._unknown.items())
            raise ConfigError(
                f"the energy counter cannot see the work of these layers: {listed} (weights used by a fused kernel); "
                "they would be counted as zero. Build them from declared layers (neuromorph.nn.protocol) or torch's "
                "linear algebra (F.linear, F.conv*, matmul)"
            )

    # -- hooks
    def __enter__(self) -> "EnergyMonitor":
        # classify everything first: an undeclared layer raises before any hook is attached
        found = [(name, module, decl) for name, module, decl in walk(self.model) if id(module) not in self._names]
        rules = [_rule_for(name or type(module).__name__, module, decl) for name, module, decl in found]
        for (name, module, decl), rule in zip(found, rules):
            self._names[id(module)] = name or type(module).__name__
            self._rules[id(module)] = rule
            self._decls[id(module)] = decl
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post))
        self._mode = _FunctionCounter(self)
        self._mode.__enter__()
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._active = False
        if self._mode is not None:
            self._mode.__exit__(*exc)
            self._mode = None
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._stack.clear()
        self._opaque = 0

    def _pre(self, module, inputs):
        if not self._active:
            return
        self._stack.append(module)
        rule = self._rules.get(id(module))
        if self._opaque or rule != CONTAINER:
            self._opaque += 1
        else:
            # containers are looked into: linear algebra in their forward is counted by the function mode
            self._fn_calls[id(module)] = 0

    def _post(self, module, inputs, output):
        if not self._active or not self._stack:
            return
        self._stack.pop()
        rule = self._rules.get(id(module))
        if self._opaque == 0:  # a container finishing
            # a container holding weights of its own (e.g. MultiheadAttention's fused fast path) whose
            # forward did no linear algebra the function mode could see: not understood (own weight
            # *matrices* only: a 1-D bias or a 3-D position embedding is added, not multiplied)
            own_weights = any(p.dim() == 2 for p in module.parameters(recurse=False))
            if own_weights and self._fn_calls.get(id(module), 0) == 0:
                self._unknown[self._names[id(module)]] = type(module).__name__
            return
        outermost = self._opaque == 1
        try:
            if outermost:
                name = self._names[id(module)]
                if callable(rule):
                    with torch.no_grad():
                        rule(self, name, module, inputs, output)
        finally:
            self._opaque -= 1

    def _count_functional(self, func, args, kwargs, out) -> None:
        container = next((m for m in reversed(self._stack)), None)
        cname = self._names.get(id(container), "<top>") if container is not None else "<top>"
        key = id(container)
        k = self._fn_calls.get(key, 0)
        self._fn_calls[key] = k + 1
        opname = getattr(func, "__name__", str(func)).strip("_")
        name = f"{cname}/{opname}#{k}"
        self._opaque += 1  # the counting below must not count itself
        try:
            with torch.no_grad():
                self._functional_counts(name, func, args, kwargs, out)
        finally:
            self._opaque -= 1

    def _functional_counts(self, name, func, args, kwargs, out) -> None:
        if func is F.linear:
            x, w = args[0], (args[1] if len(args) > 1 else kwargs["weight"])
            rec = self.record(name, None, "functional")
            rec.kind = "F.linear"
            _count_synaptic(self, name, None, x, linear_fanout(w))
            return
        if func in _CONVS:
            nd = _CONVS[func]
            x, w = args[0], (args[1] if len(args) > 1 else kwargs["weight"])
            names = ("stride", "padding", "dilation", "groups")
            extra = {n: (args[3 + i] if len(args) > 3 + i else kwargs.get(n)) for i, n in enumerate(names)}
            extra = {n: v for n, v in extra.items() if v is not None}
            feature_shape = tuple(x.shape[-(nd + 1):])
            fan = conv_fanout(lambda inp, m: func(inp, m, None, **extra), w, feature_shape)
            rec = self.record(name, None, "functional")
            rec.kind = f"F.conv{nd}d"
            _count_synaptic(self, name, None, x, fan)
            return
        if func is F.scaled_dot_product_attention:
            # softmax(Q·Kᵀ/√d)·V: Q·Kᵀ counted as a product (two spike tensors: coincident pairs), then the
            # real-valued attention weights times V (synops per V spike, or dense MACs)
            q, k, v = args[0], args[1], args[2]
            scores = torch.matmul(q, k.transpose(-2, -1))
            self._functional_counts(name + ".qk", torch.matmul, (q, k.transpose(-2, -1)), {}, scores)
            weights = torch.softmax(scores * (q.shape[-1] ** -0.5), dim=-1)
            self._functional_counts(name + ".av", torch.matmul, (weights, v), {}, out)
            return
        if func is torch.einsum:
            # no event-driven form for a general contraction: dense MACs = product of all index sizes
            operands = args[1:] if len(args) > 2 else (args[1] if len(args) > 1 else ())
            operands = list(operands) if isinstance(operands, (list, tuple)) else [operands]
            sizes: dict[str, int] = {}
            lhs = str(args[0]).replace(" ", "").split("->")[0].split(",")
            for letters, t in zip(lhs, operands):
                if "..." in letters or len(letters) != t.dim():
                    raise ConfigError(f"{name}: einsum {args[0]!r} (ellipsis or broadcasting) is not understood by the energy counter")
                sizes.update(zip(letters, t.shape))
            dense = float(torch.tensor(list(sizes.values()), dtype=torch.float64).prod()) if len(operands) > 1 else 0.0
            rec = self.record(name, None, "functional")
            rec.kind = "einsum"
            rec.calls += 1
            rec.input_type = _merge_type(rec.input_type, "dense")
            rec.macs += dense
            rec.dense_macs += dense
            return
        a, b = (args[1], args[2]) if func in _ADD_MATMULS else (args[0], args[1])
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.dim() < 2 or b.dim() < 2:
            a2 = a if isinstance(a, torch.Tensor) else torch.as_tensor(a)
            inner = a2.shape[-1] if a2.dim() else 1
            dense = float(out.numel() * inner)
            ba = bb = False
        else:
            inner = a.shape[-1]
            dense = float(out.numel() * inner)
            ba, bb = is_binary(a), is_binary(b)
        rec = self.record(name, None, "functional")
        rec.kind = "matmul"
        rec.calls += 1
        rec.dense_macs += dense
        if ba and bb:
            # a product of two spike tensors (Q·Kᵀ) counts as MACs (the product of two
            # graded amplitudes is a multiplication). Only coincident nonzero pairs do work in an
            # event-driven implementation, so that is what is counted (masking Q or K lowers it); the
            # dense count is the ANN equivalent.
            rec.input_type = _merge_type(rec.input_type, "spikes x spikes")
            rec.spikes_in += float(spike_indicator(a).sum() + spike_indicator(b).sum())
            rec.macs += float(torch.matmul(spike_indicator(a), spike_indicator(b)).sum())
        elif ba or bb:
            spikes, other = (a, b) if ba else (b, a)
            mask = spike_indicator(other)
            ops = torch.matmul(spike_indicator(a), mask) if ba else torch.matmul(mask, spike_indicator(b))
            rec.input_type = _merge_type(rec.input_type, "spikes")
            rec.spikes_in += float(spike_indicator(spikes).sum())
            rec.synops += float(ops.sum())
        else:
            rec.input_type = _merge_type(rec.input_type, "real")
            rec.macs += dense
