"""Energy report of a small spiking network: spikes, synaptic operations and energy per layer.

Counts are exact (each spike times the fan-out of its synapses, borders included); energies use the
hardware profiles in hardware/*.toml (every constant with its source). On Loihi a neuron update costs
81 pJ when the neuron received input or changed state that step and 52 pJ otherwise; the report counts
both. The ANN baseline is the same network on real values at every one of the T steps. Run:

    python examples/energy_report.py            # prints the table, writes energy.png and energy.json

For a trained checkpoint use the command line instead (``--format neurobench`` prints NeuroBench's
SynapticOperations and ActivationSparsity):

    neuromorph energy runs/nmnist/best.pt --hardware loihi,cmos45nm --allow-missing --plot energy.png
"""

import json

import torch

import neuromorph.energy as ne
import neuromorph.nn as snn

torch.manual_seed(0)
model = torch.nn.Sequential(
    snn.Conv2d(2, 8, 3, stride=2, padding=1, bias=False), snn.BatchNorm2d(8), snn.LIF(tau=2.0, threshold=0.5, reset="hard"),
    snn.MaxPool2d(2), snn.Flatten(),
    snn.Linear(8 * 8 * 8, 64, bias=False), snn.LIF(tau=2.0, threshold=0.5, reset="hard"), snn.SpikeMask(0.5, seed=0),
    snn.Linear(64, 10, bias=False), snn.LI(tau=2.0),
).eval()
# Stand-in for training: at PyTorch's default initialisation this untrained network hardly fires, so the
# synaptic weights are scaled up until every hidden layer spikes (a report of a silent network would show
# neuron updates only).
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.weight.mul_(4.0)

events = (torch.rand(10, 4, 2, 32, 32) < 0.05).float()  # [T, B, C, H, W] binary event frames
report = ne.measure(model, events, hardware="loihi,cmos45nm,cmos45nm:int8")
print(report.table())
hidden = [layer for layer in report.layers if layer.kind == "LIF"]
assert all(layer.spikes_out > 0 for layer in hidden), "a hidden layer is silent"
print("hidden firing rates:", ", ".join(f"{layer.name}: {layer.rate:.3f}" for layer in hidden))
print("NeuroBench view:", json.dumps({k: report.neurobench()[k] for k in ("SynapticOperations", "ActivationSparsity")}))
report.plot("energy.png")
report.to_json("energy.json")
print("known hardware profiles:", ", ".join(ne.list_profiles()))
