"""Exact operation counts per layer: spikes, synaptic operations (synops), dense MACs, neuron updates.

Conventions (the "equivalent fan-out form" of the standard SNN energy estimate, SOPs = Σ spikes · fan-out):

- A **synop** is one accumulate triggered by one input spike at one synapse:
  ``synops = Σ_{t, b, i} s_{t,b,i} · fanout_i`` where ``fanout_i`` is the exact number of synapses with a
  nonzero weight that input position ``i`` drives. For a convolution ``fanout_i`` depends on the
  position (stride, padding, dilation, groups, borders); it is computed exactly as the gradient of
  ``Σ conv(x, 1[w ≠ 0])`` with respect to ``x`` (a transposed convolution of a ones tensor with the
  weight mask), never by averaging.
- Binned event counts (non-negative integers, e.g. N-MNIST frames with two events of a pixel in one
  bin) are that many spikes: ``synops = Σ count_i · fanout_i`` (``counts_as_spikes``, default on).
- A layer whose input is real-valued (an encoding layer fed analog values, a membrane shortcut) costs
  **dense MACs**: every synapse works at every step, ``macs = T·B·Σ_i fanout_i``.
- A product of two spike tensors (``Q·Kᵀ`` in spiking attention) costs one MAC per coincident pair of
  nonzero operands, ``Σ 1[a ≠ 0]·1[b ≠ 0]``, which masking of either operand lowers.
- Pooling over spikes costs one accumulate (``ac``) per spike per pooling window that contains it;
  pooling over real values costs ``ac`` for every (window, position) pair.
- A spiking neuron costs one **neuron update** per neuron per time step and per sample, whether it
  fires or not; a silent network therefore costs only its neuron updates. An update is **active** when
  the neuron received nonzero input that step or any of its state variables (v, i, a) changed in it,
  else **inactive** (hardware such as Loihi charges the two differently: 81 / 52 pJ). The state is
  replayed step by step for neuromorph neurons; for neuron layers whose state the monitor cannot see
  (``activity == "not tracked"``) every update counts as active, an upper bound. Measured on the float
  model, a decaying membrane changes until it is exactly 0; in Loihi's integer state it reaches 0 in
  fewer steps, so the active count is an upper bound for the chip too.
- BatchNorm is folded into the preceding weights at inference and costs nothing; Dropout, Flatten and
  Identity cost nothing. Biases are folded into the neuron update.
- The **ANN equivalent** of a synaptic layer is the same layer run on real values at every one of the
  T steps the SNN sees (an ANN that processes the same sequence, as a GRU or a 1-D CNN over time would):
  ``ann_macs = T · Σ_positions fanout`` per sample, the layer's dense MAC count over the measurement
  divided by the samples. For a static input that an ANN would see once, divide by T
  (``ann_macs_per_step``).
- **NeuroBench** (neurobench 2.3 ``SynapticOperations``, ``ActivationSparsity``) counts are kept beside
  these (``nb_acs``, ``nb_macs``, ``nb_dense``; ``outputs``, ``nonzero_outputs``) with NeuroBench's own
  rules, so the report can state them under NeuroBench's names; where the two differ, see
  :meth:`neuromorph.energy.report.EnergyReport.neurobench`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from neuromorph.errors import ConfigError
from neuromorph.nn.protocol import Role, declaration, unknown_layer

__all__ = ["LayerCounts", "is_binary", "spike_indicator", "linear_fanout", "conv_fanout", "pool_fanout"]


@dataclass
class LayerCounts:
    """Counts of one layer summed over every call, time step and sample of a measurement.

    ``spikes_per_step[t]``: spikes (emitted for neurons, received for synaptic layers) at step ``t``
    summed over the batch; ``synops_per_step`` likewise. ``neurons``: neurons per sample (spiking layers)
    or input positions per sample (synaptic layers); ``slots`` counts (time step, sample) pairs seen.
    """

    name: str
    kind: str
    role: str  # "synaptic" | "pool" | "neuron" | "mask" | "functional"
    input_type: str = ""  # "spikes" | "real" | "mixed"
    neurons: int = 0
    samples: int = 0
    steps: int = 0
    slots: int = 0  # (time step, sample) pairs seen, over all calls
    calls: int = 0
    spikes_in: float = 0.0
    spikes_out: float = 0.0
    synops: float = 0.0
    macs: float = 0.0
    acs: float = 0.0
    neuron_updates: float = 0.0
    active_updates: float = 0.0  # neuron updates with input or a state change (all of them if not tracked)
    # MaxPool2d of spikes: the gate neurons the Loihi export adds (one IF per pooled output and step; active
    # when a spike fell in its window: its state is 0 before and after every step)
    gate_updates: float = 0.0
    gate_active_updates: float = 0.0
    activity: str = ""  # neurons: "tracked" | "not tracked" (state not visible: updates counted as active)
    outputs: float = 0.0  # neurons: output elements (activations) emitted
    nonzero_outputs: float = 0.0  # neurons: nonzero output elements (spikes, or nonzero voltages of a readout)
    dense_macs: float = 0.0  # MACs the layer would do on real-valued input, over the whole measurement
    ann_macs_per_sample: float = 0.0  # dense_macs per sample (set by measure): the ANN over all T steps
    nb_acs: float = 0.0  # NeuroBench SynapticOperations, Effective_ACs rule (Linear/Conv layers only)
    nb_macs: float = 0.0  # NeuroBench Effective_MACs rule
    nb_dense: float = 0.0  # NeuroBench Dense rule (every synapse, zero weights too)
    spikes_per_step: list[float] = field(default_factory=list)
    synops_per_step: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """Mean firing rate (spikes per neuron per step) of the spikes this layer emits (neurons) or
        receives (synaptic, pooling and masking layers)."""
        denom = self.neurons * self.slots
        if denom == 0:
            return None
        spikes = self.spikes_out if self.role in ("neuron", "mask") else self.spikes_in
        if self.input_type == "real" and self.role not in ("neuron", "mask"):
            return None
        return spikes / denom

    def add_call(self, neurons: int, slots: int) -> None:
        """Book one call of the layer: ``neurons`` per sample (or input positions), ``slots`` (step, sample) pairs."""
        self.neurons = int(neurons)
        self.slots += int(slots)
        self.calls += 1

    def add_per_step(self, attr: str, values: torch.Tensor | None) -> None:
        if values is None:
            return
        current: list[float] = getattr(self, attr)
        vals = values.tolist()
        if len(current) < len(vals):
            current.extend([0.0] * (len(vals) - len(current)))
        for t, v in enumerate(vals):
            current[t] += v

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "role": self.role, "input_type": self.input_type,
            "neurons": self.neurons, "samples": self.samples, "steps": self.steps, "slots": self.slots, "calls": self.calls,
            "spikes_in": self.spikes_in, "spikes_out": self.spikes_out, "rate": self.rate,
            "synops": self.synops, "macs": self.macs, "acs": self.acs, "neuron_updates": self.neuron_updates,
            "active_updates": self.active_updates, "inactive_updates": self.neuron_updates - self.active_updates,
            "maxpool_gate_updates": self.gate_updates, "maxpool_gate_active_updates": self.gate_active_updates,
            "activity": self.activity, "outputs": self.outputs, "nonzero_outputs": self.nonzero_outputs,
            "dense_macs": self.dense_macs, "ann_macs_per_sample": self.ann_macs_per_sample,
            "neurobench": {"Effective_ACs": self.nb_acs, "Effective_MACs": self.nb_macs, "Dense": self.nb_dense},
            "spikes_per_step": list(self.spikes_per_step), "synops_per_step": list(self.synops_per_step),
            "rate_per_step": self.rate_per_step(),
        }

    def rate_per_step(self) -> list[float] | None:
        """Firing rate at each time step: spikes per neuron per sample seen at that step (needs a
        recorded time axis; assumes every call had the same number of steps)."""
        if not self.spikes_per_step or not self.neurons or not self.slots:
            return None
        per_step_samples = self.slots / len(self.spikes_per_step)
        return [s / (self.neurons * per_step_samples) for s in self.spikes_per_step]


def is_binary(x: torch.Tensor) -> bool:
    """True when ``x`` carries spikes: every nonzero element has one and the same value.

    Plain spikes are 0/1; graded-by-a-constant spikes (a converted neuron's ``spike·λ``)
    count as spikes too, since the constant folds into the next layer's weights. Anything else (analog
    input, event counts 0/1/2, membrane shortcuts) is real-valued and costs dense MACs.
    """
    if x.dtype == torch.bool:
        return True
    nz = x[x != 0]
    if nz.numel() == 0:
        return True
    return bool((nz == nz[0]).all())


def spike_indicator(x: torch.Tensor) -> torch.Tensor:
    """``1[x ≠ 0]`` as float64: where a spike tensor has spikes."""
    return (x != 0).to(torch.float64)


def linear_fanout(weight: torch.Tensor) -> torch.Tensor:
    """``fanout[i] = #{j : W[j, i] ≠ 0}`` for a weight ``W[out, in]`` (float64)."""
    return (weight.detach() != 0).sum(0).to(torch.float64)


def conv_fanout(
    conv_forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    weight: torch.Tensor,
    feature_shape: tuple[int, ...],
) -> torch.Tensor:
    """Exact fan-out of every input position ``[C_in, *spatial]`` of a convolution.

    ``conv_forward(x, w)`` must run the convolution with the layer's stride, padding (and padding
    mode), dilation and groups. The convolution is linear in ``x``, so the gradient of
    ``Σ conv(x, 1[w ≠ 0])`` with respect to ``x`` counts, for each input position, the nonzero
    synapses it drives, border effects included (equal to a transposed convolution of a ones tensor
    with the weight mask).
    """
    mask = (weight.detach() != 0).to(torch.float64)
    x = torch.ones((1, *feature_shape), dtype=torch.float64, device=weight.device, requires_grad=True)
    with torch.enable_grad():
        conv_forward(x, mask).sum().backward()
    return x.grad[0].detach()


def pool_fanout(pool: torch.nn.Module, feature_shape: tuple[int, ...], device: torch.device | str | None = None) -> torch.Tensor:
    """Number of pooling windows that contain each input position ``[C, *spatial]`` (float64).

    What kind of pooling ``pool`` is comes from its layer-protocol declaration (op ``max_pool2d``,
    ``avg_pool1d``, ``adaptive_avg_pool2d``, ...; ``neuromorph.nn.protocol``), never from its class.
    Computed from the window geometry (kernel, stride, padding, dilation, ceil_mode) with a depthwise
    ones convolution, cropped to the pooling layer's own output size so ``ceil_mode`` is honoured;
    adaptive pooling by torch's window rule.
    """
    decl = declaration(pool)
    if decl is None:
        raise unknown_layer(type(pool).__name__, pool)
    op = decl.op
    kinds = ("max_pool", "avg_pool", "adaptive_avg_pool")
    if decl.role is not Role.POOLING or not any(op.startswith(k) for k in kinds):
        raise ConfigError(f"pool_fanout: {type(pool).__name__} is declared as a {decl.role.value} {op!r}, not as one of "
                          f"the poolings {', '.join(k + '{1,2,3}d' for k in kinds)}")
    if op.startswith("adaptive"):
        return _adaptive_pool_fanout(pool, feature_shape, device)
    nd = len(feature_shape) - 1
    def _tuple(v: Any) -> tuple[int, ...]:
        return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * nd
    kernel = _tuple(pool.kernel_size)
    stride = _tuple(pool.stride if pool.stride is not None else pool.kernel_size)
    padding = _tuple(pool.padding)
    dilation = _tuple(getattr(pool, "dilation", 1))
    ceil_mode = bool(getattr(pool, "ceil_mode", False))
    probe = torch.zeros((1, 1, *feature_shape[1:]))
    with torch.no_grad():
        # the functional form (not pool.forward, which wrappers may reshape) gives the output size
        if op.startswith("max_pool"):
            fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
            out_shape = fn(probe, kernel, stride, padding, dilation, ceil_mode=ceil_mode).shape[2:]
        else:
            fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
            out_shape = fn(probe, kernel, stride, padding, ceil_mode=ceil_mode).shape[2:]
    spatial = feature_shape[1:]
    # right padding large enough for the windows ceil_mode adds; the crop below drops any extra
    pad = []
    for d in reversed(range(nd)):
        span = (out_shape[d] - 1) * stride[d] + dilation[d] * (kernel[d] - 1) + 1
        right = max(padding[d], span - spatial[d] - padding[d])
        pad += [padding[d], right]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    x = torch.ones((1, 1, *spatial), dtype=torch.float64, device=device, requires_grad=True)
    with torch.enable_grad():
        ones = torch.ones((1, 1, *kernel), dtype=torch.float64, device=device)
        y = conv(F.pad(x, pad), ones, stride=stride, dilation=dilation)
        y = y[(slice(None), slice(None), *[slice(0, n) for n in out_shape])]
        y.sum().backward()
    return x.grad[0, 0].detach().expand(feature_shape[0], *spatial)


def _adaptive_pool_fanout(module: torch.nn.Module, feature_shape: tuple[int, ...], device) -> torch.Tensor:
    """Windows containing each input position of adaptive pooling: output i of a dimension of size n
    pools inputs floor(i n / m) .. ceil((i + 1) n / m) - 1 (torch's rule), m the output size."""
    spatial = feature_shape[1:]
    size = module.output_size
    size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * len(spatial)
    fan = torch.ones((), dtype=torch.float64)
    for n, m in zip(spatial, size):
        m = n if m is None else int(m)
        count = torch.zeros(n, dtype=torch.float64)
        for i in range(m):
            count[(i * n) // m: -((-(i + 1) * n) // m)] += 1
        fan = fan.unsqueeze(-1) * count
    return fan.expand(*feature_shape).to(device)


def split_leading(x: torch.Tensor, n_features: int, time_steps: int | None, batch: int | None) -> tuple[torch.Tensor, bool]:
    """View ``x`` as ``[T, B·…, *features]`` when the leading dims reveal time, else ``[1, N, *features]``.

    Returns the view and whether a time axis was found. ``[T, B, *f]`` is time-major; ``[T·B, *f]`` (the
    flattened form of time-distributed layers) is split when ``T`` and ``B`` are known.
    """
    lead = x.shape[: x.dim() - n_features]
    feats = x.shape[x.dim() - n_features:]
    if len(lead) >= 2:
        return x.reshape(lead[0], -1, *feats), True
    if len(lead) == 1 and time_steps and batch and lead[0] == time_steps * batch:
        return x.reshape(time_steps, batch, *feats), True
    return x.reshape(1, -1, *feats), False


def numel(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))
