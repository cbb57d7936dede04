"""Export a small spiking conv net to NIR and to Loihi (lava-dl netx HDF5), check it against the Loihi 2
profile, run the exported integer network in the bit-accurate simulator and compare it with the float model.

    python examples/export_loihi.py            # writes model.nir and model.net.h5 in the current folder

For a trained checkpoint use the command line instead:

    neuromorph export runs/nmnist/best.pt --to lava --check loihi2 --json

To run the same file in Lava itself (separate environment): hardware/lava/README.md.
"""

import nir
import torch

import neuromorph.export as nx
import neuromorph.nn as snn

torch.manual_seed(0)
# Loihi resets v to 0 after a spike, so hardware-bound models use reset="hard"; pooling must be sum/average
model = torch.nn.Sequential(
    snn.Conv2d(2, 8, 3, padding=1, bias=False), snn.BatchNorm2d(8), snn.LIF(tau=2.0, threshold=0.5, reset="hard"),
    snn.AvgPool2d(2), snn.Flatten(),
    snn.Linear(8 * 16 * 16, 10, bias=False), snn.LIF(tau=2.0, threshold=0.3, reset="hard"),
).eval()
with torch.no_grad():
    model[0].weight.mul_(3.0)
    model[5].weight.mul_(8.0)

events = (torch.rand(20, 4, 2, 32, 32) < 0.1).float()  # [T, B, C, H, W] spike counts per step

graph = nx.to_nir(model, events)  # BatchNorm folded into the conv; time constants in seconds (dt in metadata)
nx.write_nir(graph, "model.nir")
again = nx.from_nir(nir.read("model.nir"))
with torch.no_grad():
    print("NIR round trip identical:", torch.equal(again(events), model(events)))

print(nx.check_model(model, events, "loihi2").table())
path = nx.to_lava(model, "model.net.h5", events)  # 8-bit weight mantissas, 4096-scale decays, pooling folded
report = nx.fidelity_report(model, path, events)
for row in report.layers:
    print(f"{row['layer']}: float/quantized spike match {row['match_rate']:.4f} "
          f"({row['spikes_float']} vs {row['spikes_quantized']} spikes)")
