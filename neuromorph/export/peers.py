"""What each peer library can run from a NIR graph written by :func:`neuromorph.export.to_nir`.

NIR graphs have no batch axis and no time step: node shapes are per sample (``Flatten(start_dim=0)``
flattens all feature dims of one sample, as ``nir.Flatten``'s own shape inference computes it and as
Sinabs and SpikingJelly read it), and time constants are in seconds. Importers differ in how they map
that onto batched, discrete-time torch modules. ``LIMITS`` below records, per peer and NIR node type,
what the peer cannot read or run and the workaround; :func:`peer_report` applies it to a graph, so the
export report names every problem before the user meets it as a stack trace.

Every entry was established by running our files in the peer at the version in ``PEERS`` (the tests in
``tests/export/test_nir_peers.py`` run each claim again and fail when a peer's behaviour changes).
Verdicts per peer and input layout ("per_sample": batch of 1, "batched": batch > 1):

- ``exact``: the peer's spikes equal neuromorph's bit for bit (run as ``PEERS[peer]["usage"]`` says);
- ``differs``: the peer runs the graph but gives other spikes;
- ``fails``: the peer cannot load or run it;
- ``unchecked``: the graph holds a node type nobody has checked with that peer.

Workaround helpers: :func:`snntorch_chain` (recurrent layers in snnTorch), :func:`fix_peer_flatten` (batches in snnTorch/Norse), :func:`avgpool_to_sumpool`
(AvgPool2d for Norse) and :func:`maxpool_gates_to_lif` (max-pool gates for snnTorch); the last two return
an equivalent standard NIR graph. :func:`peer_summary` is the one-line form of a report.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from neuromorph.errors import ExportError

SNNTORCH_DT = 1e-4  # seconds per step that snnTorch's import_from_nir hard-codes

# peers and the versions the table was checked against; "usage" is how the tests run them
PEERS: dict[str, dict[str, str]] = {
    "snntorch": {
        "version": "1.0.0",
        "usage": "net = snntorch.import_nir.import_from_nir(graph); call net(x[t], state) per step; "
                 "snntorch.utils.reset(net) before each new sequence (its neurons keep their state between calls)",
    },
    "norse": {
        "version": "1.1.0",
        "usage": "net = norse.torch.from_nir(graph, dt=graph.metadata['dt']); call net(x[t], state) per step",
    },
    "spikingjelly": {
        "version": "2.0.0",
        "usage": "net = spikingjelly.activation_based.nir_exchange.import_from_nir(graph, dt=graph.metadata['dt']); "
                 "call net(x[t], state) per step",
    },
    "sinabs": {
        "version": "3.1.3",
        "usage": "net = sinabs.nir.from_nir(graph, num_timesteps=T); net(x) on [B*T, ...] (batch-major)",
    },
}

# node types each peer ran exactly in our tests where no entry of LIMITS applies
SUPPORTED: dict[str, frozenset[str]] = {
    "snntorch": frozenset({"Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "LIF",
                           "CubaLIF"}),
    "norse": frozenset({"Input", "Output", "Affine", "Linear", "Conv2d", "SumPool2d", "Flatten", "LIF", "IF", "CubaLIF"}),
    "spikingjelly": frozenset({"Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten",
                               "LIF", "IF", "CubaLIF"}),
    "sinabs": frozenset({"Input", "Output", "Affine", "Conv2d", "SumPool2d", "Flatten"}),
}

FAILS, BATCH, SPIKES = "fails", "batch", "spikes"  # effects: cannot load/run; fails for batch > 1; other spikes


def _always(node: Any, ctx: dict) -> bool:
    return True


@dataclass(frozen=True)
class Limit:
    """One thing a peer cannot do with one NIR node type, where ``applies(node, ctx)`` (``ctx``: the graph's
    metadata plus ``unmapped``, the number of nodes in the graph that the peer has no mapping for)."""

    peer: str
    node: str  # NIR node class name
    effect: str  # FAILS, BATCH or SPIKES
    problem: str
    workaround: str
    applies: Callable[[Any, dict], bool] = field(default=_always, compare=False)


def _arr(node: Any, attr: str) -> np.ndarray:
    return np.asarray(getattr(node, attr), dtype=np.float64)


def _dt_not_snntorch(node: Any, ctx: dict) -> bool:
    return not np.isclose(float(ctx.get("dt", np.nan)), SNNTORCH_DT, rtol=1e-9, atol=0)


def _snntorch_cuba_r(node: Any, ctx: dict) -> bool:
    # snnTorch asserts r == tau_mem / 1e-4 s
    return not np.allclose(_arr(node, "r"), _arr(node, "tau_mem") / SNNTORCH_DT)


def _threshold_varies(node: Any, ctx: dict) -> bool:
    return np.unique(_arr(node, "v_threshold")).size > 1


def _any_param_varies(node: Any, ctx: dict) -> bool:
    attrs = ("tau", "tau_mem", "tau_syn", "r", "w_in", "v_leak", "v_reset", "v_threshold")
    return any(np.unique(_arr(node, a)).size > 1 for a in attrs if getattr(node, a, None) is not None)


def _r_not_one(node: Any, ctx: dict) -> bool:
    return not np.allclose(_arr(node, "r"), 1.0)


def _multi_dim(node: Any, ctx: dict) -> bool:
    return _arr(node, "v_leak").ndim > 1


def _soft_reset(node: Any, ctx: dict) -> bool:
    return (getattr(node, "metadata", None) or {}).get("neuromorph", {}).get("reset", "hard") != "hard"


def _padded(node: Any, ctx: dict) -> bool:
    return bool(np.any(_arr(node, "padding") != 0))


def _maxpool_gate(node: Any, ctx: dict) -> bool:
    return (getattr(node, "metadata", None) or {}).get("neuromorph", {}).get("role") == "maxpool_gate"


def _tau_not_above_dt(node: Any, ctx: dict) -> bool:
    return bool(np.any(_arr(node, "tau") <= float(ctx.get("dt", np.nan))))


def _recurrent(node: Any, ctx: dict) -> bool:
    """The neuron has recurrent weights: an edge neuron -> Affine/Linear -> the same neuron."""
    return id(node) in ctx.get("recurrent", ())


def _not(pred: Callable[[Any, dict], bool]) -> Callable[[Any, dict], bool]:
    return lambda node, ctx: not pred(node, ctx)


# Norse and Sinabs import through nirtorch.load, which keys the modules by object: every node the peer
# has no mapping for becomes the same None, so with two or more such nodes the import fails (KeyError
# naming one), and a single one is silently left out (its input passed on).
UNMAPPED: dict[str, frozenset[str]] = {
    "norse": frozenset({"AvgPool2d", "Conv1d", "Delay", "LI"}),
    "sinabs": frozenset({"AvgPool2d", "CubaLIF", "Delay", "Linear"}),
}


def _several_unmapped(node: Any, ctx: dict) -> bool:
    return ctx["unmapped"] >= 2


def _one_unmapped(node: Any, ctx: dict) -> bool:
    return ctx["unmapped"] < 2


def _left_out_or_fails(peer: str, kind: str, left_out: str) -> tuple[Limit, ...]:
    """The two rows for a shape-preserving node type that ``peer`` (Norse, Sinabs) has no mapping for."""
    return (
        Limit(peer, kind, FAILS, f"no mapping for nir.{kind}; with several unmapped nodes in the graph the import fails "
              "(KeyError naming one of them)", _WORKAROUND[peer, kind], _several_unmapped),
        Limit(peer, kind, SPIKES, f"no mapping for nir.{kind}: the only unmapped node is silently left out (its input "
              f"is passed on): {left_out}", _WORKAROUND[peer, kind], _one_unmapped),
    )


_NO_DELAY = "run the file with neuromorph.export.from_nir (it runs nir.Delay), or export a model without DelayedLinear"
_FLATTEN = ("its importer builds torch.nn.Flatten(start_dim=0), which also flattens the batch axis "
            "(NIR shapes are per sample): a batch > 1 fails ('mat1 and mat2 shapes cannot be multiplied')")
_FLATTEN_FIX = ("run one sample at a time, or after import call neuromorph.export.peers.fix_peer_flatten(net), "
                "which moves each Flatten past the batch axis (then batches give the same spikes)")
_SOFT = ("neuromorph's soft/no-reset neurons (exported with strict=False) are hard-reset NIR neurons to every peer; "
         "the reset mode is only in neuromorph's node metadata")

_FROM_NIR = "run the file with neuromorph.export.from_nir"
_SNN_REC = ("a recurrent neuron (neuron -> Affine/Linear -> neuron) is made an RNN subgraph that import_from_nir hands to "
            "nirtorch 2.6, which wires it itself: from a file it fails ('GraphModule' object has no attribute 'items'), "
            "in memory the external input is routed through the recurrent weights (other spikes)")
_SNN_REC_FIX = ("net = neuromorph.export.peers.snntorch_chain(graph): snnTorch's own node mapping (RLeaky/RSynaptic for the "
                "recurrent layers) run as a chain; call net.reset(), then net(x[t]) per step. Exact for recurrent LIF with "
                "decay_input=False (RLeaky asserts r = tau/dt); a recurrent CubaLIF gives other spikes (snnTorch 1.0.0's "
                "RSynaptic resets on the previous step's spikes)")
# every peer builds sum pooling without padding (nirtorch's torch.nn.LPPool2d(1, ...), Sinabs' SumPool2d)
_PAD = ("nir.SumPool2d with padding (a MaxPool2d with padding, e.g. MaxPool2d(3, stride=2, padding=1)) is built without "
        "its padding: the pooled map is smaller and the next layer fails ('mat1 and mat2 shapes cannot be multiplied')")
_PAD_FIX = "pool without padding (MaxPool2d(2): kernel = stride), or " + _FROM_NIR
_WORKAROUND = {
    ("norse", "AvgPool2d"): "graph = neuromorph.export.peers.avgpool_to_sumpool(graph): SumPool2d with the 1/k^2 folded into "
                            "the next layer's weights, an equivalent standard NIR graph that Norse runs (exact for 2x2 pooling)",
    ("norse", "Conv1d"): "use Conv2d with a height of 1, or " + _FROM_NIR,
    ("norse", "Delay"): _NO_DELAY,
    ("norse", "LI"): "end the model with a spiking neuron, or " + _FROM_NIR,
    ("sinabs", "AvgPool2d"): _FROM_NIR,
    ("sinabs", "CubaLIF"): _FROM_NIR,
    ("sinabs", "Delay"): _NO_DELAY,
    ("sinabs", "Linear"): "give the Linear layers a bias (nir.Affine), or " + _FROM_NIR,
}

LIMITS: tuple[Limit, ...] = (
    # snnTorch 1.0.0 (snntorch.import_nir)
    Limit("snntorch", "Flatten", BATCH, _FLATTEN, _FLATTEN_FIX),
    Limit("snntorch", "Delay", FAILS, "no mapping for nir.Delay (ValueError: Unknown node type)", _NO_DELAY),
    Limit("snntorch", "LI", FAILS, "no mapping for nir.LI (ValueError: Unknown node type)",
          "end the model with a spiking neuron, or " + _FROM_NIR),
    Limit("snntorch", "IF", FAILS, "nir.IF is read as snn.Leaky(beta=0.9) and refused unless r == 1; it does not run",
          "use LIF neurons for snnTorch, or " + _FROM_NIR, _not(_maxpool_gate)),
    Limit("snntorch", "IF", FAILS, "the max-pool gates (nir.IF, threshold 0.5, r = 1/dt, hard reset to 0, written for "
          "MaxPool2d of spikes) are read as snn.Leaky(beta=0.9) and refused (r != 1); they do not run",
          "graph = neuromorph.export.peers.maxpool_gates_to_lif(graph): each gate as the equivalent nir.LIF with tau = dt "
          "and r = 1 (v = input each step, so it fires iff a spike fell in its window), which snnTorch runs exactly",
          _maxpool_gate),
    Limit("snntorch", "LIF", SPIKES, f"the importer assumes dt = {SNNTORCH_DT:g} s per step; with the graph's other dt the "
          "decays are wrong", f"export with dt={SNNTORCH_DT:g} (neuromorph export --dt {SNNTORCH_DT:g}); time constants in steps "
          "do not change", _dt_not_snntorch),
    Limit("snntorch", "CubaLIF", FAILS, f"the importer asserts r == tau_mem / {SNNTORCH_DT:g} s",
          f"export with dt={SNNTORCH_DT:g} (neuromorph export --dt {SNNTORCH_DT:g})", _snntorch_cuba_r),
    Limit("snntorch", "LIF", FAILS, "per-neuron thresholds are refused (AssertionError: v_threshold must be same for all "
          "neurons)", "use one threshold per layer (MPBN folds into per-neuron thresholds), or use Norse", _threshold_varies),
    Limit("snntorch", "CubaLIF", FAILS, "per-neuron thresholds are refused", "use one threshold per layer, or use Norse",
          _threshold_varies),
    *(Limit("snntorch", kind, FAILS, _SNN_REC, _SNN_REC_FIX, _recurrent) for kind in ("LIF", "CubaLIF")),
    # Norse 1.1.0 (norse.torch.from_nir)
    Limit("norse", "Flatten", BATCH, _FLATTEN, _FLATTEN_FIX),
    Limit("norse", "AvgPool2d", FAILS, "no mapping for nir.AvgPool2d (KeyError naming a pooling node, or, with one unmapped "
          "node, a shape error in the next layer)", _WORKAROUND["norse", "AvgPool2d"]),
    Limit("norse", "Conv1d", FAILS, "no mapping for nir.Conv1d (KeyError, or the node is left out and the next layer gets "
          "the wrong shape)", _WORKAROUND["norse", "Conv1d"]),
    *_left_out_or_fails("norse", "Delay", "no delay at all"),
    *_left_out_or_fails("norse", "LI", "the output is the LI layer's input"),
    Limit("norse", "LIF", SPIKES, "the importer ignores r (it warns that it expects r = 1): neurons with "
          "decay_input=False (r = tau) integrate their input with the wrong gain", "use decay_input=True neurons (r = 1)",
          _r_not_one),
    # SpikingJelly 2.0.0 (activation_based.nir_exchange.import_from_nir)
    Limit("spikingjelly", "Delay", FAILS, "no mapping for nir.Delay (ValueError: Unknown node type)", _NO_DELAY),
    Limit("spikingjelly", "LI", FAILS, "no mapping for nir.LI (ValueError: Unknown node type)",
          "end the model with a spiking neuron, or " + _FROM_NIR),
    Limit("spikingjelly", "LIF", FAILS, "tau <= dt is refused (ValueError: nir.LIF.tau / dt must be ... greater than 1); "
          "maxpool_gates_to_lif writes such LIFs", "for SpikingJelly keep the max-pool gates as nir.IF (it runs them exactly)",
          _tau_not_above_dt),
    Limit("spikingjelly", "LIF", FAILS, "per-neuron parameters are refused (ValueError: ... must be uniform)",
          "use one value per layer (MPBN folds into per-neuron thresholds), or use Norse", _any_param_varies),
    Limit("spikingjelly", "IF", FAILS, "per-neuron parameters are refused", "use one value per layer, or use Norse",
          _any_param_varies),
    Limit("spikingjelly", "CubaLIF", FAILS, "per-neuron parameters are refused", "use one value per layer, or use Norse",
          _any_param_varies),
    # Sinabs 3.1.3 (sinabs.nir.from_nir)
    Limit("sinabs", "Linear", FAILS, "no mapping for bias-free nir.Linear (KeyError, or the node is left out and the run "
          "fails)", _WORKAROUND["sinabs", "Linear"]),
    Limit("sinabs", "AvgPool2d", FAILS, "no mapping for nir.AvgPool2d (KeyError, or the node is left out and the next layer "
          "gets the wrong shape)", _FROM_NIR),
    *_left_out_or_fails("sinabs", "Delay", "no delay at all"),
    *_left_out_or_fails("sinabs", "CubaLIF", "no neuron at all"),
    Limit("sinabs", "LIF", FAILS, "neuron parameters with more than one dimension (a LIF after a conv layer) are refused "
          "(ValueError: truth value of an array ... is ambiguous)", _FROM_NIR, _multi_dim),
    Limit("sinabs", "LI", FAILS, "nir.LI with r != 1 (decay_input=False) is refused (ValueError: `r` must be 1)",
          _FROM_NIR, _r_not_one),
    *(Limit("sinabs", kind, SPIKES, "Sinabs runs its own discrete-time neuron (multi-spike, subtractive reset, exponential "
            "decay with tau read as steps), not NIR's: other spikes", "none in Sinabs' NIR import; " + _FROM_NIR, pred)
      for kind, pred in (("LIF", _not(_multi_dim)), ("IF", _always), ("LI", _not(_r_not_one)))),
    # every peer: sum pooling (max-pool windows) with padding
    *(Limit(peer, "SumPool2d", FAILS, _PAD, _PAD_FIX, _padded) for peer in ("snntorch", "norse", "spikingjelly", "sinabs")),
    # every peer but Sinabs (whose neurons never give our spikes anyway)
    *(Limit(peer, "LIF", SPIKES, _SOFT, "retrain with reset='hard' for other tools", _soft_reset)
      for peer in ("snntorch", "norse", "spikingjelly")),
)


def peer_report(graph) -> dict[str, dict[str, Any]]:
    """Per peer: ``version`` checked (and ``installed``, None when absent), ``per_sample`` and ``batched`` verdicts (``exact``, ``differs``,
    ``fails``, ``unchecked``), ``issues`` (node type, node names, effect, problem, workaround) and ``usage``.

    ``graph`` is a ``nir.NIRGraph`` (as :func:`neuromorph.export.to_nir` returns it, with ``metadata['dt']``).
    Only the node types and parameters are read; no peer library is imported.
    """
    graph_meta = dict(getattr(graph, "metadata", None) or {})
    by_type: dict[str, list[tuple[str, Any]]] = {}
    for name, node in graph.nodes.items():
        by_type.setdefault(type(node).__name__, []).append((name, node))
    pairs = set(graph.edges)
    recurrent = {id(graph.nodes[a]) for a, b in pairs if (b, a) in pairs and a != b and a in graph.nodes}
    report: dict[str, dict[str, Any]] = {}
    for peer, info in PEERS.items():
        issues = []
        ctx = {**graph_meta, "unmapped": sum(len(by_type.get(k, [])) for k in UNMAPPED.get(peer, ())),
               "recurrent": recurrent}
        for lim in (l for l in LIMITS if l.peer == peer):
            hit = [name for name, node in by_type.get(lim.node, []) if lim.applies(node, ctx)]
            if hit:
                issues.append({"node": lim.node, "nodes": hit, "effect": lim.effect, "problem": lim.problem,
                               "workaround": lim.workaround})
        covered = SUPPORTED[peer] | {l.node for l in LIMITS if l.peer == peer}
        for kind in sorted(set(by_type) - covered):
            issues.append({"node": kind, "nodes": [n for n, _ in by_type[kind]], "effect": "unchecked",
                           "problem": f"nir.{kind} has not been checked with {peer} {info['version']}",
                           "workaround": "check the spikes against neuromorph.export.from_nir before relying on them"})
        effects = {i["effect"] for i in issues}
        per_sample = ("fails" if FAILS in effects else "unchecked" if "unchecked" in effects
                      else "differs" if SPIKES in effects else "exact")
        batched = "fails" if per_sample != "fails" and BATCH in effects else per_sample
        report[peer] = {"version": info["version"], "installed": _installed(peer), "per_sample": per_sample,
                        "batched": batched, "issues": issues, "usage": info["usage"]}
    return report


def _installed(peer: str) -> str | None:
    """The installed version of ``peer`` (from its package metadata; nothing is imported), or None."""
    from importlib import metadata

    try:
        return metadata.version(peer)
    except metadata.PackageNotFoundError:
        return None


def format_peer_report(report: dict[str, dict[str, Any]]) -> str:
    """The report of :func:`peer_report` as indented text lines for the CLI."""
    lines = ["NIR peers (what other tools do with this file; checked with "
             + ", ".join(f"{p} {r['version']}" for p, r in report.items()) + "):"]
    for peer, r in report.items():
        other = r.get("installed") not in (None, r["version"])
        lines.append(f"  {peer}: per sample {r['per_sample']}, batched {r['batched']}"
                     + (f" (installed here: {r['installed']}; not checked)" if other else ""))
        for i in r["issues"]:
            nodes = ", ".join(repr(n) for n in i["nodes"][:4]) + (f" (+{len(i['nodes']) - 4})" if len(i["nodes"]) > 4 else "")
            lines.append(f"    - {i['node']} {nodes}: {i['problem']}; workaround: {i['workaround']}")
    return "\n".join(lines)


def fix_peer_flatten(net) -> int:
    """Shift the ``torch.nn.Flatten`` modules that snnTorch's or Norse's importer built from NIR ``Flatten``
    nodes past the batch axis.

    Those importers copy NIR's per-sample ``start_dim``/``end_dim`` into ``torch.nn.Flatten``, which
    counts the batch axis; after this, batches of any size run. Call it on the module the importer
    returned (a second call changes nothing). Not for Sinabs or SpikingJelly modules: their importers
    already shift the dims. Returns the number of modules changed.
    """
    import torch

    n = 0
    for m in net.modules():
        if type(m) is torch.nn.Flatten and not getattr(m, "_neuromorph_batch_fixed", False):
            m.start_dim = m.start_dim + 1 if m.start_dim >= 0 else m.start_dim
            m.end_dim = m.end_dim + 1 if m.end_dim >= 0 else m.end_dim
            m._neuromorph_batch_fixed = True
            n += 1
    return n


_WEIGHTED = ("Affine", "Linear", "Conv1d", "Conv2d")


def avgpool_to_sumpool(graph):
    """An equivalent NIR graph with each ``AvgPool2d`` as ``SumPool2d`` and its 1/(kh*kw) folded into the
    weights of the layers it feeds (through ``Flatten``); biases are unchanged. Standard NIR, for tools
    without AvgPool2d (Norse). Exact when kh*kw is a power of two (the scaling is then exact in floating
    point), else equal up to rounding. Raises ``ExportError`` when a pool feeds anything but weights.
    """
    import nir

    g = copy.deepcopy(graph)
    succ: dict[str, list[str]] = {}
    preds: dict[str, list[str]] = {}
    for a, b in g.edges:
        succ.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)
    scale: dict[str, float] = {}
    for name, node in list(g.nodes.items()):
        if not isinstance(node, nir.AvgPool2d):
            continue
        k = np.asarray(node.kernel_size).reshape(-1)
        s = 1.0 / float(np.prod(np.resize(k, 2)))
        g.nodes[name] = nir.SumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
        todo = list(succ.get(name, []))
        while todo:
            c = todo.pop()
            kind = type(g.nodes[c]).__name__
            if kind == "Flatten" and len(preds.get(c, [])) == 1:
                todo.extend(succ.get(c, []))
            elif kind in _WEIGHTED and len(preds.get(c, [])) == 1 and c not in scale:
                scale[c] = s
            else:
                raise ExportError(f"NIR node {name!r}: AvgPool2d feeds {kind} node {c!r}; its 1/k^2 can only be folded into "
                                  "the weights of a Linear/Conv layer that has no other input")
    for c, s in scale.items():
        g.nodes[c].weight = np.asarray(g.nodes[c].weight) * s
    return g


def maxpool_gates_to_lif(graph):
    """An equivalent NIR graph with each max-pool gate (the ``nir.IF`` that :func:`~neuromorph.export.to_nir`
    writes after a ``SumPool2d`` for ``MaxPool2d`` of spikes) as a ``nir.LIF`` with ``tau = dt``, ``r = 1``,
    ``v_leak = 0``, the same threshold and hard reset to 0: its Euler step sets ``v`` to the input, so it
    fires iff a spike fell in its window, as the gate does. Standard NIR, for tools that refuse ``r != 1``
    IF neurons (snnTorch); other nodes are unchanged. Gates are found by their neuromorph metadata."""
    import nir

    dt = float((getattr(graph, "metadata", None) or {}).get("dt", 0.0))
    if not dt > 0:
        raise ExportError("maxpool_gates_to_lif: the graph has no metadata['dt'] (write it with neuromorph.export.to_nir)")
    g = copy.deepcopy(graph)
    for name, node in list(g.nodes.items()):
        if isinstance(node, nir.IF) and _maxpool_gate(node, {}):
            th = np.asarray(node.v_threshold, dtype=np.float64)
            g.nodes[name] = nir.LIF(tau=np.full(th.shape, dt), r=np.ones(th.shape), v_leak=np.zeros(th.shape),
                                    v_threshold=th.copy(), v_reset=np.zeros(th.shape), metadata={"neuromorph": {"role": "maxpool_gate", "reset": "hard"}})
    return g


def peer_summary(report: dict[str, dict[str, Any]]) -> str:
    """One line saying which peers run the file: per peer the verdicts (per sample/batched) and the node
    types behind a verdict that is not ``exact`` (the full report, with workarounds: :func:`format_peer_report`)."""
    parts = []
    for peer, r in report.items():
        v = r["per_sample"] if r["per_sample"] == r["batched"] else f"{r['per_sample']}/{r['batched']}"
        nodes = sorted({i["node"] for i in r["issues"]})
        parts.append(f"{peer} {v}" + (f" ({', '.join(nodes)})" if nodes else ""))
    return "peers (per sample/batched): " + "; ".join(parts)


def snntorch_chain(graph):
    """The NIR ``graph`` (a chain of layers, as :func:`~neuromorph.export.to_nir` writes it) as snnTorch
    modules: each node mapped by snnTorch's own importer (its recurrent-subgraph detection makes each
    recurrent LIF/CubaLIF an ``RLeaky``/``RSynaptic``), run in order with each neuron's state carried.
    Call ``net.reset()`` before each sequence, then ``net(x[t])`` per step.

    The workaround for recurrent graphs, whose RNN subgraphs ``snntorch.import_nir.import_from_nir``
    (snnTorch 1.0.0) leaves to nirtorch 2.6 to wire, which fails or gives other spikes. The neurons run
    with explicit state (``init_hidden=False``): snnTorch 1.0.0's ``RSynaptic`` with hidden state fails
    (``TypeError`` in its immediate reset). Raises ``ExportError`` for a graph that is not a chain.
    """
    import contextlib
    import io

    import nir
    from snntorch import import_nir as sni

    g = copy.deepcopy(graph)  # the importer rewrites the graph it is given
    with contextlib.redirect_stdout(io.StringIO()):  # and prints what it does
        g = sni._replace_rnn_subgraph_with_nirgraph(g)
    succ: dict[str, list[str]] = {}
    preds: dict[str, list[str]] = {}
    for a, b in g.edges:
        succ.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)
    start = [n for n, v in g.nodes.items() if isinstance(v, nir.Input)]
    order, n = [], start[0] if len(start) == 1 else None
    while n is not None:
        nxt = succ.get(n, [])
        if len(nxt) != 1 or len(preds.get(nxt[0], [])) != 1:
            raise ExportError(f"snntorch_chain: the graph is not a chain of layers at node {n!r}")
        n = nxt[0]
        if isinstance(g.nodes[n], nir.Output):
            break
        order.append(n)
    if not order:
        raise ExportError("snntorch_chain: the graph has no layers between its Input and Output")
    with contextlib.redirect_stdout(io.StringIO()):
        mods = [sni._nir_to_snntorch_module(g.nodes[n], init_hidden=False) for n in order]
    return _SnnTorchChain(mods)


def _snntorch_chain_class():
    import snntorch
    import torch

    class SnnTorchChain(torch.nn.Module):
        """snnTorch modules run in order one step per call; neurons get their state from the previous call."""

        def __init__(self, mods):
            super().__init__()
            self.layers = torch.nn.ModuleList(mods)
            self.state: dict[int, tuple] = {}

        def reset(self) -> None:
            """Start a new sequence (the neurons also keep their last state inside)."""
            self.state = {}
            for m in self.layers:
                if isinstance(m, snntorch.SpikingNeuron):
                    m.reset_mem()

        def forward(self, x):
            for i, m in enumerate(self.layers):
                if isinstance(m, snntorch.SpikingNeuron):
                    rec = isinstance(m, (snntorch.RLeaky, snntorch.RSynaptic))
                    if i not in self.state and rec:  # RSynaptic fails without explicit (zero) state
                        self.state[i] = tuple(torch.zeros_like(x) for _ in range(3 if isinstance(m, snntorch.RSynaptic) else 2))
                    out = m(x, *self.state[i]) if i in self.state else m(x)
                    # RLeaky/RSynaptic take their last spikes back as state, the others only syn/mem
                    x, self.state[i] = out[0], tuple(out if rec else out[1:])
                else:
                    x = m(x)
            return x

    return SnnTorchChain


def _SnnTorchChain(mods):  # noqa: N802 - built lazily: snnTorch is an optional peer
    return _snntorch_chain_class()(mods)
