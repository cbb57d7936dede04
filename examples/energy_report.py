"""Energy report of a small spiking network: spikes, synaptic operations and energy per layer.

Counts are exact (each spike times the fan-out of its synapses, borders included); energies use the
hardware profiles in hardware/*.toml (every constant with its source). Run:

    python examples/energy_report.py            # prints the table, writes energy.png and energy.json

For a trained checkpoint use the command line instead:

    neuromorph energy runs/nmnist/best.pt --hardware loihi,cmos45nm --allow-missing --plot energy.png
"""

import torch

import neuromorph.energy as ne
import neuromorph.nn as snn

torch.manual_seed(0)
model = torch.nn.Sequential(
    snn.Conv2d(2, 8, 3, stride=2, padding=1), snn.BatchNorm2d(8), snn.LIF(tau=2.0),
    snn.MaxPool2d(2), snn.Flatten(),
    snn.Linear(8 * 8 * 8, 64), snn.LIF(tau=2.0), snn.SpikeMask(0.5, seed=0),
    snn.Linear(64, 10), snn.LI(tau=2.0),
).eval()

events = (torch.rand(10, 4, 2, 32, 32) < 0.05).float()  # [T, B, C, H, W] binary event frames
report = ne.measure(model, events, hardware="loihi,cmos45nm,cmos45nm:int8")
print(report.table())
report.plot("energy.png")
report.to_json("energy.json")
print("known hardware profiles:", ", ".join(ne.list_profiles()))
