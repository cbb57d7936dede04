"""Energy reports: per-layer counts turned into energy for one or more hardware profiles.

Energy of layer l on profile h, per inference (one sample, all T steps), METHODS.md §10::

    E_l = (synops_l·E_synop + macs_l·E_MAC + acs_l·E_AC + updates_l·E_neuron + spikes_l·E_spike) / samples

(``E_spike`` only where the profile defines a spike-routing cost; ``spikes_l`` are the spikes a neuron
layer emits). With ``synop = AC`` and neuron updates left out this is the standard
``E = E_MAC·FLOPs_first + E_AC·Σ SOPs`` estimate of the Spikformer line of work. The ANN equivalent is
the same network run once on real values: ``E_ANN = E_MAC · Σ_l ann_macs_l``, priced with the same
profile's MAC where it has one, else on ``ann_hardware`` (Loihi has no MAC: compared with 45 nm fp32).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuromorph._atomic import atomic_path, atomic_write_bytes
from neuromorph.energy.counters import LayerCounts
from neuromorph.energy.profiles import HardwareProfile
from neuromorph.errors import ConfigError

__all__ = ["EnergyReport", "layer_energy_pj"]

_COUNT_OPS = (("synops", "synop"), ("macs", "mac"), ("acs", "ac"), ("neuron_updates", "neuron_update"))


def layer_energy_pj(rec: LayerCounts, profile: HardwareProfile, samples: int) -> float:
    """Energy per inference (pJ) of one layer on ``profile``; names the missing constant if any."""
    total = 0.0
    for count_attr, op in _COUNT_OPS:
        n = getattr(rec, count_attr)
        if n:
            total += n * profile.energy_pj(op, needed_by=f"layer {rec.name!r} ({rec.kind}): {n:g} {count_attr}")
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

    # -- totals
    def totals(self) -> dict[str, float]:
        """Counts per inference (one sample, all time steps), summed over layers."""
        n = max(self.samples, 1)
        return {
            "spikes": sum(r.spikes_out for r in self.layers if r.role == "neuron") / n,
            "synops": sum(r.synops for r in self.layers) / n,
            "macs": sum(r.macs for r in self.layers) / n,
            "acs": sum(r.acs for r in self.layers) / n,
            "neuron_updates": sum(r.neuron_updates for r in self.layers) / n,
            "ann_macs": sum(r.ann_macs_per_sample for r in self.layers),
        }

    def total_energy_pj(self, label: str | None = None) -> float:
        """SNN energy per inference (pJ) on one profile (the first one by default)."""
        label = label or next(iter(self.energy_pj))
        if label not in self.energy_pj:
            raise ConfigError(f"no energy for profile {label!r} in this report; have: {', '.join(self.energy_pj)}")
        return float(sum(v for v in self.energy_pj[label] if v is not None))

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
        """SNN energy / ANN-equivalent energy (see :meth:`ann_energy_for`); None without an ANN estimate."""
        ann, _ = self.ann_energy_for(label)
        if not ann:
            return None
        return self.total_energy_pj(label) / ann

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
            "energy_pj_per_inference": {label: self.total_energy_pj(label) for label in self.energy_pj},
            "ann": {
                "macs_per_inference": self.totals()["ann_macs"],
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
                    "sources": {op: p.sources(op) for op in p.ops},
                } for p in self.profiles
            },
            "conventions": "synop: one accumulate per input spike per nonzero synapse (exact fan-out); "
                           "macs: layers fed real values or products of two spike tensors; acs: pooling windows; "
                           "neuron_updates: one per neuron per step; BatchNorm folded (free); energies per inference",
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
        head = ["layer", "kind", "input", "spikes", "rate", "synops", "MACs", "ACs", "updates"] + [f"E[{l}] pJ" for l in labels]
        rows = []
        n = max(self.samples, 1)
        for i, r in enumerate(self.layers):
            spikes = r.spikes_out if r.role in ("neuron", "mask") else r.spikes_in
            rows.append([r.name, r.kind, r.input_type or "-", _fmt(spikes / n), "-" if r.rate is None else f"{r.rate:.4f}",
                         _fmt(r.synops / n), _fmt(r.macs / n), _fmt(r.acs / n), _fmt(r.neuron_updates / n)]
                        + [_fmt(self.energy_pj[l][i]) for l in labels])
        t = self.totals()
        rows.append(["total", "", "", _fmt(t["spikes"]), "", _fmt(t["synops"]), _fmt(t["macs"]), _fmt(t["acs"]),
                     _fmt(t["neuron_updates"])] + [_fmt(self.total_energy_pj(l)) for l in labels])
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
        lines.append(f"per inference: {self.samples} sample(s) measured, T = {self.time_steps}")
        for label, reasons in self.missing.items():
            lines.append(f"[{label}] partial total: {len(reasons)} layer(s) left out (n/a): " + reasons[0].split(";")[0])
        lines.append(f"ANN equivalent: {_fmt(t['ann_macs'])} MACs per inference")
        for l in labels:
            ann, on = self.ann_energy_for(l)
            r = self.ratio(l)
            lines.append(f"SNN/ANN energy ratio [{l}]: {'n/a' if r is None else f'{r:.4g}'}"
                         + (f" (ANN {_fmt(ann)} pJ on {on})" if on else ""))
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> Path:
        """Bar chart of energy per layer (one bar group per profile), written atomically as PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = list(self.energy_pj)
        names = [r.name for r in self.layers]
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4))
        width = 0.8 / max(len(labels), 1)
        for k, label in enumerate(labels):
            xs = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, [v or 0.0 for v in self.energy_pj[label]], width=width, label=f"{label} (total {_fmt(self.total_energy_pj(label))} pJ)")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right")
        ax.set_ylabel("energy per inference (pJ)")
        if any(v for vals in self.energy_pj.values() for v in vals):
            ax.set_yscale("log")
        ax.set_title("Energy per layer")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(path)
        try:
            with atomic_path(path, suffix=".png") as tmp:
                fig.savefig(tmp, format="png", dpi=100)
        finally:
            plt.close(fig)
        return path


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == int(x) and abs(x) < 1e7:
        return str(int(x))
    return f"{x:.4g}"
