"""``measure(model, inputs, hardware=...)``: run a model under an :class:`EnergyMonitor` and report.

Counting conventions: :mod:`neuromorph.energy.counters`; energy model: :mod:`neuromorph.energy.report`
(per inference, per hardware profile).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch

from neuromorph.energy.monitor import EnergyMonitor
from neuromorph.energy.report import EnergyReport
from neuromorph.errors import ConfigError, NonFiniteError, ShapeError
from neuromorph.hardware_profile import HardwareProfile, load_profile
from neuromorph.nn.protocol import eval_for

__all__ = ["measure", "parse_hardware"]


def parse_hardware(hardware: str | HardwareProfile | Sequence[str | HardwareProfile]) -> list[HardwareProfile]:
    """Profiles from ``"loihi,cmos45nm"``, a list of names/paths/profiles, or one profile."""
    if isinstance(hardware, (str, HardwareProfile)):
        items: list[Any] = [h.strip() for h in hardware.split(",")] if isinstance(hardware, str) else [hardware]
    else:
        items = list(hardware)
    items = [h for h in items if not (isinstance(h, str) and not h)]
    if not items:
        raise ConfigError("hardware: give at least one profile name (see neuromorph.energy.list_profiles())")
    return [load_profile(h) for h in items]


def _batches(inputs: Any) -> Iterable[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        yield inputs
        return
    for item in inputs:
        x = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(x, torch.Tensor):
            raise ShapeError(f"inputs: expected tensors [T, B, ...] or (x, y) pairs, got {type(x).__name__}")
        yield x


@torch.no_grad()
def measure(
    model: torch.nn.Module,
    inputs: torch.Tensor | Iterable[Any],
    hardware: str | HardwareProfile | Sequence[str | HardwareProfile] = "cmos45nm",
    ann_hardware: str | HardwareProfile | None = "cmos45nm",
    max_batches: int | None = None,
    skip_zeros: bool = False,
    allow_missing: bool = False,
    counts_as_spikes: bool = True,
) -> EnergyReport:
    """Count spikes, synops, MACs and neuron updates per layer of ``model`` on ``inputs`` and cost them.

    Args:
        model: the network; it is run in eval mode (inference: dropout off, BatchNorm running statistics;
            a model left in training mode is switched with a warning and restored afterwards, as
            ``to_nir`` does) under ``torch.no_grad`` with forward hooks that are removed afterwards.
        inputs: one time-major tensor ``[T, B, ...]``, or an iterable of them / of ``(x, y)`` pairs
            (e.g. a DataLoader); counts are summed and reported per inference (per sample).
        hardware: profile name(s) (``"loihi,cmos45nm"``, ``"cmos45nm:int8"``), ``.toml`` path(s) or
            :class:`HardwareProfile` objects.
        ann_hardware: profile whose ``mac`` energy prices the ANN equivalent (the same layers on real
            values at each of the T steps); ``None`` skips it.
        max_batches: stop after this many batches of an iterable.
        skip_zeros: charge layers fed real values MACs only for nonzero inputs (delta / event-driven
            hardware); default dense MACs at every position and step.
        counts_as_spikes: non-negative integer inputs (binned event counts) cost one synop per event
            per synapse instead of dense MACs; turn off for integer-valued analog input (raw pixels).
        allow_missing: instead of raising for a profile that lacks an energy the model needs, leave
            those layers out of that profile's total and list them in ``report.missing``.

    Returns an :class:`EnergyReport` (``table()``, ``to_json()``, ``plot(path)``). Raises ``ConfigError``
    for an unknown profile (listing the known ones), a profile missing an energy the model needs (naming
    it and the layer), or layers the counter does not understand (naming them).

    Example:
        >>> import torch
        >>> import neuromorph as nm
        >>> net = torch.nn.Sequential(nm.nn.Linear(4, 3, bias=False), nm.nn.LIF(tau=2.0, threshold=1.0))
        >>> _ = torch.nn.init.constant_(net[0].weight, 0.5)
        >>> report = nm.energy.measure(net, torch.ones(10, 1, 4), hardware="loihi")
        >>> report.layers[0].synops, report.layers[1].spikes_out  # 4 spikes x 3 synapses x 10 steps
        (120.0, 27.0)
        >>> round(report.total_energy_pj("loihi"), 1)  # 120 x 23.6 + 30 active updates x 81 + 27 x 1.7 pJ
        5307.9
    """
    profiles = parse_hardware(hardware)
    ann_profile = load_profile(ann_hardware) if ann_hardware is not None else None
    monitor = EnergyMonitor(model, skip_zeros=skip_zeros, counts_as_spikes=counts_as_spikes)
    samples = 0
    time_steps = 0
    with eval_for(model, "energy.measure"), monitor:
        for i, x in enumerate(_batches(inputs)):
            if max_batches is not None and i >= max_batches:
                break
            if x.dim() < 2:
                raise ShapeError(f"inputs: expected a time-major tensor [T, B, ...], got shape {tuple(x.shape)}")
            if x.is_floating_point() and not bool(torch.isfinite(x).all()):
                raise NonFiniteError("inputs contain NaN or Inf; operation counts would be meaningless")
            monitor.time_steps, monitor.batch_size = int(x.shape[0]), int(x.shape[1])
            monitor.input_storages = {x.untyped_storage().data_ptr()}
            monitor.pooled_counts.clear()  # storages of the previous batch may be reused by other tensors
            model(x)
            samples += int(x.shape[1])
            time_steps = max(time_steps, int(x.shape[0]))
    if samples == 0:
        raise ShapeError("inputs: no batch was given")
    monitor.check()
    for rec in monitor.layers:
        rec.samples = samples
        rec.steps = time_steps
        # the ANN sees the same sequence as the SNN: its layers run at every step (like with like)
        rec.ann_macs_per_sample = rec.dense_macs / samples
    return EnergyReport.build(monitor.layers, samples, time_steps, profiles, ann_profile, allow_missing=allow_missing)
