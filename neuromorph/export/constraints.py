"""Hardware constraint checks of an exported network against a profile (``hardware/<name>.toml``,
tables ``[constraints]`` and ``[neuron]``, read by :func:`neuromorph.hardware_profile.load_profile`; every
limit there carries its source).

Checks per layer: fan-in (presynaptic neurons per neuron), fan-out, weight mantissa bits, threshold
mantissa bits, decays on the 12-bit scale, axonal delay range, graded output spikes, supported neuron
model (``[neuron].accepts``); per input: graded (count > 1) or non-integer input spikes; per chip: cores
needed, where a layer takes ``max(ceil(neurons / neurons_per_core), ceil(synapses / synapses_per_core))``
cores (synapses counted as stored, i.e. a convolution's shared kernel expanded per output neuron; an
upper bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuromorph.errors import ExportError
from neuromorph.export.netx import NetxLayer, NetxNetwork
from neuromorph.hardware_profile import HardwareProfile, load_profile



@dataclass
class CheckReport:
    """Pass/fail rows: ``layer``, ``check``, ``value``, ``limit``, ``ok``, ``fix`` (what to change)."""

    profile: str
    rows: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r["ok"] for r in self.rows)

    def add(self, layer: str, check: str, value: Any, limit: Any, ok: bool, fix: str = "") -> None:
        self.rows.append({"layer": layer, "check": check, "value": value, "limit": limit, "ok": bool(ok), "fix": "" if ok else fix})

    def violations(self) -> list[dict]:
        return [r for r in self.rows if not r["ok"]]

    def as_dict(self) -> dict:
        return {"profile": self.profile, "ok": self.ok, "rows": self.rows}

    def table(self) -> str:
        """Plain-text pass/fail table, one row per check."""
        head = ("layer", "check", "value", "limit", "result", "what to change")
        lines = [head] + [
            (str(r["layer"]), r["check"], str(r["value"]), str(r["limit"]), "pass" if r["ok"] else "FAIL", r["fix"]) for r in self.rows
        ]
        widths = [max(len(l[i]) for l in lines) for i in range(5)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(l[:5], widths)) + ("  " + l[5] if l[5] else "") for l in lines)


def _fan(layer: NetxLayer) -> tuple[int, int, int]:
    """(fan-in per neuron, fan-out per presynaptic neuron, stored synapses)."""
    n_out = int(np.prod(layer.shape))
    if layer.kind == "dense":
        nz = layer.weight != 0
        fan_in = int(nz.sum(1).max()) if nz.size else 0
        fan_out = int(nz.sum(0).max()) if nz.size else 0
        if layer.weight_rec is not None:  # dense_rec: the recurrent synapses count too
            nr = layer.weight_rec != 0
            fan_in = int((nz.sum(1) + nr.sum(1)).max()) if nz.size else 0
            fan_out = max(fan_out, int(nr.sum(0).max()) if nr.size else 0)
            return fan_in, fan_out, int(nz.sum() + nr.sum())
        return fan_in, fan_out, int(nz.sum())
    o, i_g, kh, kw = layer.weight.shape
    fan_in = i_g * kh * kw
    sh, sw = layer.stride
    # each input pixel reaches at most ceil(k/s) positions per axis in every output channel of its group
    fan_out = (o // layer.groups) * math.ceil(kh / sh) * math.ceil(kw / sw)
    return fan_in, fan_out, n_out * fan_in


def _constraint_profile(profile: str | HardwareProfile) -> HardwareProfile:
    """The profile, which must have a ``[constraints]`` table to check anything against."""
    prof = load_profile(profile)
    if "constraints" not in prof.tables:
        prof.limit("max_fan_in", needed_by="export checks")  # raises: names the file and the missing table
    return prof


def check_network(net: NetxNetwork, profile: str | HardwareProfile) -> CheckReport:
    """Check a quantized network (``NetxNetwork``) against ``profile``; see the module docstring."""
    prof = _constraint_profile(profile)
    L = prof.limits
    rep = CheckReport(profile=prof.name)
    cores = 0
    for layer in net.layers:
        name = layer.name
        fan_in, fan_out, syn = _fan(layer)
        n = int(np.prod(layer.shape))
        if "max_fan_in" in L:
            rep.add(name, "fan_in", fan_in, L["max_fan_in"], fan_in <= L["max_fan_in"],
                    f"reduce the inputs per neuron to <= {L['max_fan_in']} (smaller layer, pooling, or a sparse/grouped layer)")
        if "max_fan_out" in L:
            rep.add(name, "fan_out", fan_out, L["max_fan_out"], fan_out <= L["max_fan_out"],
                    f"reduce the targets per neuron to <= {L['max_fan_out']} (narrower next layer)")
        if "weight_bits" in L:
            lim = 1 << (int(L["weight_bits"]) - 1)
            w = layer.weight if layer.weight_rec is None else np.concatenate([layer.weight.ravel(), layer.weight_rec.ravel()])
            ok = w.size == 0 or (w.min() >= -lim and w.max() <= lim - 1)
            rep.add(name, "weight_bits", f"{int(w.min())}..{int(w.max())}", f"{-lim}..{lim - 1}", ok,
                    "re-quantize the weights to the 8-bit mantissa")
        if "threshold_mantissa_bits" in L:
            lim = (1 << int(L["threshold_mantissa_bits"])) - 1
            rep.add(name, "threshold_mantissa", layer.v_th_mant, lim, 0 <= layer.v_th_mant <= lim,
                    "lower the weight scale (fewer fractional bits) so the threshold mantissa fits")
        if "decay_bits" in L:
            lim = 1 << int(L["decay_bits"])
            ok = 0 <= layer.i_decay <= lim and 0 <= layer.v_decay <= lim
            rep.add(name, "decays", f"iDecay={layer.i_decay}, vDecay={layer.v_decay}", f"0..{lim}", ok, "use time constants tau >= 1 step")
        if "max_delay" in L and layer.delay is not None:
            dmin, dmax = int(layer.delay.min()), int(layer.delay.max())
            rep.add(name, "delay", f"{dmin}..{dmax}", f"0..{L['max_delay']}", dmin >= 0 and dmax <= L["max_delay"],
                    f"limit delays to {L['max_delay']} steps (smaller max_delay, or a larger dt per step)")
        if "graded_spikes" in L and layer.graded_spike:
            rep.add(name, "graded_spikes", True, bool(L["graded_spikes"]), bool(L["graded_spikes"]),
                    "this chip sends binary spikes only: make the layer emit 0/1 spikes")
        npc, spc = L.get("neurons_per_core"), L.get("synapses_per_core")
        need = 1
        if npc:
            need = max(need, math.ceil(n / npc))
        if spc:
            need = max(need, math.ceil(syn / spc))
        cores += need
        rep.add(name, "cores", need, L.get("cores_per_chip", "-"), True)
    if "cores_per_chip" in L:
        rep.add("(chip)", "cores_total", cores, L["cores_per_chip"], cores <= L["cores_per_chip"],
                f"the model needs {cores} cores: shrink layers, or split the model across chips")
    for row in mapping_costs(net):
        rep.add(row["layer"], row["check"], row["value"], "-", True)
    return rep


def mapping_costs(net: NetxNetwork) -> list[dict]:
    """What the Loihi mapping adds to the model, as rows ``layer``, ``check``, ``value``, ``note``: one row
    per max-pool gate layer (a ``MaxPool2d`` of spikes becomes sum pooling + an IF gate: one more layer
    and one more step of latency, since every Loihi layer delivers its input one step late), and the
    network's latency (its output lags the input by one step per layer; the simulator's
    ``SimulationResult.aligned`` and the fidelity report shift it back)."""
    rows = []
    gates = [l for l in net.layers if l.extra.get("role") == "maxpool_gate"]
    for l in gates:
        n = int(np.prod(l.shape))
        rows.append({"layer": l.name, "check": "maxpool_gate", "value": f"+1 layer ({n} neurons), +1 step latency",
                     "note": f"MaxPool2d {l.name.rsplit('->', 1)[-1]!r} runs on Loihi as sum pooling + an IF gate (exact for spikes): "
                             f"one more layer ({n} neurons) and one more step of latency"})
    total = len(net.layers)
    rows.append({"layer": "(network)", "check": "latency_steps", "value": f"{total} ({len(gates)} from max-pool gates)",
                 "note": f"on Loihi the output lags the input by {total} steps (one per layer"
                         + (f", {len(gates)} of them max-pool gates)" if gates else ")")})
    return rows


def check_model(model, sample, profile: str | HardwareProfile, dt: float | None = None) -> CheckReport:
    """Export ``model`` for Loihi in memory and check it against ``profile``. Layers that cannot be
    mapped at all (soft reset, max pooling of non-spikes, ALIF, ...) become failing rows naming the layer
    instead of stopping the check; nothing is written. The one check behind ``to_lava(check=...)``,
    ``neuromorph export --check`` and the automatic export after ``neuromorph train``."""
    return map_and_check(model, sample, profile, dt)[0]


def map_and_check(model, sample, profile: str | HardwareProfile, dt: float | None = None) -> tuple[CheckReport, NetxNetwork | None]:
    """:func:`check_model`, also returning the quantized network (``None`` when some layer cannot be
    mapped), so that a checked export writes exactly the network that was checked."""
    from neuromorph.export.lava import graph_to_layers
    from neuromorph.export.loihi import quantize_layer
    from neuromorph.export.nir import to_nir

    prof = _constraint_profile(profile)
    rep = CheckReport(profile=prof.name)
    _check_input(rep, sample, prof)
    try:
        graph = to_nir(model, sample, strict=True, dt=dt)
    except ExportError as exc:
        rep.add(_layer_of(str(exc)), "mapping", "unsupported", "-", False, str(exc))
        return rep, None
    _check_neurons(rep, graph, prof)
    try:
        input_shape, flayers = graph_to_layers(graph)
    except ExportError as exc:
        rep.add(_layer_of(str(exc)), "mapping", "unsupported", "-", False, str(exc))
        return rep, None
    qlayers = []
    for fl in flayers:
        try:
            qlayers.append(quantize_layer(fl))
        except ExportError as exc:
            rep.add(fl.name, "mapping", "unsupported", "-", False, str(exc))
    net = NetxNetwork(input_shape=tuple(input_shape), layers=qlayers)
    if qlayers:
        rep.rows.extend(check_network(net, prof).rows)
    return rep, net if len(qlayers) == len(flayers) else None


def _layer_of(msg: str) -> str:
    import re

    m = re.search(r"layer '([^']+)'|node '([^']+)'", msg)
    return (m.group(1) or m.group(2)) if m else "(model)"


# NIR node types and the names a profile's [neuron].accepts uses for them
_NEURON_NAMES = {"LIF": "LIF", "IF": "IF", "CubaLIF": "CubaLIF", "LI": "LI", "CubaLI": "LI"}


def _check_neurons(rep: CheckReport, graph, prof: HardwareProfile) -> None:
    """One row per neuron node: is its model in the profile's ``[neuron].accepts``?"""
    accepts = prof.neuron.get("accepts")
    if not accepts:
        return
    for name, node in graph.nodes.items():
        kind = _NEURON_NAMES.get(type(node).__name__)
        if kind is not None:
            rep.add(name, "neuron_model", kind, "/".join(accepts), kind in accepts,
                    f"use one of the neuron models {', '.join(accepts)} for this layer")


def _check_input(rep: CheckReport, sample, prof: HardwareProfile) -> None:
    """The input must be spike counts: non-negative integers, and 0/1 where the chip has no graded spikes."""
    import torch

    x = sample.detach().cpu() if isinstance(sample, torch.Tensor) else torch.as_tensor(np.asarray(sample))
    if x.numel() == 0:
        return
    x = x.double()
    integer = bool(torch.isfinite(x).all()) and bool((x == x.round()).all()) and float(x.min()) >= 0
    if not integer:
        rep.add("(input)", "input_spikes", "real-valued", "integer counts >= 0", False,
                "spiking hardware takes spike events: encode real-valued input off-chip (e.g. a rate or delta encoder)")
        return
    peak = int(x.max())
    if "graded_spikes" in prof.limits and not prof.limits["graded_spikes"]:
        rep.add("(input)", "input_spikes", f"counts up to {peak} per step", "0/1 (binary spikes)", peak <= 1,
                "this chip has no graded spikes: bin the events with a shorter time step, or clip counts to 1")
