"""Training metrics: readout + loss, firing rates per spiking layer, confusion counts, JSON-lines log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from neuromorph._atomic import atomic_write_bytes
from neuromorph.errors import ShapeError
from neuromorph.nn.protocol import spiking_layers

__all__ = ["readout", "spiking_layers", "FiringRateMonitor", "per_class_accuracy", "MetricsLog", "write_json_atomic",
           "read_jsonl", "fmt_rates", "mean"]


def readout(out: torch.Tensor, mode: str) -> torch.Tensor:
    """Class scores ``[B, C]`` from a model output ``[T, B, C]`` (or ``[B, C]``, passed through).

    - ``mean``: logits = (1/T) Σ_t out[t] (rate-coded readout; the usual choice for LIF/LI outputs).
    - ``sum``: Σ_t out[t].
    - ``summed-softmax``: m = Σ_t softmax(out[t]), the SHD delay paper's readout (Hammouamri et
      al., ICLR 2024); cross-entropy is then applied to m as if it were logits, as their code does.
    - ``last``: out[T-1].
    """
    if out.dim() == 2:
        return out
    if out.dim() != 3:
        raise ShapeError(f"model output must be [T, B, classes] or [B, classes], got shape {tuple(out.shape)}")
    if mode == "mean":
        return out.mean(0)
    if mode == "sum":
        return out.sum(0)
    if mode == "summed-softmax":
        return torch.softmax(out, dim=-1).sum(0)
    if mode == "last":
        return out[-1]
    raise ShapeError(f"unknown readout {mode!r}")


class FiringRateMonitor:
    """Mean firing rate per spiking layer: spikes per neuron per time step, averaged over everything seen.

    The spiking layers are those of role ``neuron`` in the layer protocol (:func:`spiking_layers`; an
    undeclared layer raises ``UnknownLayerError``). Forward hooks count each one's events: its nonzero
    outputs (binary spikes, or graded ones such as ``QCFSNeuron``'s spike·λ); the running sums stay
    as tensors so that monitoring costs no device synchronisation per batch.
    """

    def __init__(self, model: torch.nn.Module):
        self.layers = spiking_layers(model)
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            spikes = output[0] if isinstance(output, tuple) else output
            total = (spikes.detach() != 0).float().sum()
            self.sums[name] = self.sums[name] + total if name in self.sums else total
            self.counts[name] = self.counts.get(name, 0) + spikes.numel()

        return hook

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()

    def rates(self) -> dict[str, float]:
        return {name: float(self.sums[name]) / self.counts[name] for name in self.sums}

    def mean_rate(self) -> float | None:
        """Firing rate over all spiking neurons together (spikes / (neurons · steps))."""
        if not self.counts:
            return None
        return float(sum(float(s) for s in self.sums.values())) / sum(self.counts.values())

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def per_class_accuracy(confusion: torch.Tensor) -> list[float | None]:
    """Recall per class from a confusion matrix ``[true, predicted]`` (None for a class never seen)."""
    totals = confusion.sum(1)
    return [float(confusion[c, c] / totals[c]) if totals[c] > 0 else None for c in range(confusion.shape[0])]


class MetricsLog:
    """Append-only JSON-lines file: one object per line, flushed and fsynced per record."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def truncate_after(self, epoch: int) -> None:
        """Drop records of epochs after ``epoch`` (written by a run that stopped before checkpointing them)."""
        if not self.enabled or not self.path.exists():
            return
        keep = [r for r in read_jsonl(self.path) if r.get("epoch", -1) <= epoch and r.get("event") != "final"]
        atomic_write_bytes(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep).encode("utf-8"), fsync=True)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON through a temporary file and ``os.replace`` (never half-written)."""
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode("utf-8"))


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a metrics file; a last line cut off by a crash is ignored."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def fmt_rates(rates: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in rates.items())


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
