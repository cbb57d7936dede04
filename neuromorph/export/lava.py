"""NIR graph -> lava-dl netx HDF5 for Loihi (``to_lava``).

The model is first exported with :func:`neuromorph.export.nir.to_nir` (the one graph walker); this module
reads that graph, groups it into synapse + neuron layers (:class:`~neuromorph.export.loihi.FloatLayer`),
quantizes them to Loihi integers (:func:`~neuromorph.export.loihi.quantize_layer`) and writes the netx
file (:func:`~neuromorph.export.netx.write_netx`).

Loihi has no stateless pooling stage between neurons, and lava-dl 0.6's netx reader refuses ``pool``
layers (``hdf5.py``: ``NotImplementedError``). A sum/average pooling that feeds a synapse is therefore
folded into that synapse, exactly (both are linear): before a convolution of kernel K, stride s, padding p
and a pooling of window = stride = k, the composite is one convolution with kernel k*K (each tap repeated
k x k times and scaled by 1/k^2 for averaging), stride k*s, padding k*p; before a dense layer the pooling
matrix is multiplied into the weight matrix. The convolution fold is exact when the pooled map's size is a
multiple of k (or the convolution has no padding); otherwise the pooling drops the last rows/columns while
the folded convolution reads them where the original reads zero padding, and ``to_lava`` warns.

A pooling directly followed by a neuron cannot be folded: that is how ``to_nir`` writes a max pooling of
spikes (SumPool2d -> IF gate with threshold 1/2). It becomes a layer of its own, a depthwise convolution
with unit weights (the pooling window) and the gate neuron (IF: vDecay 0, vThMant half a unit weight), so
max pooling costs one more layer and, as every Loihi layer delivers one step late, one more step of
latency (reported by :func:`~neuromorph.export.constraints.mapping_costs`).

A recurrent layer (``nn.Recurrent`` around a LIF, IF or CubaLIF neuron, behind a dense synapse) becomes a
netx ``dense_rec`` layer, which lava-dl 0.6 loads as ``RecurrentDense`` (``weight_rec``: the recurrent
weights, quantised with the same exponent as ``weight``). Recurrent adaptive neurons (ALIF, SE-/EF-adLIF)
have no NIR node and are refused by ``to_nir`` naming the layer.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuromorph.errors import ExportError, HardwareConstraintError
from neuromorph.export.loihi import FloatLayer, quantize_layer
from neuromorph.export.netx import NetxNetwork, write_netx
from neuromorph.export.nir import DEFAULT_DT, _META, _neuron_module, to_nir


def _pairs(v: Any) -> tuple[int, int]:
    a = np.asarray(v).reshape(-1).astype(int)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def graph_to_layers(graph) -> tuple[tuple[int, ...], list[FloatLayer]]:
    """Group a NIR graph into synapse + neuron layers in real units (see the module docstring).

    Raises ``ExportError`` naming the node for structures Loihi netx cannot hold (branches other than
    the delay pattern of ``to_nir``, two synapses without a neuron between them, pooling after a synapse).
    """
    import nir

    dt = float((graph.metadata or {}).get("dt", DEFAULT_DT))
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        succ[a].append(b)
        preds[b].append(a)
    inputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise ExportError(f"to_lava: the NIR graph needs exactly one Input node, found {len(inputs)}")
    # a recurrent layer (nn.Recurrent in to_nir: neuron -> Affine/Linear(V) -> the same neuron) becomes one netx
    # 'dense_rec' layer (lava-dl's RecurrentDense): the cycle's edges leave the chain walk and V joins the
    # layer of that neuron (see flush)
    rec: dict[str, str] = {}
    for a, b in graph.edges:
        if (b, a) in graph.edges and isinstance(graph.nodes[b], (nir.Affine, nir.Linear)) and not isinstance(
                graph.nodes[a], (nir.Affine, nir.Linear)):
            rec[a] = b
    for neuron_node, v_node in rec.items():
        succ[neuron_node].remove(v_node)
        preds[neuron_node].remove(v_node)
        if succ[v_node] != [neuron_node] or preds[v_node] != [neuron_node]:
            raise ExportError(f"to_lava: recurrent weight node {v_node!r} of layer {neuron_node!r} has other connections; "
                              "netx 'dense_rec' holds only the layer's own spikes fed back")
    node_name = inputs[0]
    in_type = graph.nodes[node_name].output_type
    shape = tuple(int(s) for s in np.asarray(next(iter(in_type.values()))).reshape(-1))
    input_shape = shape
    layers: list[FloatLayer] = []
    # pending linear stage since the last neuron
    pend: dict[str, Any] = {"pools": [], "flatten": False, "syn": None, "name": None, "in_shape": shape}

    def flush(neuron_node: str | None, out_shape: tuple[int, ...]) -> None:
        syn = pend["syn"]
        if syn is None and neuron_node is not None and pend["pools"] and not pend["flatten"]:
            syn = _pool_synapse(neuron_node, pend["pools"])
        if syn is None:
            what = neuron_node or "Output"
            raise ExportError(f"to_lava: node {what!r} has no synapse (Linear/Conv) before it; Loihi layers are synapse + neuron")
        layer = syn
        layer.shape = tuple(out_shape)
        if neuron_node is not None and neuron_node in rec:
            _attach_recurrent(layer, neuron_node, graph.nodes[neuron_node], graph.nodes[rec[neuron_node]])
        if neuron_node is None:
            layer.neuron = "none"
        else:
            nm = _neuron_module(neuron_node, graph.nodes[neuron_node], (graph.nodes[neuron_node].metadata or {}).get(_META, {}), dt)
            if nm.v_rest != 0.0:
                raise HardwareConstraintError(f"layer {neuron_node!r}: a resting potential v_leak={nm.v_rest} has no Loihi mapping")
            if nm.gain is not None:
                g = nm.gain.numpy().astype(np.float64).reshape(layer.weight.shape[0], -1)[:, 0]
                layer.weight = layer.weight * g.reshape((-1,) + (1,) * (layer.weight.ndim - 1))
                if layer.bias is not None:
                    layer.bias = layer.bias * g
            layer.neuron = nm.kind
            layer.threshold = nm.threshold.numpy().astype(np.float64)
            layer.tau_mem = None if nm.tau is None else _uniform(nm.tau.numpy(), "tau", neuron_node)
            layer.tau_syn = None if nm.tau_syn is None else _uniform(nm.tau_syn.numpy(), "tau_syn", neuron_node)
            layer.decay_input = nm.decay_input
            layer.reset = nm.reset
            layer.v_reset = nm.v_reset
            layer.name = f"{layer.name}->{neuron_node}"
            role = ((graph.nodes[neuron_node].metadata or {}).get(_META) or {}).get("role")
            if role:
                layer.extra["role"] = str(role)
        layers.append(layer)
        pend.update(pools=[], flatten=False, syn=None, name=None, in_shape=tuple(out_shape))

    cur_shape = shape
    while True:
        nxt = succ[node_name]
        if not nxt:
            raise ExportError(f"to_lava: node {node_name!r} has no successor and is not the Output")
        if len(nxt) > 1:
            node_name, cur_shape = _delay_branches(graph, node_name, nxt, succ, preds, pend, cur_shape, dt)
            continue
        name = nxt[0]
        node = graph.nodes[name]
        if len(preds[name]) > 1:
            raise ExportError(f"to_lava: node {name!r} sums several inputs; netx layers are a chain")
        if isinstance(node, nir.Output):
            if pend["syn"] is not None:
                flush(None, cur_shape)
            elif pend["pools"] or pend["flatten"]:
                raise ExportError("to_lava: the network ends in pooling/flatten after its last neuron; nothing to map them to")
            break
        if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            if pend["syn"] is not None:
                raise ExportError(f"to_lava: pooling node {name!r} follows a synapse; Loihi pools spikes, so pool after the neuron")
            k, s, p = _pairs(node.kernel_size), _pairs(node.stride), _pairs(node.padding)
            scale = 1.0 / (k[0] * k[1]) if isinstance(node, nir.AvgPool2d) else 1.0
            pend["pools"].append((k, scale, cur_shape, s, p, name))
            cur_shape = (cur_shape[0],) + tuple((cur_shape[1 + a] + 2 * p[a] - k[a]) // s[a] + 1 for a in (0, 1))
        elif isinstance(node, nir.Flatten):
            pend["flatten"] = True
            cur_shape = (int(np.prod(cur_shape)),)
        elif isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
            if pend["syn"] is not None:
                raise ExportError(f"to_lava: node {name!r} follows another synapse without a neuron between them")
            pend["syn"] = _synapse(name, node, pend, cur_shape)
            cur_shape = tuple(int(v) for v in np.asarray(node.output_type["output"]).reshape(-1)) if isinstance(node, nir.Conv2d) else (
                int(np.asarray(node.weight).shape[0]),
            )
        elif isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF, nir.LI)):
            flush(name, cur_shape)
        elif isinstance(node, nir.Conv1d):
            raise ExportError(f"to_lava: Conv1d node {name!r} has no netx layer (dense and 2-D conv only)")
        else:
            raise ExportError(f"to_lava: node {name!r} ({type(node).__name__}) has no Loihi netx mapping")
        node_name = name
    if not layers:
        raise ExportError("to_lava: the graph has no synapse + neuron layer")
    return input_shape, layers


def _attach_recurrent(layer: FloatLayer, name: str, neuron, v_node) -> None:
    """Give ``layer`` the recurrent weights V (and V's bias, added to the layer's) of ``to_nir``'s recurrent edge.

    netx 'dense_rec' (lava-dl 0.6 ``RecurrentDense``) feeds the layer's spikes back through a second dense
    synapse into the same neurons' input; like every Loihi synapse it delivers one step later, which is the
    s_{t-1} of ``nn.Recurrent``. netx quantises V with the input weights' exponent, and so does
    :func:`~neuromorph.export.loihi.quantize_layer`. Only a dense synapse without delays can carry it (netx
    would apply the input synapses' delays to V too).
    """
    import nir

    if not isinstance(neuron, (nir.LIF, nir.IF, nir.CubaLIF)):
        raise ExportError(f"to_lava: layer {name!r} is recurrent with a {type(neuron).__name__} neuron; netx 'dense_rec' "
                          "is exported for spiking LIF, IF and CubaLIF neurons only")
    if layer.kind != "dense" or layer.delay is not None:
        raise ExportError(f"to_lava: layer {name!r} is recurrent behind a {'delayed ' if layer.delay is not None else ''}"
                          f"{layer.kind} synapse; netx 'dense_rec' takes a dense synapse without delays")
    V = np.asarray(v_node.weight, dtype=np.float64)
    n = int(np.prod(layer.shape))
    if V.shape != (n, n):
        raise ExportError(f"to_lava: recurrent weights of layer {name!r} have shape {list(V.shape)}, expected [{n}, {n}]")
    layer.weight_rec = V
    b = getattr(v_node, "bias", None)
    if b is not None and np.any(np.asarray(b) != 0):
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        layer.bias = b if layer.bias is None else np.asarray(layer.bias, dtype=np.float64).reshape(-1) + b


def _pool_synapse(neuron_node: str, pools: list) -> FloatLayer:
    """A pooling node directly followed by a neuron (to_nir's max-pool gate: SumPool2d -> IF) becomes its
    own layer: a depthwise convolution (groups = channels) whose kernel is the pooling window with weight 1
    (sum) or 1/k^2 (average), same stride and padding. On Loihi this is one more layer, so one more step
    of latency (every layer delivers one step late; ``SimulationResult.aligned`` shifts it back)."""
    if len(pools) != 1:
        names = [p[-1] for p in pools]
        raise ExportError(f"to_lava: pooling nodes {names} follow each other before neuron {neuron_node!r}; merge them into one pooling")
    k, scale, pre, s, p, pool = pools[0]
    C = int(pre[0])
    return FloatLayer(kind="conv", weight=np.full((C, 1, k[0], k[1]), scale), shape=(), neuron="none", stride=s, padding=p,
                      groups=C, name=pool, in_shape=tuple(pre))


def _uniform(a: np.ndarray, what: str, name: str) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    if not np.allclose(a, a[0], rtol=0, atol=0):
        raise HardwareConstraintError(f"layer {name!r}: per-neuron {what} differs across neurons; Loihi netx stores one per layer")
    return float(a[0])


def _synapse(name: str, node, pend: dict, cur_shape: tuple[int, ...]) -> FloatLayer:
    import nir

    pools = pend["pools"]
    for k, _, _, s, p, pool in pools:
        if k != s or p != (0, 0):
            raise ExportError(f"to_lava: pooling node {pool!r} needs stride == kernel and no padding to fold into the next synapse {name!r}")
    if isinstance(node, nir.Conv2d):
        W = np.asarray(node.weight, dtype=np.float64)
        stride, padding, dilation = _pairs(node.stride), _pairs(node.padding), _pairs(node.dilation)
        for k, scale, pre, *_ in reversed(pools):
            if dilation != (1, 1):
                raise ExportError(f"to_lava: cannot fold pooling into dilated convolution {name!r}")
            if any(pre[1 + a] % k[a] and padding[a] for a in (0, 1)):
                # the pooling drops the last rows/columns; the folded convolution's padding reads them instead of zeros
                warnings.warn(f"to_lava: pooling a {pre[1]}x{pre[2]} map by {k[0]}x{k[1]} before the padded convolution {name!r} "
                              "is not a whole number of windows; the folded convolution sees the dropped border rows/columns "
                              "where the original sees zero padding, so its border outputs differ (use map sizes divisible by the pool)",
                              stacklevel=2)
            W = np.repeat(np.repeat(W, k[0], axis=2), k[1], axis=3) * scale
            stride = (stride[0] * k[0], stride[1] * k[1])
            padding = (padding[0] * k[0], padding[1] * k[1])
        b = np.asarray(node.bias, dtype=np.float64)
        return FloatLayer(
            kind="conv", weight=W, shape=(), neuron="none", bias=None if not np.any(b) else b, stride=stride, padding=padding,
            dilation=dilation, groups=int(node.groups), flatten_before=False, name=name, in_shape=pools[0][2] if pools else cur_shape,
        )
    W = np.asarray(node.weight, dtype=np.float64)
    b = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) and node.bias is not None else None
    if pools:
        # W @ P for the pooling matrix P (pooled = P @ unpooled, flattened CHW), without forming P (it has
        # (C*H*W)**2 entries): each pooled input's weight spreads over its k x k window, times the pooling
        # scale; rows/columns the pooling drops (a map that is not whole windows) get weight 0
        in_shape = pools[0][2]
        Wm = W.reshape(W.shape[0], int(in_shape[0]), -1)
        for k, scale, pre, *_ in reversed(pools):
            h, w = pre[1] // k[0], pre[2] // k[1]
            up = np.repeat(np.repeat(Wm.reshape(W.shape[0], pre[0], h, w), k[0], axis=2), k[1], axis=3) * scale
            Wm = np.pad(up, ((0, 0), (0, 0), (0, pre[1] - h * k[0]), (0, pre[2] - w * k[1])))
        W = Wm.reshape(W.shape[0], -1)
        return FloatLayer(kind="dense", weight=W, shape=(), neuron="none", bias=b, flatten_before=True, name=name, in_shape=in_shape)
    return FloatLayer(kind="dense", weight=W, shape=(), neuron="none", bias=b, flatten_before=pend["flatten"] and len(pend["in_shape"]) > 1,
                      name=name, in_shape=pend["in_shape"])


def _delay_branches(graph, src, nxt, succ, preds, pend, cur_shape, dt):
    """Recognise to_nir's delay pattern src -> Delay(d) -> Linear(W_d) -> X and merge it into one dense
    layer with per-synapse delays."""
    import nir

    if pend["syn"] is not None or pend["pools"]:
        raise ExportError(f"to_lava: node {src!r} fans out; only to_nir's synaptic-delay branches can be mapped")
    W = None
    D = None
    bias = None
    target = None
    for dn in nxt:
        dnode = graph.nodes[dn]
        if not isinstance(dnode, nir.Delay) or len(succ[dn]) != 1:
            raise ExportError(f"to_lava: node {src!r} fans out to {dn!r}; netx layers are a chain")
        wn = succ[dn][0]
        wnode = graph.nodes[wn]
        if not isinstance(wnode, (nir.Linear, nir.Affine)) or len(succ[wn]) != 1:
            raise ExportError(f"to_lava: delay node {dn!r} must feed one Linear/Affine node")
        meta = (dnode.metadata or {}).get(_META, {})
        steps = np.asarray(meta.get("delay_steps", np.rint(np.asarray(dnode.delay) / dt)), dtype=np.int64).reshape(-1)
        if np.unique(steps).size != 1:
            raise ExportError(f"to_lava: delay node {dn!r} has different delays per input; expected one delay per branch")
        d = int(steps[0])
        Wd = np.asarray(wnode.weight, dtype=np.float64)
        if W is None:
            W = np.zeros_like(Wd)
            D = np.zeros(Wd.shape, dtype=np.int64)
        overlap = (W != 0) & (Wd != 0)
        if overlap.any():
            raise HardwareConstraintError(f"layer {src!r}: a synapse has two delays; Loihi has one delay per synapse")
        W = W + Wd
        D = np.where(Wd != 0, d, D)
        if isinstance(wnode, nir.Affine) and wnode.bias is not None and np.any(wnode.bias):
            bias = (0.0 if bias is None else bias) + np.asarray(wnode.bias, dtype=np.float64)
        t = succ[wn][0]
        if target not in (None, t):
            raise ExportError(f"to_lava: delay branches of {src!r} end in different nodes {target!r} and {t!r}")
        target = t
    if set(preds[target]) != {succ[dn][0] for dn in nxt}:
        raise ExportError(f"to_lava: node {target!r} receives inputs besides the delay branches of {src!r}")
    layer = FloatLayer(kind="dense", weight=W, shape=(), neuron="none", bias=bias, delay=D, flatten_before=pend["flatten"] and len(pend["in_shape"]) > 1,
                       name=nxt[0].rsplit("_delay", 1)[0], in_shape=cur_shape)
    pend["syn"] = layer
    # continue the walk at the last branch's Linear node, as if it were target's only predecessor
    last_w = succ[nxt[-1]][0]
    preds[target] = [last_w]
    return last_w, (W.shape[0],)


def to_lava(model: torch.nn.Module, path: str | os.PathLike, sample: torch.Tensor, dt: float | None = None, check: str | None = None) -> Path:
    """Export ``model`` (eval mode) to a lava-dl netx HDF5 file at ``path`` for Loihi.

    Steps: ``to_nir(model, sample, strict=True)`` -> :func:`graph_to_layers` -> Loihi fixed point
    (:func:`~neuromorph.export.loihi.quantize_layer`: 8-bit weight mantissa with a shared power-of-two
    exponent per layer, decays on the 4096 scale, threshold mantissa, integer delays 0..62) ->
    :func:`~neuromorph.export.netx.write_netx` (temp file + rename: nothing partial is left behind).
    ``check`` names a hardware profile (``"loihi"``, ``"loihi2"``): the model is checked with
    :func:`~neuromorph.export.constraints.check_model` (the same check as ``neuromorph export --check``);
    any violation raises ``HardwareConstraintError`` with the pass/fail table, and no file is written.
    A ``MaxPool2d`` of spikes becomes its own gate layer (see :func:`_pool_synapse`).
    """
    if check is not None:
        from neuromorph.export.constraints import map_and_check

        report, net = map_and_check(model, sample, check, dt=dt)
        if not report.ok or net is None:
            raise HardwareConstraintError(f"to_lava: the model violates {report.profile} constraints:\n" + report.table())
        return write_netx(net, path)
    graph = to_nir(model, sample, strict=True, dt=dt)
    input_shape, flayers = graph_to_layers(graph)
    qlayers = [quantize_layer(fl) for fl in flayers]
    return write_netx(NetxNetwork(input_shape=tuple(input_shape), layers=qlayers), path)
