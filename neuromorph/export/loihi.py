"""Loihi fixed point: quantization of a network into netx integers, a bit-accurate simulator of a netx
file, a fidelity report (float model vs. integer simulation) and quantization-aware fine-tuning helpers.

Arithmetic (Lava 0.10 ``lava/proc/lif/models.py``, ``PyLifModelBitAcc``; ``lava/proc/dense/models.py``,
``PyDenseModelBitAcc`` and ``PyDelayDenseModelBitAcc``; ``lava/proc/conv/models.py``,
``PyConvModelFixed``; read from the lava-nc 0.10.0 wheel), per time step t and layer::

    a[t]  = sum_i w_ji * s_i[t - 1 - d_ji]          synapses deliver one step late, plus the delay d
    u[t]  = sgn(p) * (|p| >> 12) + (a[t] << 6),      p = u[t-1] * (4096 - iDecay)   (wraps at 2**23)
    v[t]  = sgn(q) * (|q| >> 12) + u[t] + (bias << 6), q = v[t-1] * (4096 - vDecay) (clipped to +-(2**23-1))
    s[t]  = v[t] > (vThMant << 6);   v[t] = 0 where s[t]

The decays round toward zero (sign-magnitude shift); conv activations are clamped to signed 24 bit.

Mapping from neuromorph's neurons (Euler form h_t = beta v_{t-1} + c x_t, beta = 1 - 1/tau,
c = 1/tau if decay_input else 1): vDecay = round(4096 / tau) (0 for IF), iDecay = 4096 (the current is
the synaptic input of this step) or round(4096 / tau_syn) for CubaLIF. The input scale c and a per-neuron
threshold theta_j are folded into the weights (w_ji * c / theta_j, exact for a reset to 0), then the
layer's weights get one shared power-of-two scale 2**k (k as large as the 8-bit mantissa, the 17-bit
threshold mantissa and the 13-bit bias allow), and vThMant = 2**k.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from neuromorph.errors import ConfigError, DataFormatError, ExportError, HardwareConstraintError, ShapeError
from neuromorph.export.netx import (
    BIAS_RANGE,
    DECAY_UNITY,
    MAX_DELAY,
    MAX_VTH_MANT,
    MSB_SHIFT,
    STATE_BITS,
    WEIGHT_BITS,
    NetxLayer,
    read_netx,
)

_UV_MAX = 1 << (STATE_BITS - 1)  # u and v are signed STATE_BITS-bit integers on Loihi
DECAY_SHIFT = DECAY_UNITY.bit_length() - 1  # decays on the 2**DECAY_SHIFT scale


# --------------------------------------------------------------------------------------------------
# float view of one hardware layer (what the NIR graph reduces to) and its quantization


@dataclass
class FloatLayer:
    """One synapse + neuron layer in real units, the step between the NIR graph and netx integers.

    ``neuron`` is one of ``"LIF"``, ``"IF"``, ``"CubaLIF"``, ``"LI"`` (non-spiking leaky integrator) or
    ``"none"`` (no neuron: the layer's output is its synaptic input, read out as a voltage).
    ``threshold`` is a scalar or one value per output neuron; ``tau_mem``/``tau_syn`` are in steps.
    """

    kind: str  # "dense" | "conv"
    weight: np.ndarray
    shape: tuple[int, ...]
    neuron: str
    threshold: np.ndarray | float = 1.0
    tau_mem: float | None = None
    tau_syn: float | None = None
    decay_input: bool = True
    reset: str = "hard"
    v_reset: float = 0.0
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    flatten_before: bool = False
    name: str = ""
    in_shape: tuple[int, ...] = ()
    extra: dict = field(default_factory=dict)
    weight_rec: np.ndarray | None = None  # recurrent weights [out, out] (netx 'dense_rec'), real units


def decay_to_loihi(tau: float | None, name: str) -> int:
    """``round(4096 / tau)`` for a time constant in steps (tau >= 1); ``None`` means no leak (IF: 0)."""
    if tau is None:
        return 0
    tau = float(tau)
    if not math.isfinite(tau) or tau < 1.0:
        raise HardwareConstraintError(f"layer {name!r}: tau={tau} steps cannot be represented on Loihi (need tau >= 1 step)")
    return int(round(DECAY_UNITY / tau))


def quantize_layer(fl: FloatLayer, weight_bits: int = WEIGHT_BITS) -> NetxLayer:
    """Quantize one ``FloatLayer`` to Loihi integers (see the module docstring for the mapping).

    Raises ``HardwareConstraintError`` naming the layer for what Loihi cannot do: soft or no reset on a
    spiking neuron, a nonzero reset potential, non-positive thresholds, per-position thresholds on a
    convolution, delays outside 0..62, a bias on a CubaLIF neuron (Loihi adds the bias to v, not to the
    current).
    """
    name = fl.name or fl.kind
    spiking = fl.neuron in ("LIF", "IF", "CubaLIF")
    if fl.neuron not in ("LIF", "IF", "CubaLIF", "LI", "none"):
        raise ExportError(f"layer {name!r}: neuron {fl.neuron!r} has no Loihi CUBA mapping")
    if spiking:
        if fl.reset == "soft":
            raise HardwareConstraintError(
                f"layer {name!r}: soft reset (v -= threshold) is not available on Loihi, whose CUBA neuron resets v to 0; "
                "retrain with reset='hard'"
            )
        if fl.reset != "hard":
            raise HardwareConstraintError(f"layer {name!r}: reset={fl.reset!r} is not available on Loihi (v resets to 0 after a spike)")
        if float(fl.v_reset) != 0.0:
            raise HardwareConstraintError(f"layer {name!r}: v_reset={fl.v_reset} is not available on Loihi (v resets to 0)")
    n_out = fl.weight.shape[0]
    weight = np.asarray(fl.weight, dtype=np.float64)
    if not np.all(np.isfinite(weight)):
        raise ExportError(f"layer {name!r}: weights are not finite")
    bias = None if fl.bias is None else np.asarray(fl.bias, dtype=np.float64).reshape(-1)
    c = 1.0
    if fl.neuron in ("LIF", "LI", "CubaLIF") and fl.decay_input:
        c = 1.0 / float(fl.tau_mem)  # h = beta v + (1/tau) x: the input scale goes into the weights
    # per-output-neuron threshold, folded into the weights (exact for a reset to 0)
    theta = np.asarray(fl.threshold if spiking else 1.0, dtype=np.float64)
    if fl.kind == "conv" and theta.size > 1:
        t = theta.reshape(n_out, -1)
        if not np.all(t == t[:, :1]):
            raise HardwareConstraintError(
                f"layer {name!r}: per-position thresholds cannot be folded into shared convolution weights; use per-channel thresholds"
            )
        theta = t[:, 0]
    theta = np.broadcast_to(theta.reshape(-1), (n_out,)) if theta.size in (1, n_out) else None
    if theta is None:
        raise ExportError(f"layer {name!r}: threshold has {np.size(fl.threshold)} values for {n_out} output channels")
    if np.any(theta <= 0):
        raise HardwareConstraintError(f"layer {name!r}: thresholds must be > 0 on Loihi, found min {theta.min():g}")
    bshape = (n_out,) + (1,) * (weight.ndim - 1)
    w_eff = weight * c / theta.reshape(bshape)
    # recurrent weights: the same input scale, threshold and (as netx fits them jointly) exponent
    w_rec = None if fl.weight_rec is None else np.asarray(fl.weight_rec, dtype=np.float64) * c / theta.reshape(-1, 1)
    if w_rec is not None and not np.all(np.isfinite(w_rec)):
        raise ExportError(f"layer {name!r}: recurrent weights are not finite")
    b_eff = None if bias is None else bias * c / theta
    if fl.neuron == "CubaLIF" and b_eff is not None and np.any(b_eff != 0):
        raise HardwareConstraintError(f"layer {name!r}: a CubaLIF bias enters the current, Loihi adds it to v; remove the bias")
    wmax = float(np.abs(w_eff).max()) if w_eff.size else 0.0
    if w_rec is not None and w_rec.size:
        wmax = max(wmax, float(np.abs(w_rec).max()))
    if wmax == 0.0:
        raise ExportError(f"layer {name!r}: all weights are zero (netx cannot fit an exponent to them)")
    qmax = (1 << (weight_bits - 1)) - 1
    k = math.floor(math.log2(qmax / wmax))
    k = min(k, math.floor(math.log2(MAX_VTH_MANT)))  # threshold mantissa is 2**k
    if b_eff is not None and np.abs(b_eff).max() > 0:
        k = min(k, math.floor(math.log2(BIAS_RANGE[1] / np.abs(b_eff).max())))
    scale = 2.0**k
    w_int = np.clip(np.rint(w_eff * scale), -qmax - 1, qmax).astype(np.int64)
    w_rec_int = None if w_rec is None else np.clip(np.rint(w_rec * scale), -qmax - 1, qmax).astype(np.int64)
    b_int = None if b_eff is None else np.clip(np.rint(b_eff * scale), *BIAS_RANGE).astype(np.int64)
    if spiking:
        if k < 0:
            raise HardwareConstraintError(f"layer {name!r}: weights are {wmax:g}x the threshold, beyond the 8-bit mantissa")
        vth = int(scale)
    else:
        vth = MAX_VTH_MANT  # never reached in practice: the layer is read out as a voltage
    delay = None
    if fl.delay is not None:
        d = np.asarray(fl.delay)
        if np.any(d != np.round(d)):
            raise HardwareConstraintError(f"layer {name!r}: delays must be integers (round them first)")
        d = d.astype(np.int64)
        if d.min() < 0 or d.max() > MAX_DELAY:
            raise HardwareConstraintError(f"layer {name!r}: delays {d.min()}..{d.max()} outside Loihi's 0..{MAX_DELAY} steps")
        delay = np.broadcast_to(d, weight.shape).copy()
    if fl.neuron == "CubaLIF":
        i_decay = decay_to_loihi(fl.tau_syn, name)
        v_decay = decay_to_loihi(fl.tau_mem, name)
    elif fl.neuron == "IF":
        i_decay, v_decay = DECAY_UNITY, 0
    elif fl.neuron == "none":
        i_decay, v_decay = DECAY_UNITY, DECAY_UNITY
    else:
        i_decay, v_decay = DECAY_UNITY, decay_to_loihi(fl.tau_mem, name)
    return NetxLayer(
        kind=fl.kind,
        weight=w_int,
        shape=tuple(fl.shape),
        i_decay=i_decay,
        v_decay=v_decay,
        v_th_mant=vth,
        bias=b_int,
        delay=delay,
        stride=tuple(fl.stride),
        padding=tuple(fl.padding),
        dilation=tuple(fl.dilation),
        groups=int(fl.groups),
        flatten_before=fl.flatten_before,
        name=name,
        weight_exponent=-k,
        spiking=spiking,
        extra=dict(fl.extra),
        weight_rec=w_rec_int,
    )


# --------------------------------------------------------------------------------------------------
# bit-accurate simulator


@dataclass
class SimulationResult:
    """Output of :func:`simulate`.

    ``spikes[l]`` is layer l's integer spike array ``[steps, B, *shape]`` in hardware time: layer l
    (0-based) lags the model by ``l + 1`` steps because every synapse delivers one step late.
    ``voltage`` is the last layer's membrane ``v`` (Loihi integers) and ``v_scale`` the factor that
    turns it into threshold units (v / v_scale).
    """

    spikes: list[np.ndarray]
    voltage: np.ndarray
    v_scale: float
    names: list[str]
    num_input_steps: int

    def aligned(self, layer: int, steps: int | None = None) -> np.ndarray:
        """Layer ``layer``'s spikes shifted back onto the model's time axis: ``[steps, B, *shape]``
        (default ``steps``: the input length; delayed layers run longer, see ``DelayedLinear``)."""
        lag = layer + 1
        return self.spikes[layer][lag : lag + (steps or self.num_input_steps)]

    def aligned_voltage(self, steps: int | None = None) -> np.ndarray:
        """The last layer's voltage on the model's time axis, in threshold units."""
        lag = len(self.spikes)
        return self.voltage[lag : lag + (steps or self.num_input_steps)] / self.v_scale


def _decay(x: np.ndarray, d: int) -> np.ndarray:
    p = x * (DECAY_UNITY - d)
    return np.sign(p) * (np.abs(p) >> DECAY_SHIFT)


def _synaptic_input(layer: NetxLayer, s: np.ndarray) -> np.ndarray:
    """sum_i w_ji s_i for every step at once (no latency yet): [S, B, *in] -> [S, B, *out] (int64)."""
    S, B = s.shape[:2]
    x = torch.from_numpy(s.reshape(S * B, *s.shape[2:]).astype(np.float64))
    w = torch.from_numpy(layer.weight.astype(np.float64))
    with torch.no_grad():
        if layer.kind == "dense":
            y = x.reshape(S * B, -1) @ w.T
        else:
            y = torch.nn.functional.conv2d(x, w, stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
            # Lava's fixed-point conv clamps its output to signed 24 bit
            y = y.clamp(-_UV_MAX, _UV_MAX - 1)
    # float64 holds these integer sums exactly (|sum| < 2**53)
    return np.rint(y.numpy()).astype(np.int64).reshape(S, B, *layer.shape)


def _arrivals(layer: NetxLayer, s: np.ndarray) -> np.ndarray:
    """Synaptic input reaching the neurons at each step: one step of latency plus the axonal delay."""
    S, B = s.shape[:2]
    out = np.zeros((S, B) + tuple(layer.shape), dtype=np.int64)
    if layer.delay is None:
        out[1:] = _synaptic_input(layer, s[:-1])
        return out
    for d in np.unique(layer.delay):
        sub = NetxLayer(**{**layer.__dict__, "weight": np.where(layer.delay == d, layer.weight, 0), "delay": None})
        lag = 1 + int(d)
        if lag < S:
            out[lag:] += _synaptic_input(sub, s[: S - lag])
    return out


def _bin_events(events: np.ndarray, input_shape: tuple[int, ...], dt_us: int | None, path: Path) -> np.ndarray:
    from neuromorph.data.events import require_fields
    from neuromorph.data.functional import to_frame

    require_fields(events, ("x", "y", "t", "p"))
    if dt_us is None or not dt_us > 0:
        raise ConfigError(f"simulate: an event array needs dt_us > 0 (the step length in µs), got {dt_us!r}")
    if len(input_shape) != 3:
        raise ShapeError(f"simulate: events can only feed a (polarity, height, width) input; network {path} takes {list(input_shape)}")
    P, H, W = input_shape
    return to_frame(events, (W, H, P), time_window=float(dt_us), include_incomplete=True).astype(np.int64)


def _as_input(events, input_shape: tuple[int, ...], path: Path) -> np.ndarray:
    x = events.detach().cpu().numpy() if isinstance(events, torch.Tensor) else np.asarray(events)
    nd = len(input_shape)
    if x.ndim == nd + 1:
        x = x[:, None]
    if x.ndim != nd + 2:
        raise ShapeError(f"events must be [T, B, *{list(input_shape)}] or [T, *{list(input_shape)}], got shape {list(x.shape)} (network {path})")
    if tuple(x.shape[2:]) != tuple(input_shape):
        if int(np.prod(x.shape[2:])) == int(np.prod(input_shape)):
            x = x.reshape(x.shape[:2] + tuple(input_shape))
        else:
            raise ShapeError(f"events have feature shape {list(x.shape[2:])}, network {path} expects {list(input_shape)}")
    if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x != np.round(x)):
        raise ShapeError("events must be non-negative integer spike counts per step")
    return x.astype(np.int64)


def simulate(path: str | os.PathLike, events, num_steps: int | None = None, dt_us: int | None = None) -> SimulationResult:
    """Run a netx file in Loihi integer arithmetic, bit for bit as Lava's fixed-point CPU models do.

    ``events``: spike counts per step, ``[T, B, *input_shape]`` or ``[T, *input_shape]`` (integers
    >= 0; counts above 1 are graded input spikes); or an event array with fields x, y, t (µs), p
    (``neuromorph.data.events.EVENT_DTYPE``) together with ``dt_us``, the step length: the events are
    binned into ``[T, P, H, W]`` counts (``neuromorph.data.functional.to_frame``, time windows of
    ``dt_us``) for an input of shape ``(P, H, W)``. ``num_steps`` (default ``T + number of layers``, so
    the last layer sees all input) is how many steps to run; input beyond ``T`` is zero.
    Equations: see the module docstring. Raises ``DataFormatError`` for a damaged or foreign file.
    """
    path = Path(path)
    net = read_netx(path)
    if isinstance(events, np.ndarray) and events.dtype.names is not None:
        events = _bin_events(events, net.input_shape, dt_us, path)
    x = _as_input(events, net.input_shape, path)
    T = x.shape[0]
    steps = T + len(net.layers) if num_steps is None else int(num_steps)
    if steps < 1:
        raise ConfigError(f"num_steps={num_steps} must be >= 1")
    s = np.zeros((steps,) + x.shape[1:], dtype=np.int64)
    s[: min(T, steps)] = x[:steps]
    spikes, v = [], None
    for layer in net.layers:
        if layer.flatten_before:
            s = s.reshape(s.shape[0], s.shape[1], -1)
        expected = layer.weight.shape[1] * (layer.groups if layer.kind == "conv" else 1)
        got = s.shape[2] if s.ndim > 2 else 1
        if got != expected:
            raise DataFormatError(f"netx layer {layer.name!r} expects {expected} input channels, the previous layer gives {got}", path=path)
        a = _arrivals(layer, s)
        u = np.zeros(a.shape[1:], dtype=np.int64)
        v = np.zeros((steps,) + a.shape[1:], dtype=np.int64)
        vt = np.zeros(a.shape[1:], dtype=np.int64)
        out = np.zeros_like(a)
        bias = 0 if layer.bias is None else _bias_shape(layer) << MSB_SHIFT
        vth = layer.v_th_mant << MSB_SHIFT
        rec = None if layer.weight_rec is None else layer.weight_rec.T.astype(np.int64)
        for t in range(steps):
            at = a[t]
            if rec is not None and t > 0:  # RecurrentDense: the layer's own spikes, one step later, like any synapse
                at = at + (out[t - 1].reshape(out.shape[1], -1) @ rec).reshape(at.shape)
            du = _decay(u, layer.i_decay) + (at << MSB_SHIFT)
            wrapped = np.where(du > _UV_MAX, du - 2 * _UV_MAX, du)
            u = np.where(wrapped <= -_UV_MAX, du + 2 * _UV_MAX, wrapped)
            vt = np.clip(_decay(vt, layer.v_decay) + u + bias, -_UV_MAX + 1, _UV_MAX - 1)
            spk = vt > vth
            v[t] = vt  # before the reset, so a read-out sees the peak
            vt = np.where(spk, 0, vt)
            out[t] = spk
        spikes.append(out)
        s = out
    last = net.layers[-1]
    return SimulationResult(
        spikes=spikes,
        voltage=v,
        v_scale=float(64 * 2.0 ** (-last.weight_exponent)),
        names=[l.name for l in net.layers],
        num_input_steps=T,
    )


def _bias_shape(layer: NetxLayer) -> np.ndarray:
    b = layer.bias
    if layer.kind == "conv" and b.size == layer.shape[0]:
        return b.reshape((layer.shape[0],) + (1,) * (len(layer.shape) - 1))
    return b.reshape(layer.shape)


# --------------------------------------------------------------------------------------------------
# quantization-aware fine-tuning


class _FakeQuantWeight(torch.nn.Module):
    """Straight-through fake quantization of a weight tensor to an 8-bit mantissa with a shared
    power-of-two exponent (the same rule as :func:`quantize_layer`); the gradient passes unchanged."""

    def __init__(self, bits: int = WEIGHT_BITS):
        super().__init__()
        self.bits = bits

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(w, self.bits)


def fake_quant_weight(w: torch.Tensor, bits: int = WEIGHT_BITS) -> torch.Tensor:
    """w_q = round(w * 2**k) / 2**k with k = floor(log2((2**(bits-1)-1) / max|w|)), straight-through
    (forward w_q, gradient of the identity)."""
    qmax = (1 << (bits - 1)) - 1
    wmax = w.detach().abs().max()
    if float(wmax) == 0.0:
        return w
    scale = torch.exp2(torch.floor(torch.log2(qmax / wmax)))
    wq = torch.clamp(torch.round(w.detach() * scale), -qmax - 1, qmax) / scale
    return w + (wq - w).detach()


def fake_quant_tau(tau: torch.Tensor) -> torch.Tensor:
    """tau_q = 4096 / round(4096 / tau), straight-through: the decay Loihi will actually use."""
    dq = torch.clamp(torch.round(DECAY_UNITY / tau.detach()), min=1)
    return tau + (DECAY_UNITY / dq - tau).detach()


def enable_quantization_aware(model: torch.nn.Module, bits: int = WEIGHT_BITS) -> list[str]:
    """Register straight-through fake quantization on the weights of every Linear/Conv layer of
    ``model`` (ops ``linear``/``conv1d``/``conv2d`` in the layer protocol; ``torch.nn.utils.parametrize``),
    so fine-tuning sees the weights Loihi will use.
    Returns the names of the parametrized layers. Undo with :func:`disable_quantization_aware`.
    Trainable time constants (``tau`` parameters) get :func:`fake_quant_tau` the same way."""
    from torch.nn.utils import parametrize

    from neuromorph.nn.protocol import layers

    synapses = {id(m) for _, m, d in layers(model) if d.op in ("linear", "conv1d", "conv2d")}
    done = []
    for name, m in model.named_modules():
        if id(m) in synapses and not parametrize.is_parametrized(m, "weight"):
            parametrize.register_parametrization(m, "weight", _FakeQuantWeight(bits))
            done.append(name)
        tau = getattr(m, "_parameters", {}).get("tau")
        if isinstance(tau, torch.nn.Parameter) and not parametrize.is_parametrized(m, "tau"):
            parametrize.register_parametrization(m, "tau", _FakeQuantTau())
            done.append(f"{name}.tau")
    return done


class _FakeQuantTau(torch.nn.Module):
    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        return fake_quant_tau(tau)


def disable_quantization_aware(model: torch.nn.Module) -> None:
    """Remove the fake quantization added by :func:`enable_quantization_aware`, keeping the trained
    float values (``leave_parametrized=False``)."""
    from torch.nn.utils import parametrize

    for m in model.modules():
        for pname in ("weight", "tau"):
            if parametrize.is_parametrized(m, pname):
                parametrize.remove_parametrizations(m, pname, leave_parametrized=False)


# --------------------------------------------------------------------------------------------------
# fidelity report


@dataclass
class FidelityReport:
    """Per-layer spike match rate (fraction of (step, sample, neuron) entries where the float model and
    the integer simulation agree) and, with labels, accuracy before and after quantization."""

    layers: list[dict]
    accuracy_float: float | None = None
    accuracy_quantized: float | None = None

    def as_dict(self) -> dict:
        return {"layers": self.layers, "accuracy_float": self.accuracy_float, "accuracy_quantized": self.accuracy_quantized}


def fidelity_report(model: torch.nn.Module, path: str | os.PathLike, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> FidelityReport:
    """Compare ``model`` (eval mode) with the integer simulation of its netx export at ``path``.

    ``inputs``: ``[T, B, ...]`` integer spike counts. Each spiking netx layer is compared with the model
    layer it was exported from, found by name (the neuron of a synapse + neuron layer; the ``MaxPool2d`` of
    a max-pool gate layer), shifted back by the layer's latency (:meth:`SimulationResult.aligned`).
    Accuracy (with ``labels``): float prediction = argmax over classes of the model output summed over T;
    quantized prediction = argmax of the last layer's spike count (or summed voltage if it does not spike).
    """
    from neuromorph.export.nir import _clean
    from neuromorph.nn.protocol import eval_for

    net_layers = read_netx(path).layers
    by_name = {_clean(n): m for n, m in model.named_modules() if n}
    sources = {li: by_name.get(l.name.rsplit("->", 1)[-1]) for li, l in enumerate(net_layers) if l.spiking and "->" in l.name}
    outs: dict[int, torch.Tensor] = {}

    def keep(li: int):
        return lambda _m, _i, o: outs.__setitem__(li, o[0] if isinstance(o, tuple) else o)

    hooks = [m.register_forward_hook(keep(li)) for li, m in sources.items() if m is not None]
    try:
        with torch.no_grad(), eval_for(model, "fidelity_report"):  # the float model as exported: eval mode
            y = model(inputs.float())
    finally:
        for h in hooks:
            h.remove()
    y = y[0] if isinstance(y, tuple) else y
    t_model = max([int(o.shape[0]) for o in outs.values()] + [int(y.shape[0])])
    n_layers = len(net_layers)
    sim = simulate(path, inputs, num_steps=t_model + n_layers + 1)
    rows = []
    for li, name in enumerate(sim.names):
        q = sim.aligned(li, int(outs[li].shape[0]) if li in outs else None)
        row = {"layer": name, "spiking": bool(net_layers[li].spiking)}
        if li in outs and tuple(outs[li].shape) == q.shape:
            f = outs[li].detach().cpu().numpy() > 0
            row["match_rate"] = float((f == (q > 0)).mean())
            row["spikes_float"] = int(f.sum())
            row["spikes_quantized"] = int((q > 0).sum())
        else:
            row["match_rate"] = None
        rows.append(row)
    rep = FidelityReport(layers=rows)
    if labels is not None:
        pf = (y.sum(0) if y.ndim >= 3 else y).argmax(-1).cpu()
        labels = torch.as_tensor(labels).cpu()
        last = sim.aligned(len(sim.names) - 1, int(y.shape[0]))
        score = last.reshape(last.shape[0], last.shape[1], -1).sum(0)
        if score.max() == 0:
            vv = sim.aligned_voltage(int(y.shape[0]))
            score = vv.reshape(vv.shape[0], vv.shape[1], -1).sum(0)
        pq = torch.from_numpy(np.asarray(score)).argmax(-1)
        rep.accuracy_float = float((pf == labels).float().mean())
        rep.accuracy_quantized = float((pq == labels).float().mean())
    return rep
