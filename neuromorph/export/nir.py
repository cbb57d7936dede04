"""neuromorph <-> NIR (Neuromorphic Intermediate Representation, ``nir`` package, Pedersen et al.,
Nature Communications 2024).

``to_nir`` runs the model once on a sample and records, with forward hooks on the layers the layer
protocol declares (:mod:`neuromorph.nn.protocol`), which layer feeds which (data flow by tensor identity);
each layer is mapped by its declared op (``_NIR_OPS``), neurons through their ``spec()``. Whatever the
graph cannot hold is an error naming the layer, never a silent change. ``from_nir`` builds a module that runs any NIR graph of the
supported primitives with neuromorph's dynamics.

Neuron mapping (time in steps of ``dt``; NIR writes continuous time in seconds)::

    neuromorph LIF:  h_t = beta v_{t-1} + c x_t,  beta = 1 - 1/tau,  c = 1/tau (decay_input) or 1
    NIR LIF:         tau dv/dt = (v_leak - v) + R I    Euler step dt:  v_t = (1 - dt/tau_s) v + (dt/tau_s) R I
      => tau_s = tau * dt,  R = 1 (decay_input) or tau,  v_leak = 0, v_threshold = theta, v_reset = v_reset
    IF:       NIR dv/dt = R I  => v_t = v + dt R I  => R = 1/dt
    CubaLIF:  i_t = (1 - 1/tau_syn) i + x_t ; v_t = beta v + c i_t
              NIR tau_syn dI/dt = -I + w_in S  => w_in = tau_syn (steps) so that the input gain is 1;
              R as for LIF
    LI:       as LIF without firing
    Recurrent (nn.Recurrent, input x_t + V s_{t-1} + b): the neuron node plus an edge neuron -> Affine(V, b)
              (Linear without bias) -> neuron, the form snnTorch's importer reads as RLeaky/RSynaptic
    Delay:    integer synaptic delays d_ji of ``DelayedLinear`` become, per distinct delay d, a branch
              ``Delay(d*dt) -> Linear(W * [D == d])`` whose outputs add up at the next node
    MaxPool2d of spikes (input from a spiking neuron): SumPool2d -> IF gate (threshold 1/2, hard reset to 0,
              no leak), which fires iff any input in the window fired: exact for binary input. Max pooling of
              anything else (event counts, currents) raises ExportError
    BatchNorm (eval) is folded into the Linear/Conv before it; MPBN is folded into thresholds first.

NIR resets to ``v_reset`` (hard reset). A soft-reset (or no-reset) neuron therefore raises
``ExportError``; with ``strict=False`` it is exported with a warning that spells out the difference, and
the reset mode is kept in the node's metadata (``neuromorph.reset``), which ``from_nir`` honours and other
tools ignore. Every node also carries the exact step-domain parameters in its metadata so that
neuromorph -> NIR -> neuromorph reproduces the spikes exactly.

Peers: snnTorch's ``import_from_nir`` assumes dt = 1e-4 s (hence the default ``dt``); what each peer
cannot read or run from these graphs, and the workarounds: :mod:`neuromorph.export.peers`.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuromorph._atomic import atomic_path
from neuromorph.errors import ConfigError, DataFormatError, ExportError, ShapeError
from neuromorph.nn.protocol import LayerDecl, Role, declaration, eval_for, layers, walk

DEFAULT_DT = 1e-4  # seconds per step; the value snnTorch's NIR importer hard-codes
_META = "neuromorph"


# --------------------------------------------------------------------------------------------------
# neurons: what the exporter reads from a neuron module


@dataclass
class NeuronDesc:
    """Step-domain description of one neuron layer (all arrays broadcast to the feature shape)."""

    kind: str  # IF, LIF, CubaLIF, LI
    tau: np.ndarray | None  # membrane time constant in steps (None for IF)
    tau_syn: np.ndarray | None
    threshold: np.ndarray
    reset: str
    v_reset: float
    decay_input: bool
    v_rest: float = 0.0
    reset_amount: float | None = None


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _broadcast(value: Any, shape: tuple[int, ...], what: str, layer: str) -> np.ndarray:
    """Broadcast a scalar, per-channel ``[C]`` or per-neuron parameter to the feature ``shape``."""
    v = _np(value)
    if v.shape == tuple(shape):
        return v.copy()
    if v.size == 1:
        return np.full(shape, float(v.reshape(-1)[0]))
    if v.ndim == 1 and len(shape) > 1 and v.shape[0] == shape[0]:
        return np.broadcast_to(v.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()
    try:
        return np.broadcast_to(v, shape).copy()
    except ValueError:
        raise ExportError(f"layer {layer!r}: {what} of shape {list(v.shape)} does not fit the layer's features {list(shape)}") from None


def neuron_desc(m: torch.nn.Module, name: str, shape: tuple[int, ...]) -> NeuronDesc:
    """Read a neuron or readout through the layer protocol: its ``spec()`` (a ``NeuronSpec``; MPBN folded
    first by ``to_nir``), or the parameters of a ``NIRNeuron``. A neuron without a NIR equivalent (no
    ``spec()``, or a kind other than IF/LIF/CubaLIF/LI) raises ``ExportError`` naming the layer."""
    if isinstance(m, NIRNeuron):
        return NeuronDesc(
            kind=m.kind,
            tau=None if m.tau is None else _broadcast(m.tau, shape, "tau", name),
            tau_syn=None if m.tau_syn is None else _broadcast(m.tau_syn, shape, "tau_syn", name),
            threshold=_broadcast(m.threshold, shape, "threshold", name),
            reset=m.reset,
            v_reset=float(m.v_reset),
            decay_input=bool(m.decay_input),
            v_rest=float(m.v_rest),
        )
    decl = declaration(m)
    supported = "IF, LIF, CubaLIF, LI are supported"
    spec_fn = getattr(m, "spec", None)
    if not callable(spec_fn):
        raise ExportError(f"layer {name!r} ({type(m).__name__}): neuron kind {decl.op if decl else '?'!r} has no NIR mapping ({supported})")
    try:
        spec = spec_fn()
    except ExportError as exc:  # e.g. an MPBNLIF folded with gamma < 0
        raise ExportError(f"layer {name!r}: {exc}") from None
    kind = str(spec.kind)
    if kind not in ("IF", "LIF", "CubaLIF", "LI"):
        why = supported
        if getattr(spec, "adapt_coupling", None) is not None:  # SEAdLIF / EFAdLIF
            why = (f"NIR has no neuron with an adaptation current, and Lava netx runs only CUBA LIF and sigma-delta "
                   f"neurons; {supported}")
        raise ExportError(f"layer {name!r} ({type(m).__name__}): neuron kind {kind!r} has no NIR mapping ({why})")
    if getattr(spec, "mpr", False) and spec.threshold is not None and bool((spec.threshold != 0.5).any()):
        # MPR is monotone with phi(1/2) = 1/2, so it leaves the spikes unchanged only at threshold 1/2
        raise ExportError(f"layer {name!r}: MPR with a threshold other than 0.5 moves the firing point; no NIR mapping")
    tau = getattr(spec, "tau", None)
    tau_syn = getattr(spec, "tau_syn", None)
    thr = getattr(spec, "threshold", 1.0) if kind != "LI" else 1.0
    v_rest = getattr(spec, "v_rest", 0.0)
    return NeuronDesc(
        kind=kind,
        tau=None if kind == "IF" or tau is None else _broadcast(tau, shape, "tau", name),
        tau_syn=None if kind != "CubaLIF" or tau_syn is None else _broadcast(tau_syn, shape, "tau_syn", name),
        threshold=_broadcast(thr, shape, "threshold", name),
        reset=str(getattr(spec, "reset", "hard")) if kind != "LI" else "none",
        v_reset=float(_np(getattr(spec, "v_reset", 0.0)).reshape(-1)[0]),
        decay_input=bool(getattr(spec, "decay_input", True)),
        v_rest=float(_np(v_rest if v_rest is not None else 0.0).reshape(-1)[0]),
        reset_amount=getattr(spec, "reset_amount", None),
    )


# --------------------------------------------------------------------------------------------------
# tracing


@dataclass
class _Rec:
    name: str
    module: torch.nn.Module
    decl: LayerDecl
    inp: torch.Tensor
    out: torch.Tensor


def _trace(model: torch.nn.Module, sample: torch.Tensor) -> tuple[list[_Rec], Any]:
    """Run ``model`` once with a hook on every declared layer (the layer protocol's walk; an undeclared
    leaf raises ``UnknownLayerError`` before anything runs); containers are looked into."""
    units = {name: (m, d) for name, m, d in walk(model) if d.role is not Role.CONTAINER}
    recs: list[_Rec] = []
    calls: dict[str, int] = {}

    def hook_for(name, decl):
        def hook(mod, args, out):
            calls[name] = calls.get(name, 0) + 1
            x = args[0] if args else None
            y = out[0] if isinstance(out, tuple) else out
            recs.append(_Rec(name or type(mod).__name__, mod, decl, x, y))

        return hook

    handles = [m.register_forward_hook(hook_for(n, d)) for n, (m, d) in units.items()]
    try:
        with torch.no_grad():
            out = model(sample)
    finally:
        for h in handles:
            h.remove()
    twice = [n for n, c in calls.items() if c > 1]
    if twice:
        raise ExportError(f"layer {twice[0]!r} runs {calls[twice[0]]} times per forward pass; NIR needs each layer once (no weight sharing)")
    return recs, out


# --------------------------------------------------------------------------------------------------
# to_nir


def _clean(name: str) -> str:
    # node names become torch module names in peers' importers: no dots
    return name.replace(".", "_") or "layer"


def _feat(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape[2:])


def _ints(v, n: int = 2) -> tuple[int, ...]:
    """``v`` (an int, or a sequence or array of 1 or ``n`` ints: torch's and NIR's forms of a kernel size,
    stride, padding or dilation) as ``n`` ints."""
    return tuple(int(x) for x in np.broadcast_to(np.asarray(v).reshape(-1), (n,)))


# One mapping per declared op (or role, for neurons): ``mapper(r, ctx)`` returns a NIR node, a chain
# ``[(suffix, node), ...]`` of nodes, a composite dict (Linear/Conv/DelayedLinear: expanded after BatchNorm
# is folded in), or ``_PASS`` (the layer is the identity here: its output is its input's node).
_PASS = object()


@dataclass
class _Ctx:
    nodes: dict[str, Any]
    edges: list[tuple[str, str]]
    pending: dict[str, dict]
    src: str
    dt: float
    strict: bool


def _map_linear(r: _Rec, ctx: _Ctx):
    m = r.module
    if len(_feat(r.inp)) != 1:
        raise ExportError(f"layer {r.name!r}: Linear on a {len(_feat(r.inp))}-D feature map {list(_feat(r.inp))}; insert a Flatten first")
    return {"kind": "affine", "W": _np(m.weight), "b": None if m.bias is None else _np(m.bias)}


def _map_conv(r: _Rec, ctx: _Ctx):
    m = r.module
    if m.padding_mode != "zeros":
        raise ExportError(f"layer {r.name!r}: padding_mode={m.padding_mode!r} has no NIR mapping (zeros only)")
    if isinstance(m.padding, str):
        raise ExportError(f"layer {r.name!r}: padding={m.padding!r}; give explicit integers for NIR export")
    return {"kind": r.decl.op, "W": _np(m.weight), "b": None if m.bias is None else _np(m.bias), "stride": m.stride,
            "padding": m.padding, "dilation": m.dilation, "groups": m.groups, "in_shape": _feat(r.inp)}


def _map_delayed_linear(r: _Rec, ctx: _Ctx):
    m = r.module
    return {"kind": "delayed", "W": _np(m.weight), "b": None if m.bias is None else _np(m.bias),
            "D": m.integer_delays().cpu().numpy().astype(np.int64), "extend": int(m.output_extension)}


def _map_batch_norm(r: _Rec, ctx: _Ctx):
    m = r.module
    if m.running_mean is None:
        raise ExportError(f"layer {r.name!r}: BatchNorm without running statistics cannot be folded for export")
    prev = ctx.pending.get(ctx.src)
    consumers = [e for e in ctx.edges if e[0] == ctx.src]
    if prev is None or prev.get("bn_folded") or consumers:
        raise ExportError(f"layer {r.name!r}: BatchNorm must directly follow a Linear/Conv/DelayedLinear to be folded into it")
    scale = _np(m.weight if m.affine else torch.ones_like(m.running_var)) / np.sqrt(_np(m.running_var) + m.eps)
    shift = (_np(m.bias) if m.affine else 0.0) - _np(m.running_mean) * scale
    W = prev["W"]
    prev["W"] = W * scale.reshape((-1,) + (1,) * (W.ndim - 1))
    prev["b"] = (0.0 if prev["b"] is None else prev["b"]) * scale + shift
    prev["bn_folded"] = True
    return _PASS


def _map_avg_pool2d(r: _Rec, ctx: _Ctx):
    import nir

    m = r.module
    # divisor_override=1 is a sum pooling (what from_nir builds for SumPool2d)
    if m.ceil_mode or m.divisor_override not in (None, 1) or (not m.count_include_pad and _ints(m.padding) != (0, 0)):
        raise ExportError(f"layer {r.name!r}: AvgPool2d with ceil_mode/divisor_override/count_include_pad=False has no NIR mapping")
    k = _ints(m.kernel_size)
    s = _ints(m.stride if m.stride is not None else m.kernel_size)
    pool_cls = nir.SumPool2d if m.divisor_override == 1 else nir.AvgPool2d
    return pool_cls(kernel_size=np.array(k), stride=np.array(s), padding=np.array(_ints(m.padding)))


def _map_max_pool2d(r: _Rec, ctx: _Ctx):
    # a chain: SumPool2d (name_sum) -> IF gate (the layer's own name, which the Loihi export and the
    # fidelity report match by)
    pool, gate = _maxpool_nodes(r.module, r, ctx.src, ctx.nodes.get(ctx.src), ctx.dt)
    return [("_sum", pool), ("", gate)]


def _map_flatten(r: _Rec, ctx: _Ctx):
    import nir

    in_f, out_f = _feat(r.inp), _feat(r.out)
    if out_f != (int(np.prod(in_f)),):
        raise ExportError(f"layer {r.name!r}: Flatten must flatten all feature dims [T, B, ...] -> [T, B, N], got {list(out_f)}")
    return nir.Flatten(input_type={"input": np.array(in_f)}, start_dim=0, end_dim=-1)


def _map_identity(r: _Rec, ctx: _Ctx):
    if r.out is not r.inp and not torch.equal(r.out, r.inp):
        raise ExportError(f"layer {r.name!r}: Dropout/Identity changed its input in eval mode")
    return _PASS


def _map_relu(r: _Rec, ctx: _Ctx):
    import nir

    # the identity on 0/1 spikes, so only directly after a spiking neuron
    if not isinstance(ctx.nodes.get(ctx.src), (nir.LIF, nir.IF, nir.CubaLIF)):
        raise ExportError(f"layer {r.name!r} (ReLU) has no NIR mapping unless it follows a spiking neuron (where it is the identity)")
    return _PASS


def _map_delay(r: _Rec, ctx: _Ctx):
    return r.module.to_nir_node(ctx.dt, _feat(r.inp))


def _map_neuron(r: _Rec, ctx: _Ctx):
    return _neuron_node(neuron_desc(r.module, r.name, _feat(r.out)), r.name, ctx.dt, ctx.strict)


_REC = "_rec"  # suffix of a recurrent layer's weight node


def _recurrent_node(m: torch.nn.Module, layer: str, shape: tuple[int, ...]):
    """The ``Affine``/``Linear`` node of a recurrent layer's weight ``[N, N]`` (and bias, added every step)."""
    import nir

    W = _np(m.weight)
    if len(shape) != 1 or W.shape != (shape[0], shape[0]):
        raise ExportError(f"layer {layer!r}: recurrent weight of shape {list(W.shape)} does not fit its {list(shape)} neurons")
    bias = getattr(m, "bias", None)
    return nir.Affine(weight=W, bias=_np(bias)) if bias is not None else nir.Linear(weight=W)


def _no_mapping(r: _Rec, ctx: _Ctx):
    raise ExportError(f"layer {r.name!r} ({type(r.module).__name__}) has no NIR mapping; target NIR supports Linear, Conv1d/2d, "
                      "BatchNorm (folded), AvgPool2d, Flatten, Dropout, DelayedLinear and IF/LIF/CubaLIF/LI neurons")


#: declared op -> mapping (neurons and readouts map by role, through their ``spec()``)
_NIR_OPS = {
    "linear": _map_linear,
    "conv1d": _map_conv,
    "conv2d": _map_conv,
    "delayed_linear": _map_delayed_linear,
    "delay": _map_delay,
    "batch_norm": _map_batch_norm,
    "avg_pool2d": _map_avg_pool2d,
    "max_pool2d": _map_max_pool2d,
    "flatten": _map_flatten,
    "identity": _map_identity,
    "dropout": _map_identity,
    "relu": _map_relu,
}


def _mapper(decl: LayerDecl):
    if decl.role in (Role.NEURON, Role.READOUT):
        return _map_neuron
    return _NIR_OPS.get(decl.op, _no_mapping)


def to_nir(model: torch.nn.Module, sample: torch.Tensor, strict: bool = True, dt: float | None = None):
    """Export ``model`` to a ``nir.NIRGraph`` by running it once, in eval mode, on ``sample`` ``[T, B, ...]``.

    ``dt`` (seconds per step) turns step-domain time constants into NIR's seconds; it is stored in the
    graph's metadata. Default: the ``dt`` the model's neurons were built with when they all agree, else
    1e-4 s (the value snnTorch's importer assumes). MPBN is folded (``neuromorph.nn.fold_mpbn``) and BatchNorm merged into the
    preceding Linear/Conv on a copy of the model, never on ``model`` itself. A model in training mode is
    exported in eval mode with a warning (as ``energy.measure`` measures it); ``model`` is left as it was.
    ``strict=False`` exports soft-reset / no-reset neurons with a warning instead of an error.
    Layers are read through the layer protocol (:mod:`neuromorph.nn.protocol`); an undeclared layer raises
    ``UnknownLayerError``. Mapping and sources: see the module docstring. Raises ``ExportError`` naming the
    layer for anything NIR cannot hold (MaxPool of non-spike input, ALIF, HoyerSpike, non-module operations between layers, ...).
    """
    import nir

    from neuromorph.nn.mpbn import MPBNLIF, fold_mpbn

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"to_nir: model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(sample, torch.Tensor) or sample.dim() < 3:
        raise ShapeError(f"to_nir: sample must be a tensor [T, B, *features], got {getattr(sample, 'shape', type(sample))}")
    found = layers(model)  # an undeclared layer raises here, before anything runs
    if dt is None:
        dts = {float(m.dt) for _, m, d in found if d.role in (Role.NEURON, Role.READOUT) and getattr(m, "dt", None) is not None}
        dt = dts.pop() if len(dts) == 1 else DEFAULT_DT
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ConfigError(f"to_nir: dt={dt!r} must be a positive number of seconds")
    with eval_for(model, "to_nir"):
        model = copy.deepcopy(model)  # in eval mode; the user's model gets its own modes back
    if any(isinstance(m, MPBNLIF) and m.mpbn is not None for m in model.modules()):
        fold_mpbn(model)
    for name, m, d in layers(model):
        if d.op == "delayed_linear" and not _delays_are_integer(m):
            if strict:
                raise ExportError(
                    f"layer {name!r}: DelayedLinear has real-valued delays; call round_delays() (its accuracy is evaluated with "
                    "rounded delays) before export, or pass strict=False to round them here"
                )
            warnings.warn(f"to_nir: rounding the delays of layer {name!r} (DelayedLinear.round_delays()) on the exported copy", stacklevel=2)
            m.round_delays()
    recs, model_out = _trace(model, sample)
    if not recs:
        raise ExportError(f"to_nir: {type(model).__name__} has no exportable layers")

    nodes: dict[str, Any] = {"input": nir.Input({"input": np.array(_feat(sample))})}
    edges: list[tuple[str, str]] = []
    producer: dict[int, str] = {id(sample): "input"}
    keep = [sample]
    # composite records before expansion: name -> dict(kind, W, b, ...)
    pending: dict[str, dict] = {}

    def src_of(r: _Rec) -> str:
        if r.inp is None or id(r.inp) not in producer:
            raise ExportError(
                f"layer {r.name!r}: its input is computed outside a module (an operation in forward such as reshape, sum, "
                "cat or a residual add); NIR export needs the model to be a chain of layers"
            )
        return producer[id(r.inp)]

    for r in recs:
        src = src_of(r)
        keep.append(r.out)
        ctx = _Ctx(nodes, edges, pending, src, float(dt), strict)
        if r.out is r.inp:  # the same tensor back (e.g. a spike mask with p = 0): nothing happened here
            producer[id(r.out)] = src
            continue
        mapper = _mapper(r.decl)
        if mapper not in (_map_identity, _map_relu, _map_batch_norm, _no_mapping) and (
                r.out.dim() < 3 or r.out.shape[1] != sample.shape[1]):
            raise ExportError(f"layer {r.name!r}: output shape {list(r.out.shape)} is not time-major [T, B, ...]; use neuromorph.nn layers")
        result = mapper(r, ctx)
        name = _clean(r.name)
        if result is _PASS:
            producer[id(r.out)] = src
            continue
        if isinstance(result, dict):
            pending[name] = result
            result["src"] = src
        elif isinstance(result, list):  # a chain of nodes
            prev = src
            for suffix, node in result:
                nodes[name + suffix] = node
                edges.append((prev, name + suffix))
                prev = name + suffix
            name = prev
        else:
            nodes[name] = result
            edges.append((src, name))
            if r.decl.recurrent:  # the recurrent edge: neuron -> Affine/Linear(weight) -> the same neuron
                nodes[name + _REC] = _recurrent_node(r.module, r.name, _feat(r.out))
                edges.extend([(name, name + _REC), (name + _REC, name)])
        producer[id(r.out)] = name

    out_t = model_out[0] if isinstance(model_out, tuple) else model_out
    last = producer.get(id(out_t)) if isinstance(out_t, torch.Tensor) else None
    if last is None:
        last = producer[id(recs[-1].out)] if id(recs[-1].out) in producer else _clean(recs[-1].name)
        warnings.warn(
            f"to_nir: {type(model).__name__}'s output is computed after its last layer {recs[-1].name!r} (e.g. a sum or softmax over "
            "time); the NIR graph ends at that layer and leaves the post-processing out",
            stacklevel=2,
        )
        out_t = recs[-1].out
    nodes["output"] = nir.Output({"output": np.array(_feat(out_t))})
    edges.append((last, "output"))
    # expand composites into NIR nodes, now that BatchNorm is folded in
    for name, p in pending.items():
        src = p["src"]
        if p["kind"] == "affine":
            nodes[name] = nir.Affine(weight=p["W"], bias=p["b"]) if p["b"] is not None else nir.Linear(weight=p["W"])
            edges.append((src, name))
        elif p["kind"] in ("conv1d", "conv2d"):
            one = p["kind"] == "conv1d"  # nir.Conv1d takes plain ints, nir.Conv2d pairs
            geom = (lambda v: _ints(v, 1)[0]) if one else _ints
            b = p["b"] if p["b"] is not None else np.zeros(p["W"].shape[0])
            nodes[name] = (nir.Conv1d if one else nir.Conv2d)(
                input_shape=int(p["in_shape"][1]) if one else tuple(p["in_shape"][1:]), weight=p["W"],
                stride=geom(p["stride"]), padding=geom(p["padding"]), dilation=geom(p["dilation"]), groups=int(p["groups"]),
                bias=b,
            )
            edges.append((src, name))
        else:  # delayed: one Delay -> Linear branch per distinct delay value
            W, D = p["W"], p["D"]
            consumers = [e[1] for e in edges if e[0] == name]
            edges[:] = [e for e in edges if e[0] != name]
            first = True
            for d in np.unique(D):
                dn, wn = f"{name}_delay{d}", f"{name}_w{d}"
                nodes[dn] = nir.Delay(
                    delay=np.full(W.shape[1], float(d) * dt), metadata={_META: {"delay_steps": int(d), "extend_steps": p["extend"]}}
                )
                Wd = np.where(D == d, W, 0.0)
                if first and p["b"] is not None:
                    nodes[wn] = nir.Affine(weight=Wd, bias=np.asarray(p["b"], dtype=np.float64))
                else:
                    nodes[wn] = nir.Linear(weight=Wd)
                first = False
                edges.append((src, dn))
                edges.append((dn, wn))
                edges.extend((wn, c) for c in consumers)

    del keep
    if any(n.endswith(_REC) and (n, n[: -len(_REC)]) in edges for n in nodes):
        nodes = _data_flow_order(nodes, edges)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": float(dt), "source": "neuromorph"})


def _data_flow_order(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> dict[str, Any]:
    """``nodes`` in data-flow order (recurrent back edges ignored). Importers that walk the nodes in
    their stored order (nirtorch, and through it snnTorch) otherwise meet a recurrent neuron before its
    input and visit it twice, which fails once snnTorch has made it a subgraph."""
    back = {(n, n[: -len(_REC)]) for n in nodes if n.endswith(_REC)}
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if (a, b) not in back:
            preds[b].append(a)
    order: list[str] = []
    while len(order) < len(nodes):
        ready = [n for n in nodes if n not in order and all(p in order for p in preds[n])]
        if not ready:  # not expected (to_nir writes chains); keep the rest as they are
            ready = [n for n in nodes if n not in order]
        order.append(ready[0])
    return {n: nodes[n] for n in order}


# Max pooling of binary spikes = sum pooling + a unit gate: an IF neuron with threshold 1/2 and a hard
# reset to 0 starts every step at v = 0 (it was reset, or it received nothing), so it fires iff the window
# sum c >= 1, i.e. iff any input in the window fired. 1/2 is exact under either firing convention
# (v > theta here and on Loihi, v >= theta in some peers) for integer sums.
MAXPOOL_GATE_THRESHOLD = 0.5
_SPIKING_NODES = ("LIF", "IF", "CubaLIF")


def _maxpool_nodes(m: torch.nn.Module, r: _Rec, src: str, src_node: Any, dt: float) -> tuple[Any, Any]:
    """The (SumPool2d, IF gate) pair for a ``MaxPool2d`` layer whose input is binary spikes.

    The input counts as binary when it is produced by a spiking neuron node (LIF, IF, CubaLIF: they emit
    0/1 events; a max-pool gate is such a node too). Anything else (event counts, currents, an average
    pooling of spikes) raises ``ExportError``: max pooling of real values has no exact NIR form.
    """
    import nir

    src_kind = type(src_node).__name__ if src_node is not None else ""
    if src_kind not in _SPIKING_NODES:
        what = "the network input" if src == "input" else f"node {src!r} ({src_kind})" if src_node is not None else f"synapse {src!r}"
        raise ExportError(
            f"layer {r.name!r}: MaxPool2d is exported (as SumPool2d + a unit IF gate) only where its input is binary spikes "
            f"from a spiking neuron; here its input comes from {what}, so it has no exact NIR mapping (use AvgPool2d "
            "or put the pooling after a spiking neuron)"
        )
    if m.ceil_mode or m.return_indices or _ints(m.dilation) != (1, 1):
        raise ExportError(f"layer {r.name!r}: MaxPool2d with ceil_mode, return_indices or dilation has no NIR mapping")
    k = _ints(m.kernel_size)
    s = _ints(m.stride if m.stride is not None else m.kernel_size)
    pool = nir.SumPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(_ints(m.padding)))
    shape = _feat(r.out)
    meta = {"kind": "IF", "reset": "hard", "decay_input": False, "role": "maxpool_gate", "layer": r.name}
    gate = nir.IF(r=np.ones(shape) / dt, v_threshold=np.full(shape, MAXPOOL_GATE_THRESHOLD), v_reset=np.zeros(shape),
                  metadata={_META: meta})
    return pool, gate


def _delays_are_integer(m) -> bool:
    if m.form != "max" or bool((m.sigma != 0).any()):
        return False
    p = m.positions.detach()
    return bool(torch.equal(p, p.round()))


def _neuron_node(d: NeuronDesc, layer: str, dt: float, strict: bool):
    import nir

    meta = {"kind": d.kind, "reset": d.reset, "decay_input": d.decay_input}
    if d.reset_amount is not None:
        meta["reset_amount"] = float(d.reset_amount)
    if d.tau is not None:
        meta["tau_steps"] = d.tau
    if d.tau_syn is not None:
        meta["tau_syn_steps"] = d.tau_syn
    if d.kind != "LI" and d.reset != "hard":
        what = {
            "soft": "soft reset (v -= threshold after a spike; the residual above threshold is kept)",
            "none": "no reset (v keeps integrating after a spike)",
        }.get(d.reset, d.reset)
        msg = (
            f"layer {layer!r}: NIR neurons reset v to v_reset after a spike, this neuron uses {what}. "
            "Other NIR tools will run it with a hard reset and give different spikes"
        )
        if strict:
            raise ExportError(msg + "; retrain with reset='hard' or export with strict=False")
        warnings.warn("to_nir(strict=False): " + msg + " (neuromorph's from_nir restores it from the node metadata)", stacklevel=3)
    shape = d.threshold.shape
    ones = np.ones(shape)
    v_reset = np.full(shape, d.v_reset)
    v_leak = np.full(shape, d.v_rest)
    if d.kind == "IF":
        return nir.IF(r=ones / dt, v_threshold=d.threshold, v_reset=v_reset, metadata={_META: meta})
    tau_s = d.tau * dt
    r = ones if d.decay_input else d.tau.copy()
    if d.kind == "LIF":
        return nir.LIF(tau=tau_s, r=r, v_leak=v_leak, v_threshold=d.threshold, v_reset=v_reset, metadata={_META: meta})
    if d.kind == "LI":
        return nir.LI(tau=tau_s, r=r, v_leak=v_leak, metadata={_META: meta})
    if d.kind == "CubaLIF":
        if d.tau_syn is None:
            raise ExportError(f"layer {layer!r}: CubaLIF without tau_syn")
        return nir.CubaLIF(
            tau_syn=d.tau_syn * dt, tau_mem=tau_s, r=r, v_leak=v_leak, v_threshold=d.threshold, v_reset=v_reset,
            w_in=d.tau_syn.copy(), metadata={_META: meta},
        )
    raise ExportError(f"layer {layer!r}: neuron kind {d.kind!r} has no NIR mapping")


# --------------------------------------------------------------------------------------------------
# from_nir: modules that run NIR primitives on [T, B, ...]


class NIRNeuron(torch.nn.Module):
    """A neuron layer built from a NIR node; runs neuromorph's dynamics kernels (``neuromorph.kernels``).

    ``kind`` IF/LIF/CubaLIF/LI; ``tau``, ``tau_syn``, ``threshold`` in steps / potential units,
    broadcast to the feature shape; ``gain`` multiplies the input when NIR's R (or w_in) does not
    reduce to neuromorph's two input conventions.
    """

    @property
    def layer_decl(self) -> LayerDecl:
        """Layer protocol: a neuron of this ``kind``; a readout for LI."""
        return LayerDecl(Role.READOUT if self.kind == "LI" else Role.NEURON, self.kind)

    def __init__(self, kind, tau, tau_syn, threshold, reset, v_reset, decay_input, v_rest=0.0, gain=None):
        super().__init__()
        self.kind = kind
        self.register_buffer("tau", None if tau is None else torch.as_tensor(tau, dtype=torch.float32))
        self.register_buffer("tau_syn", None if tau_syn is None else torch.as_tensor(tau_syn, dtype=torch.float32))
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32))
        self.register_buffer("gain", None if gain is None else torch.as_tensor(gain, dtype=torch.float32))
        self.reset = reset
        self.v_reset = float(v_reset)
        self.decay_input = bool(decay_input)
        self.v_rest = float(v_rest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from neuromorph.kernels import DynamicsConfig, DynamicsParams, run

        dtype = x.dtype
        if self.gain is not None:
            x = x * self.gain.to(dtype)
        beta = torch.ones((), dtype=dtype) if self.tau is None else (1.0 - 1.0 / self.tau).to(dtype)
        syn_decay = None if self.tau_syn is None else (1.0 - 1.0 / self.tau_syn).to(dtype)
        cfg = DynamicsConfig(
            reset=self.reset if self.kind != "LI" else "none",
            v_reset=self.v_reset,
            v_rest=self.v_rest,
            decay_input=self.decay_input if self.kind != "IF" else False,
            cuba=self.kind == "CubaLIF",
            fire=self.kind != "LI",
        )
        out, _, _ = run(x, DynamicsParams(beta=beta, threshold=self.threshold.to(dtype), syn_decay=syn_decay), cfg, backend="reference")
        return out

    def extra_repr(self) -> str:
        return f"kind={self.kind}, reset={self.reset!r}, decay_input={self.decay_input}"


class DelayNode(torch.nn.Module):
    """y[t, :, i] = x[t - d_i, :, i] (zero before the start); the input is first extended by
    ``extend`` zero steps (the extra steps DelayedLinear gives delayed spikes to arrive)."""

    layer_decl = LayerDecl(Role.SYNAPSE, "delay", mixes_time=True)  # a delay line: the weights are the Linear after it

    def __init__(self, delay_steps: np.ndarray, extend: int = 0, dt: float = DEFAULT_DT):
        super().__init__()
        self.register_buffer("delay_steps", torch.tensor(np.array(delay_steps), dtype=torch.int64))
        self.extend = int(extend)
        self.dt = float(dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extend:
            x = torch.cat([x, x.new_zeros((self.extend,) + x.shape[1:])], 0)
        d = self.delay_steps.reshape(-1)
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        out = torch.zeros_like(flat)
        T = x.shape[0]
        for dv in torch.unique(d).tolist():
            idx = (d == dv).nonzero().flatten()
            if dv < T:
                out[dv:, :, idx] = flat[: T - dv, :, idx]
        return out.reshape(x.shape)

    def to_nir_node(self, dt: float, in_shape):
        import nir

        ds = self.delay_steps.cpu().numpy()
        return nir.Delay(delay=np.broadcast_to(ds * dt, in_shape).astype(np.float64).copy(),
                         metadata={_META: {"delay_steps": ds, "extend_steps": self.extend}})


class TimeFlatten(torch.nn.Flatten):
    """Flatten the feature dims of ``[T, B, ...]`` (NIR ``Flatten`` with start_dim/end_dim over features)."""

    def __init__(self, start_dim: int = 0, end_dim: int = -1):
        super().__init__(start_dim=start_dim + 2 if start_dim >= 0 else start_dim, end_dim=end_dim + 2 if end_dim >= 0 else end_dim)


class TimeConv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` applied per step to ``[T, B, C, H, W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _td(super().forward, x) if x.dim() == 5 else super().forward(x)


class TimeConv1d(torch.nn.Conv1d):
    """``torch.nn.Conv1d`` applied per step to ``[T, B, C, L]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _td(super().forward, x) if x.dim() == 4 else super().forward(x)


class TimeAvgPool2d(torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` per step on ``[T, B, C, H, W]`` (``divisor_override=1``: NIR SumPool2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _td(super().forward, x) if x.dim() == 5 else super().forward(x)


def _td(fn, x: torch.Tensor) -> torch.Tensor:
    T, B = x.shape[:2]
    y = fn(x.reshape(T * B, *x.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


class NIRGraphModule(torch.nn.Module):
    """Runs a NIR graph on ``[T, B, ...]``: each node's input is the sum of its predecessors' outputs
    (shorter sequences are zero-extended to the longest); returns the ``Output`` node's input."""

    def __init__(self, modules: dict[str, torch.nn.Module], order: list[str], preds: dict[str, list[str]], dt: float):
        super().__init__()
        self.nodes = torch.nn.ModuleDict(modules)
        self.order = order
        self.preds = preds
        self.dt = dt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals: dict[str, torch.Tensor] = {}
        result = None
        for name in self.order:
            ins = [vals[p] for p in self.preds[name]]
            if not ins:
                h = x
            else:
                T = max(t.shape[0] for t in ins)
                h = None
                for t in ins:
                    if t.shape[0] < T:
                        t = torch.cat([t, t.new_zeros((T - t.shape[0],) + t.shape[1:])], 0)
                    h = t if h is None else h + t
            mod = self.nodes[name] if name in self.nodes else None
            vals[name] = mod(h) if mod is not None else h
            result = vals[name]
        return result


def _scalar_if_uniform(a: np.ndarray, what: str, node: str) -> float:
    a = np.asarray(a, dtype=np.float64)
    if a.size and not np.all(a == a.reshape(-1)[0]):
        raise ExportError(f"NIR node {node!r}: per-neuron {what} is not supported by neuromorph's neurons")
    return float(a.reshape(-1)[0]) if a.size else 0.0


def _with_weights(m: torch.nn.Module, weight: np.ndarray, bias: Any) -> torch.nn.Module:
    """``m`` with its weight and bias set from a NIR node's arrays (a bias of None: zero)."""
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(weight))
        if m.bias is not None:
            m.bias.copy_(torch.as_tensor(np.asarray(0.0 if bias is None else bias, dtype=np.float64)))
    return m


def _node_module(name: str, node, dt: float) -> torch.nn.Module | None:
    import nir

    meta = (node.metadata or {}).get(_META, {}) if hasattr(node, "metadata") else {}
    if isinstance(node, (nir.Input, nir.Output)):
        return None
    if isinstance(node, (nir.Affine, nir.Linear)):
        W = np.asarray(node.weight, dtype=np.float64)
        bias = node.bias if isinstance(node, nir.Affine) else None
        return _with_weights(torch.nn.Linear(W.shape[1], W.shape[0], bias=bias is not None), W, bias)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        W = np.asarray(node.weight, dtype=np.float64)
        if isinstance(node.padding, str):
            raise ExportError(f"NIR node {name!r}: padding={node.padding!r} is not supported; give integers")
        nd = W.ndim - 2
        conv = (TimeConv1d if nd == 1 else TimeConv2d)(
            W.shape[1] * node.groups, W.shape[0], W.shape[2:], stride=_ints(node.stride, nd), padding=_ints(node.padding, nd),
            dilation=_ints(node.dilation, nd), groups=int(node.groups), bias=True)
        return _with_weights(conv, W, node.bias)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        return TimeAvgPool2d(_ints(node.kernel_size), _ints(node.stride), _ints(node.padding),
                             divisor_override=1 if isinstance(node, nir.SumPool2d) else None)
    if isinstance(node, nir.Flatten):
        return TimeFlatten(int(node.start_dim), int(node.end_dim))
    if isinstance(node, nir.Delay):
        steps = meta.get("delay_steps")
        if steps is None:
            steps = np.rint(np.asarray(node.delay, dtype=np.float64) / dt)
            if not np.allclose(steps * dt, node.delay, rtol=1e-6, atol=1e-12):
                raise ExportError(f"NIR node {name!r}: delays {node.delay} are not whole multiples of dt={dt}")
        steps = np.broadcast_to(np.asarray(steps, dtype=np.int64), np.asarray(node.delay).shape)
        return DelayNode(steps, int(meta.get("extend_steps", 0)), dt)
    if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF, nir.LI)):
        return _core_neuron(_neuron_module(name, node, meta, dt), meta)
    raise ExportError(f"NIR node {name!r} of type {type(node).__name__} has no neuromorph mapping")


def _neuron_module(name: str, node, meta: dict, dt: float) -> NIRNeuron:
    import nir

    kind = {nir.LIF: "LIF", nir.IF: "IF", nir.CubaLIF: "CubaLIF", nir.LI: "LI"}[type(node)]
    thr = np.asarray(getattr(node, "v_threshold", 1.0), dtype=np.float64)
    v_reset_arr = getattr(node, "v_reset", None)
    v_reset = 0.0 if v_reset_arr is None else _scalar_if_uniform(v_reset_arr, "v_reset", name)
    v_rest = _scalar_if_uniform(getattr(node, "v_leak", 0.0), "v_leak", name) if kind != "IF" else 0.0
    reset = str(meta.get("reset", "hard" if kind != "LI" else "none"))
    if kind == "IF":
        gain = np.asarray(node.r, dtype=np.float64) * dt
        gain = None if np.allclose(gain, 1.0, rtol=1e-9, atol=0) else gain
        return NIRNeuron("IF", None, None, thr, reset, v_reset, False, 0.0, gain)
    tau_n = np.asarray(node.tau_mem if kind == "CubaLIF" else node.tau, dtype=np.float64)
    tau = np.asarray(meta["tau_steps"], dtype=np.float64) if "tau_steps" in meta else tau_n / dt
    r = np.asarray(node.r, dtype=np.float64)
    gain = None
    if "decay_input" in meta:
        decay_input = bool(meta["decay_input"])
    elif np.allclose(r, 1.0, rtol=1e-9, atol=0):
        decay_input = True
    else:
        decay_input = False
        g = r / tau
        gain = None if np.allclose(g, 1.0, rtol=1e-6, atol=0) else g
    tau_syn = None
    if kind == "CubaLIF":
        tau_syn = np.asarray(meta["tau_syn_steps"], dtype=np.float64) if "tau_syn_steps" in meta else np.asarray(node.tau_syn) / dt
        w_gain = np.asarray(node.w_in, dtype=np.float64) / tau_syn
        if not np.allclose(w_gain, 1.0, rtol=1e-6, atol=0):
            gain = w_gain if gain is None else gain * w_gain
    if np.any(tau < 1.0):
        raise ExportError(f"NIR node {name!r}: tau = {tau.min():g} steps < 1 (dt={dt}); pass a smaller dt to from_nir")
    return NIRNeuron(kind, tau, tau_syn, thr if kind != "LI" else np.ones_like(tau), reset, v_reset, decay_input, v_rest, gain)


def _core_neuron(m: NIRNeuron, meta: dict) -> torch.nn.Module:
    """The same neuron as a ``neuromorph.nn`` layer (trainable, seen by energy monitors), when it has one:
    no resting potential and no extra input gain; otherwise the ``NIRNeuron`` itself."""
    if m.v_rest != 0.0 or m.gain is not None:
        return m
    import neuromorph.nn as nnm

    def arg(t: torch.Tensor | None):
        if t is None:
            return None
        flat = t.reshape(-1)
        return float(flat[0]) if bool((flat == flat[0]).all()) else t.clone()

    tensors = [t for t in (m.tau, m.tau_syn, m.threshold if m.kind != "LI" else None) if t is not None]
    per_neuron = [t for t in tensors if not isinstance(arg(t), float)]
    shape = tuple(per_neuron[0].shape) if per_neuron else None
    common = {"shape": shape}
    fire = {"threshold": arg(m.threshold), "reset": m.reset, "v_reset": m.v_reset, **common}
    if meta.get("reset_amount") is not None:
        fire["reset_amount"] = float(meta["reset_amount"])
    try:
        if m.kind == "LIF":
            return nnm.LIF(tau=arg(m.tau), decay_input=m.decay_input, **fire)
        if m.kind == "IF":
            return nnm.IF(**fire)
        if m.kind == "CubaLIF":
            return nnm.CubaLIF(tau_mem=arg(m.tau), tau_syn=arg(m.tau_syn), decay_input=m.decay_input, **fire)
        return nnm.LI(tau=arg(m.tau), decay_input=m.decay_input, **common)
    except ConfigError:
        # parameters the core layers refuse (e.g. a folded MPBN threshold <= 0) still run as NIRNeuron
        return m


def _recurrent_pairs(graph, preds: dict, succ: dict) -> dict[str, str]:
    """neuron node -> its recurrent weight node, for each ``neuron -> Affine/Linear -> neuron`` cycle whose
    weight node has no other edge (the form :func:`to_nir` writes and snnTorch reads as RLeaky/RSynaptic)."""
    import nir

    pairs = {}
    for w, node in graph.nodes.items():
        if isinstance(node, (nir.Affine, nir.Linear)) and len(preds[w]) == 1 and succ[w] == preds[w]:
            n = preds[w][0]
            if n != w and isinstance(graph.nodes[n], (nir.LIF, nir.CubaLIF, nir.IF)):
                pairs[n] = w
    return pairs


def _recurrent_module(name: str, neuron: torch.nn.Module, node) -> torch.nn.Module:
    """``neuron`` wrapped in :class:`neuromorph.nn.Recurrent` with the weight (and bias) of ``node``."""
    import nir

    from neuromorph.nn.neurons import SpikingNeuron
    from neuromorph.nn.recurrent import Recurrent

    if not isinstance(neuron, SpikingNeuron):  # a NIRNeuron: its input gain would also scale V s
        raise ExportError(f"NIR node {name!r}: a recurrent neuron with a resting potential or an input gain neuromorph's "
                          "neurons do not have is not supported")
    W = np.asarray(node.weight, dtype=np.float64)
    bias = node.bias if isinstance(node, nir.Affine) else None
    layer = Recurrent(neuron, W.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W))
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float64)))
    return layer


def from_nir(graph, dt: float | None = None) -> NIRGraphModule:
    """Build a module that runs ``graph`` (a ``nir.NIRGraph`` or a path to a NIR file) on ``[T, B, ...]``.

    ``dt`` (seconds per step) defaults to the graph's ``metadata["dt"]`` (written by :func:`to_nir`);
    a graph without it needs ``dt``. Nodes: Input, Output, Affine, Linear, Conv1d, Conv2d, SumPool2d,
    AvgPool2d, Flatten, Delay, IF, LIF, CubaLIF, LI; anything else raises ``ExportError`` naming it. A
    neuron's recurrent weights (a ``neuron -> Affine/Linear -> neuron`` cycle) run as one
    :class:`neuromorph.nn.Recurrent` layer; any other cycle raises ``ExportError``.
    """
    import nir

    if isinstance(graph, (str, bytes)) or hasattr(graph, "__fspath__"):
        try:
            graph = nir.read(graph)
        except (OSError, KeyError, ValueError) as exc:  # missing, not HDF5, or not a NIR file
            raise DataFormatError(f"not a readable NIR file ({exc})", path=graph) from None
    if not isinstance(graph, nir.NIRGraph):
        raise ConfigError(f"from_nir: expected a nir.NIRGraph or a file path, got {type(graph).__name__}")
    if dt is None:
        dt = (graph.metadata or {}).get("dt")
        if dt is None:
            raise ConfigError("from_nir: the graph has no metadata['dt']; pass dt (seconds per step)")
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        dt = float("nan")
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError("from_nir: dt must be a positive number of seconds per step")
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        if a not in graph.nodes or b not in graph.nodes:
            raise ExportError(f"NIR edge ({a!r}, {b!r}) names a node that is not in the graph")
        preds[b].append(a)
        succ[a].append(b)
    inputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError(f"from_nir: graph must have one Input and one Output node, found {len(inputs)} and {len(outputs)}")
    for n, v in graph.nodes.items():
        if isinstance(v, nir.NIRGraph):
            raise ExportError(f"NIR node {n!r} is a subgraph (e.g. a recurrent layer); not supported")
    recurrent = _recurrent_pairs(graph, preds, succ)
    for n, w in recurrent.items():  # run as one Recurrent layer: drop the weight node and the cycle's edges
        preds[n].remove(w)
        succ[n].remove(w)
        del preds[w], succ[w]
    # Kahn's algorithm; any other cycle is a recurrence this executor does not run
    indeg = {n: len(p) for n, p in preds.items()}
    order, ready = [], [n for n in preds if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s in succ[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(preds):
        raise ExportError("from_nir: the graph has a cycle other than a neuron's own recurrent weights (neuron -> "
                          "Affine/Linear -> the same neuron); not supported")
    if order[0] != inputs[0]:
        order.remove(inputs[0])
        order.insert(0, inputs[0])
    order = [n for n in order if n == inputs[0] or preds[n]]  # drop nodes unreachable from the input
    mods = {}
    for n in order:
        m = _node_module(n, graph.nodes[n], dt)
        if n in recurrent:
            m = _recurrent_module(n, m, graph.nodes[recurrent[n]])
        if m is not None:
            mods[n] = m
    return NIRGraphModule(mods, order, preds, dt).eval()


def write_nir(graph, path) -> Path:
    """``nir.write`` to a temp file in the same folder, then rename: no partial file on failure."""

    import nir

    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path
