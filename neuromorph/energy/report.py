"""Energy reports: per-layer counts turned into energy for one or more hardware profiles.

Energy of layer l on profile h, per inference (one sample, all T steps)::

    E_l = (synops_l·E_synop + macs_l·E_MAC + acs_l·E_AC + updates_l·E_neuron + spikes_l·E_spike) / samples

(``E_spike`` only where the profile defines a spike-routing cost; ``spikes_l`` are the spikes a neuron
layer emits). Where a profile prices active and inactive neuron updates apart (Loihi: 81 / 52 pJ),
``updates_l·E_neuron`` is ``active_l·E_active + (updates_l - active_l)·E_inactive`` (the rule:
:data:`NEURON_UPDATE_RULE`). With ``synop = AC`` and neuron updates left out this is the standard
``E = E_MAC·FLOPs_first + E_AC·Σ SOPs`` estimate of the Spikformer line of work. The ANN equivalent is
the same network on real values, run at each of the T steps the SNN sees (:data:`ANN_ASSUMPTION`):
``E_ANN = E_MAC · Σ_l ann_macs_l``, priced with the same profile's MAC where it has one, else on
``ann_hardware`` (Loihi has no MAC: compared with 45 nm fp32). The SNN/ANN ratio is given only for a
profile that priced every layer ("n/a" otherwise).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuromorph._atomic import atomic_write_bytes
from neuromorph.energy.counters import LayerCounts
from neuromorph.errors import ConfigError
from neuromorph.hardware_profile import HardwareProfile

__all__ = ["ANN_ASSUMPTION", "EnergyReport", "MAXPOOL_GATE_RULE", "NEURON_UPDATE_RULE", "layer_energy_pj"]

_COUNT_OPS = (("synops", "synop"), ("macs", "mac"), ("acs", "ac"))

#: how neuron updates are counted and split into active and inactive ones (stated in every report)
NEURON_UPDATE_RULE = (
    "one neuron update per neuron per time step per sample; an update is active when the neuron received "
    "nonzero input that step or any of its state variables (v, i, a) changed in it, else inactive; layers "
    "whose state is not visible to the monitor count every update as active (upper bound); adaptive LIF "
    "neurons with an adaptation current (SEAdLIF, EFAdLIF) count two updates per neuron per step, one for the "
    "membrane and one for the adaptation current (a two-compartment neuron), both active or inactive together"
)
#: how max pooling of spikes is priced (stated in every report that has such a layer)
MAXPOOL_GATE_RULE = (
    "MaxPool2d of spikes is exported to Loihi (netx) as sum pooling followed by a gate layer: one IF neuron per "
    "pooled output, updated every step; its updates are charged on profiles that price active/inactive neuron "
    "updates (active when a spike fell in its window), not on the others (where max pooling is a comparison)"
)
#: what the ANN-equivalent baseline is (stated in every report)
ANN_ASSUMPTION = (
    "the same layers with real-valued activations, run at each of the T steps of the input sequence (an ANN "
    "that sees the same sequence, as a GRU or a 1-D CNN over time would); for a static input that an ANN "
    "would see once, divide by T (ann.macs_per_step)"
)


def layer_energy_pj(rec: LayerCounts, profile: HardwareProfile, samples: int) -> float:
    """Energy per inference (pJ) of one layer on ``profile``; names the missing constant if any."""
    total = 0.0
    for count_attr, op in _COUNT_OPS:
        n = getattr(rec, count_attr)
        if n:
            total += n * profile.energy_pj(op, needed_by=f"layer {rec.name!r} ({rec.kind}): {n:g} {count_attr}")
    n = rec.neuron_updates
    if n:
        who = f"layer {rec.name!r} ({rec.kind}): {n:g} neuron updates"
        if profile.has("neuron_update_active"):  # the loader guarantees the inactive price is there too
            total += (rec.active_updates * profile.energy_pj("neuron_update_active", needed_by=who)
                      + (n - rec.active_updates) * profile.energy_pj("neuron_update_inactive", needed_by=who))
        else:
            total += n * profile.energy_pj("neuron_update", needed_by=who)
    if rec.gate_updates and profile.has("neuron_update_active"):  # MAXPOOL_GATE_RULE
        total += (rec.gate_active_updates * profile.energy_pj("neuron_update_active")
                  + (rec.gate_updates - rec.gate_active_updates) * profile.energy_pj("neuron_update_inactive"))
    if rec.role == "neuron" and rec.spikes_out and profile.has("spike"):
        total += rec.spikes_out * profile.energy_pj("spike")
    return total / max(samples, 1)


@dataclass
class EnergyReport:
    """Result of :func:`neuromorph.energy.measure`.

    ``layers``: counts per layer (totals over every sample measured); ``samples``: samples measured;
    ``time_steps``: T; ``energy_pj[label][i]``: energy per inference of layer i on that profile;
    ``ann_energy_pj``: energy per inference of the ANN equivalent on ``ann_profile``; ``None`` entries
    in ``energy_pj`` are layers a profile could not price (see ``missing``).
    """

    layers: list[LayerCounts]
    samples: int
    time_steps: int
    profiles: list[HardwareProfile]
    ann_profile: HardwareProfile | None
    energy_pj: dict[str, list[float | None]] = field(default_factory=dict)
    ann_energy_pj: float | None = None

    #: ``missing[label]``: messages naming the unknown energies a profile lacked (``allow_missing``)
    missing: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, layers: list[LayerCounts], samples: int, time_steps: int,
              profiles: list[HardwareProfile], ann_profile: HardwareProfile | None,
              allow_missing: bool = False) -> "EnergyReport":
        """Cost ``layers`` on every profile. A profile lacking an energy the model needs raises
        ``ConfigError`` naming it, or with ``allow_missing`` leaves that layer's energy out (``None``)
        and records the reason in ``missing``."""
        report = cls(layers, samples, time_steps, profiles, ann_profile)
        for p in profiles:
            values = []
            for rec in layers:
                try:
                    values.append(layer_energy_pj(rec, p, samples))
                except ConfigError as exc:
                    if not allow_missing:
                        raise
                    values.append(None)
                    report.missing.setdefault(p.label, []).append(str(exc))
            report.energy_pj[p.label] = values
        if ann_profile is not None:
            ann_macs = sum(rec.ann_macs_per_sample for rec in layers)
            report.ann_energy_pj = ann_macs * ann_profile.energy_pj("mac", needed_by="the ANN-equivalent estimate") if ann_macs else 0.0
        return report

    def _gate_layers(self) -> list[LayerCounts]:
        return [r for r in self.layers if r.gate_updates]

    # -- totals
    def totals(self) -> dict[str, float]:
        """Counts per inference (one sample, all time steps), summed over layers."""
        n = max(self.samples, 1)
        updates = sum(r.neuron_updates for r in self.layers) / n
        active = sum(r.active_updates for r in self.layers) / n
        outputs = sum(r.outputs for r in self.layers if r.role == "neuron")
        nonzero = sum(r.nonzero_outputs for r in self.layers if r.role == "neuron")
        ann = sum(r.ann_macs_per_sample for r in self.layers)
        return {
            "spikes": sum(r.spikes_out for r in self.layers if r.role == "neuron") / n,
            "synops": sum(r.synops for r in self.layers) / n,
            "macs": sum(r.macs for r in self.layers) / n,
            "acs": sum(r.acs for r in self.layers) / n,
            "neuron_updates": updates,
            "active_updates": active,
            "inactive_updates": updates - active,
            # NeuroBench's ActivationSparsity over the neuron layers: zero outputs / all outputs
            "activation_sparsity": None if not outputs else (outputs - nonzero) / outputs,
            "ann_macs": ann,
            "ann_macs_per_step": ann / max(self.time_steps, 1),
        }

    def untracked_activity(self) -> list[str]:
        """Neuron layers whose active/inactive split is not known (all their updates counted active)."""
        return [r.name for r in self.layers if r.role == "neuron" and r.activity == "not tracked" and r.neuron_updates]

    def energy_band_pj(self, label: str | None = None) -> tuple[float, float] | None:
        """``(lower, upper)`` energy per inference on a profile that prices active and inactive updates
        apart, when some layers' activity is not tracked: upper charges their updates as active (the
        reported total), lower as inactive. None when the split does not apply or everything is tracked."""
        label = label or next(iter(self.energy_pj))
        profile = next((p for p in self.profiles if p.label == label), None)
        untracked = [r for r in self.layers if r.name in set(self.untracked_activity())]
        if profile is None or not profile.has("neuron_update_active") or not untracked:
            return None
        step = profile.energy_pj("neuron_update_active") - profile.energy_pj("neuron_update_inactive")
        upper = self.total_energy_pj(label)
        return upper - step * sum(r.active_updates for r in untracked) / max(self.samples, 1), upper

    def total_energy_pj(self, label: str | None = None) -> float:
        """SNN energy per inference (pJ) on one profile (the first one by default)."""
        label = label or next(iter(self.energy_pj))
        if label not in self.energy_pj:
            raise ConfigError(f"no energy for profile {label!r} in this report; have: {', '.join(self.energy_pj)}")
        return float(sum(v for v in self.energy_pj[label] if v is not None))

    def _shown_total(self, label: str) -> float | None:
        """The total as reported: None ("n/a") when the profile could price none of the operations that
        cost something (e.g. Loihi 2, which has no published energies), else the (partial) sum."""
        values = self.energy_pj[label]
        if any(v is None for v in values) and not any(values):
            return None
        return self.total_energy_pj(label)

    def ann_energy_for(self, label: str | None = None) -> tuple[float | None, str | None]:
        """ANN-equivalent energy per inference to compare profile ``label`` with, and the profile used:
        the same profile's MAC where it has one (e.g. cmos45nm:int8 against an int8 ANN), else
        ``ann_profile`` (e.g. Loihi, which has no MAC, against the fp32 45 nm ANN)."""
        label = label or next(iter(self.energy_pj))
        profile = next((p for p in self.profiles if p.label == label), None)
        ann_macs = self.totals()["ann_macs"]
        if profile is not None and profile.has("mac"):
            return ann_macs * profile.energy_pj("mac"), profile.label
        if self.ann_profile is None:
            return None, None
        return self.ann_energy_pj, self.ann_profile.label

    def ratio(self, label: str | None = None) -> float | None:
        """SNN energy / ANN-equivalent energy (see :meth:`ann_energy_for`); None ("n/a") without an ANN
        estimate, or when the profile could not price every layer (a partial total is no comparison)."""
        label = label or next(iter(self.energy_pj))
        ann, _ = self.ann_energy_for(label)
        if not ann or self.missing.get(label):
            return None
        return self.total_energy_pj(label) / ann

    def neurobench(self) -> dict[str, Any]:
        """The counts under NeuroBench's names (neurobench 2.3 ``SynapticOperations`` and
        ``ActivationSparsity``), per sample, computed with NeuroBench's rules.

        ``SynapticOperations`` covers the Linear and Conv layers (NeuroBench's connection layers): the
        effective operations ``Σ 1[x ≠ 0] · fanout`` of each call count as ``Effective_ACs`` when its input
        holds only -1, 0, 1, else as ``Effective_MACs``; ``Dense`` counts every synapse, zero weights too,
        at every input position. ``ActivationSparsity`` is the share of zero outputs of the neuron layers
        (NeuroBench's activation layers, once the neuron classes are registered with
        ``add_activation_module``); NeuroBench averages it per batch weighted by batch size, which equals
        this ratio over all outputs when every batch has the same number of steps. Where this report counts differently (``differences``): event counts
        (values > 1) are that many spikes here (``count · fanout`` synops) but nonzero MAC inputs to
        NeuroBench; real-valued inputs cost dense MACs here (``skip_zeros=False``) but only their nonzero
        entries to NeuroBench; pooling, products computed inside a forward (``F.linear``, matmul) and
        ``DelayedLinear`` are counted here and not by NeuroBench; ``Dense`` counts zero weights, the
        ANN equivalent here does not.
        """
        n = max(self.samples, 1)
        nb = [r for r in self.layers if r.nb_acs or r.nb_macs or r.nb_dense]
        t = self.totals()
        acs, macs = sum(r.nb_acs for r in nb) / n, sum(r.nb_macs for r in nb) / n
        return {
            "SynapticOperations": {"Effective_MACs": macs, "Effective_ACs": acs, "Dense": sum(r.nb_dense for r in nb) / n},
            "ActivationSparsity": t["activation_sparsity"],
            "samples": self.samples,
            "layers": {r.name: {"Effective_MACs": r.nb_macs / n, "Effective_ACs": r.nb_acs / n, "Dense": r.nb_dense / n}
                       for r in nb},
            "differences": {
                "synops_minus_Effective_ACs": t["synops"] - acs,
                "macs_minus_Effective_MACs": t["macs"] - macs,
                "not_counted_by_neurobench": sorted({r.name for r in self.layers if r.role in ("synaptic", "pool", "functional")}
                                                    - {r.name for r in nb}),
                "explanation": "synops: spikes x exact fan-out, event counts c > 1 as c spikes (NeuroBench: a "
                               "nonzero MAC input); macs: real-valued inputs as dense MACs at every position "
                               "unless skip_zeros (NeuroBench: nonzero inputs only); pooling, F.linear/matmul "
                               "inside a forward and DelayedLinear are counted here only",
            },
        }

    # -- output
    def to_dict(self) -> dict[str, Any]:
        per_layer = []
        for i, rec in enumerate(self.layers):
            d = rec.to_dict()
            n = max(self.samples, 1)
            d["per_inference"] = {k: getattr(rec, k) / n for k in ("spikes_in", "spikes_out", "synops", "macs", "acs", "neuron_updates")}
            d["energy_pj"] = {label: vals[i] for label, vals in self.energy_pj.items()}
            per_layer.append(d)
        return {
            "samples": self.samples,
            "time_steps": self.time_steps,
            "layers": per_layer,
            "totals_per_inference": self.totals(),
            "neuron_update_rule": NEURON_UPDATE_RULE,
            **({"maxpool_gate_rule": MAXPOOL_GATE_RULE} if self._gate_layers() else {}),
            "activity_not_tracked": self.untracked_activity(),
            "energy_pj_band": {label: self.energy_band_pj(label) for label in self.energy_pj
                               if self.energy_band_pj(label) is not None},
            "energy_pj_per_inference": {label: self._shown_total(label) for label in self.energy_pj},
            "neurobench": self.neurobench(),
            "ann": {
                "assumption": ANN_ASSUMPTION,
                "time_steps": self.time_steps,
                "macs_per_inference": self.totals()["ann_macs"],
                "macs_per_step": self.totals()["ann_macs_per_step"],
                "hardware": None if self.ann_profile is None else self.ann_profile.label,
                "energy_pj_per_inference": self.ann_energy_pj,
                "compared_with": {label: dict(zip(("energy_pj_per_inference", "hardware"), self.ann_energy_for(label)))
                                  for label in self.energy_pj},
            },
            "snn_ann_ratio": {label: self.ratio(label) for label in self.energy_pj},
            "missing": dict(self.missing),
            "hardware": {
                p.label: {
                    "path": p.path, "description": p.description,
                    "ops_pj": {op: p.energy_pj(op) for op in p.ops},
                    "sources": {op: p.energy_sources(op) for op in p.ops},
                } for p in self.profiles
            },
            "conventions": "synop: one accumulate per input spike per nonzero synapse (exact fan-out); "
                           "macs: layers fed real values or products of two spike tensors; acs: pooling windows; "
                           "neuron_updates: one per neuron per step, split into active and inactive (see "
                           "neuron_update_rule); BatchNorm folded (free); ANN: see ann.assumption; energies per inference",
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The report as JSON; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_bytes(path, text.encode())
        return text

    def table(self) -> str:
        """A plain-text per-layer table (counts per inference) with totals and the SNN/ANN ratio."""
        labels = list(self.energy_pj)
        head = (["layer", "kind", "input", "spikes", "rate", "synops", "MACs", "ACs", "updates", "active"]
                + [f"E[{l}] pJ" for l in labels])
        rows = []
        n = max(self.samples, 1)
        for i, r in enumerate(self.layers):
            spikes = r.spikes_out if r.role in ("neuron", "mask") else r.spikes_in
            active = "-" if not r.neuron_updates else (_fmt(r.active_updates / n) + ("*" if r.activity == "not tracked" else ""))
            rows.append([r.name, r.kind, r.input_type or "-", _fmt(spikes / n), "-" if r.rate is None else f"{r.rate:.4f}",
                         _fmt(r.synops / n), _fmt(r.macs / n), _fmt(r.acs / n), _fmt(r.neuron_updates / n), active]
                        + [_fmt(self.energy_pj[l][i]) for l in labels])
        t = self.totals()
        rows.append(["total", "", "", _fmt(t["spikes"]), "", _fmt(t["synops"]), _fmt(t["macs"]), _fmt(t["acs"]),
                     _fmt(t["neuron_updates"]), _fmt(t["active_updates"])] + [_fmt(self._shown_total(l)) for l in labels])
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
        lines.append(f"per inference: {self.samples} sample(s) measured, T = {self.time_steps}")
        lines.append(f"neuron updates: {_fmt(t['active_updates'])} active, {_fmt(t['inactive_updates'])} inactive "
                     f"per inference ({NEURON_UPDATE_RULE})")
        gates = self._gate_layers()
        if gates:
            g_all = sum(r.gate_updates for r in gates) / n
            g_act = sum(r.gate_active_updates for r in gates) / n
            lines.append(f"max-pool gates ({', '.join(r.name for r in gates)}): {_fmt(g_all)} updates per inference, "
                         f"{_fmt(g_act)} active, not in the counts above ({MAXPOOL_GATE_RULE})")
        if self.untracked_activity():
            lines.append("  * activity not tracked (counted as active): " + ", ".join(self.untracked_activity()))
        for p in self.profiles:
            if p.has("neuron_update_active"):
                band = self.energy_band_pj(p.label)
                lines.append(f"  [{p.label}] active {_fmt(p.energy_pj('neuron_update_active'))} pJ, "
                             f"inactive {_fmt(p.energy_pj('neuron_update_inactive'))} pJ per update"
                             + (f"; total between {_fmt(band[0])} and {_fmt(band[1])} pJ (* charged active)" if band else ""))
        if t["activation_sparsity"] is not None:
            lines.append(f"activation sparsity (neuron outputs that are zero): {t['activation_sparsity']:.4f}")
        for label, reasons in self.missing.items():
            lines.append(f"[{label}] partial total: {len(reasons)} layer(s) left out (n/a): " + reasons[0].split(";")[0])
        lines.append(f"ANN equivalent: {_fmt(t['ann_macs'])} MACs per inference = {_fmt(t['ann_macs_per_step'])} per step "
                     f"x T = {self.time_steps} ({ANN_ASSUMPTION.split(';')[0]})")
        for l in labels:
            ann, on = self.ann_energy_for(l)
            r = self.ratio(l)
            why = " (this profile could not price every layer)" if r is None and self.missing.get(l) else ""
            lines.append(f"SNN/ANN energy ratio [{l}]: {'n/a' if r is None else f'{r:.4g}'}{why}"
                         + (f" (ANN {_fmt(ann)} pJ on {on})" if on and r is not None else ""))
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> Path:
        """Bar chart of energy per layer (one bar group per profile), written atomically as PNG."""
        from neuromorph._plot import pyplot, save_png

        plt = pyplot()
        labels = list(self.energy_pj)
        names = [r.name for r in self.layers]
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4))
        width = 0.8 / max(len(labels), 1)
        for k, label in enumerate(labels):
            xs = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, [v or 0.0 for v in self.energy_pj[label]], width=width, label=f"{label} (total {_fmt(self._shown_total(label))} pJ)")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right")
        ax.set_ylabel("energy per inference (pJ)")
        if any(v for vals in self.energy_pj.values() for v in vals):
            ax.set_yscale("log")
        ax.set_title("Energy per layer")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return save_png(fig, path, dpi=100)


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == int(x) and abs(x) < 1e7:
        return str(int(x))
    return f"{x:.4g}"
