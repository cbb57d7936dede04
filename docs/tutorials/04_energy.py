# %% [markdown]
# # Counting spikes and energy
#
# "SNNs are energy-efficient" is a claim about counts: how many synaptic operations, multiply-accumulates and
# neuron updates a network performs, priced by what one of each costs on some hardware. neuromorph's energy
# report makes every one of those numbers explicit: it counts them exactly, per layer, prices them with
# hardware profiles whose every constant cites its source, compares with the same network run as an ANN, and
# says what it does not model. This tutorial reads a report column by column and then walks through the
# pitfalls that make published SNN energy numbers hard to compare.

# %%
import os

import matplotlib.pyplot as plt
import torch

import neuromorph as nm
import neuromorph.energy as ne
import neuromorph.nn as snn
from neuromorph.train import resolve_recipe
from neuromorph.train.data import load_split

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode
_ = torch.manual_seed(0)

# %% [markdown]
# ## A network and real event input
#
# The input is real event data: test samples of `digits-dvs`, the data set embedded in neuromorph (N-MNIST-style
# 34×34 event streams, center-cropped to 32×32 and binned into 8 frames of event counts). The network is a
# small convolutional SNN. Untrained, at PyTorch's default initialisation it would hardly fire, so its weights
# are scaled up until every layer spikes; for a trained model use `neuromorph energy runs/.../best.pt`, which
# prints the same report.

# %%
recipe = resolve_recipe("digits-dvs")
test = load_split(recipe, "test")
n = 16 if QUICK else 128
events, labels = test.batch(torch.arange(n))  # [T, B, 2, 32, 32] event counts per bin
print("input", tuple(events.shape), f"| {float((events > 0).float().mean()):.3f} of the entries are nonzero, "
      f"max count {int(events.max())}")

model = torch.nn.Sequential(
    snn.Conv2d(2, 8, 3, stride=2, padding=1, bias=False), snn.BatchNorm2d(8), snn.LIF(tau=2.0, threshold=0.5, reset="hard"),
    snn.MaxPool2d(2), snn.Flatten(),
    snn.Linear(8 * 8 * 8, 64, bias=False), snn.LIF(tau=2.0, threshold=0.5, reset="hard"),
    snn.Linear(64, 10, bias=False), snn.LI(tau=2.0),
).eval()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.weight.mul_(4.0)

# %% [markdown]
# ## The report
#
# `ne.measure(model, inputs, hardware=...)` runs the model under forward hooks (eval mode, no gradients) and
# returns an `EnergyReport`. Every count is per inference: one sample, all T steps.
#
# | column | meaning |
# |---|---|
# | `input` | what the layer received: `spikes` (binary), `counts` (event counts, integers above 1 too) or `real` values |
# | `spikes` | spikes a neuron layer emitted (a synaptic layer: spikes it received) |
# | `rate` | spikes per neuron per step |
# | `synops` | synaptic operations: each input spike times the exact fan-out of its nonzero synapses, borders included; an event count c counts as c spikes |
# | `MACs` | multiply-accumulates of a layer fed real values (dense: every position, every step) |
# | `ACs` | accumulates of pooling windows |
# | `updates` | neuron updates: one per neuron per step |
# | `active` | the updates in which the neuron received input or changed state (the rest are inactive) |
# | `E[profile] pJ` | the layer's energy on each hardware profile |

# %%
report = ne.measure(model, events, hardware="loihi,cmos45nm,cmos45nm:int8")
print(report.table())

# %% [markdown]
# The `MaxPool2d` row: a max pooling of spikes becomes a *gate* layer on Loihi (one IF neuron per pooled
# output, as in the exported netx file), so its neuron updates are listed and charged on the profiles that
# price neuron updates that way (Loihi) and not on the others. The plot shows the same per layer.

# %%
totals = report.totals()
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
names = [layer.name for layer in report.layers]
axes[0].bar(names, [layer.synops / report.samples for layer in report.layers])
axes[0].set_title("synaptic operations per inference", fontsize=9)
for label, values in report.energy_pj.items():
    axes[1].plot(names, [v or 0 for v in values], "o-", label=label)
axes[1].set_yscale("symlog")
axes[1].set_title("energy per inference (pJ)", fontsize=9)
axes[1].legend(fontsize=7)
for ax in axes:
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
plt.show()

# %% [markdown]
# ## Hardware profiles and their sources
#
# A profile is a TOML file in neuromorph's `hardware/` folder: per-operation energies, each with the
# publication it comes from and whether it was checked against that publication, plus the hardware limits the
# export checks. Loihi 1's energies are Davies et al. 2018 (IEEE Micro, Table 2); 45 nm CMOS is Horowitz
# (ISSCC 2014); Intel has published no per-operation energies for Loihi 2, so that profile has none and its
# energies read "n/a" rather than a borrowed number. Your own profile is a TOML file passed by path.

# %%
print("profiles:", ", ".join(ne.list_profiles()))
for name in ("loihi", "cmos45nm"):
    profile = ne.load_profile(name)
    print(f"\n{profile.label}: {profile.description}")
    for op in profile.ops:
        for src in profile.energy_sources(op):
            print(f"  {op:24s} {src['value_pj']:>7} pJ  ({src['constant']}) {src['source'][:90]}")
loihi2 = ne.measure(model, events[:, :4], hardware="loihi2", allow_missing=True)
print("\nloihi2 energy per inference:", loihi2.to_dict()["energy_pj_per_inference"])
print("why:", loihi2.missing["loihi2"][0].split("): ", 1)[-1])

# %% [markdown]
# ## SNN versus ANN
#
# The ANN baseline is the same layers on real values at each of the T steps, as a GRU or a 1-D CNN that sees
# the same sequence would run; its MACs are priced on the same profile when that profile has a MAC (45 nm
# CMOS, fp32 or int8), else on `ann_hardware` (default fp32 45 nm CMOS: Loihi has no MAC). For a static image
# that an ANN would see once, divide the ANN's cost by T: the report gives `ann_macs_per_step` for that.

# %%
for label in report.energy_pj:
    ann, ann_on = report.ann_energy_for(label)
    print(f"{label:14s} SNN {report.total_energy_pj(label) / 1e6:8.3f} µJ | ANN ({ann_on}) {ann / 1e6:8.3f} µJ | "
          f"ratio SNN/ANN {report.ratio(label):.3f}")
print(f"ANN MACs per inference {totals['ann_macs']:.3g} over T={report.time_steps} steps; "
      f"per step {totals['ann_macs_per_step']:.3g} (the static-image ANN)")

# %% [markdown]
# ## NeuroBench's metrics
#
# `report.neurobench()` (and `neuromorph energy --format neurobench`) gives NeuroBench's `SynapticOperations`
# (`Effective_MACs`, `Effective_ACs`, `Dense`) and `ActivationSparsity` computed with NeuroBench's rules, equal
# to what NeuroBench 2.3 reports for the same model and inputs. Where its rules differ from the report's
# (event counts above 1 are one nonzero input to NeuroBench; pooling is not counted by it), `differences`
# says by how much.

# %%
nb = report.neurobench()
print("SynapticOperations:", {k: round(v) for k, v in nb["SynapticOperations"].items()})
print("ActivationSparsity:", round(nb["ActivationSparsity"], 4))
print("differences:", {k: v for k, v in nb["differences"].items() if k != "explanation"})

# %% [markdown]
# ## Pitfalls
#
# **1. The first layer.** Event data are spikes, but many pipelines feed the first layer real values
# (normalised frames, an analog encoding). That layer then does dense MACs, not synops, and on Loihi it has
# to run off-chip: the Loihi profile has no MAC, and the report refuses to invent one (`allow_missing=True`
# leaves the layer unpriced and says so). Here is the same network fed the frames scaled to [0, 1]:

# %%
real_input = events / events.amax().clamp(min=1)
real_report = ne.measure(model, real_input, hardware="loihi,cmos45nm", allow_missing=True)
first = real_report.layers[0]
print(f"first layer on real input: {first.macs / real_report.samples:.3g} MACs, {first.synops / real_report.samples:.3g} synops")
print("Loihi:", real_report.missing["loihi"][0].split("): ", 1)[-1])
print(f"45 nm CMOS fp32: SNN/ANN ratio {real_report.ratio('cmos45nm:fp32'):.3f} (with event input {report.ratio('cmos45nm:fp32'):.3f})")

# %% [markdown]
# **2. Neuron updates.** On Loihi every neuron is updated at every step, whether it fires or not: an active
# update costs 81 pJ and an inactive one 52 pJ, against 23.6 pJ per synaptic operation. The sparser the
# activity, the larger the share of neuron updates in the bill, which a synops-only count hides. Note also
# that a Loihi synaptic operation (a whole spike delivery on a 14 nm chip) costs far more than the bare 45 nm
# adder that the CMOS profile charges, so the same network can be cheaper than the ANN on one profile and
# dearer on the other, as in the ratios above. The split on Loihi for this network:

# %%
loihi = ne.load_profile("loihi")
synop_pj = totals["synops"] * loihi.energy_pj("synop")
pool_pj = totals["acs"] * loihi.energy_pj("ac")
update_pj = report.total_energy_pj("loihi") - synop_pj - pool_pj
print(f"Loihi, per inference: synops {synop_pj / 1e6:.3f} µJ, pooling {pool_pj / 1e6:.3f} µJ, neuron updates (with the "
      f"max-pool gates) {update_pj / 1e6:.3f} µJ = {update_pj / report.total_energy_pj('loihi'):.0%} of the total; "
      f"{totals['active_updates'] / totals['neuron_updates']:.0%} of the updates are active")

# %% [markdown]
# **3. What is not modelled.** The report counts operations. It does not model memory traffic (reading weights
# and state from SRAM or DRAM, often the largest cost of a dense accelerator and the reason an ANN's MAC
# energy alone flatters it less than it seems), spike routing between cores beyond what the profile prices,
# static/leakage power, or the host that feeds the chip. Compare SNN and ANN numbers only under the same
# assumptions, and report them with the profile and the conventions (`report.to_json()` writes both).
#
# **4. Counts, not spikes.** Binned event frames hold counts; an entry of 3 is three spikes (three synops per
# synapse), not one. NeuroBench counts it as one nonzero input. Neither is wrong; say which you use.
#
# The same report from the shell, for a checkpoint: `neuromorph energy runs/digits/best.pt --hardware
# loihi,cmos45nm` (add `--format neurobench` for NeuroBench's names, `--plot energy.png` for the figure).
