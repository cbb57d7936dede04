# %% [markdown]
# # From N-MNIST to Loihi
#
# The whole path of a spiking model in neuromorph: read event-camera recordings, train a convolutional SNN,
# evaluate it, look at its spikes and its confusion matrix, export it to NIR and to a Lava/Loihi netx file,
# read the hardware constraint report, and run the exported integer network in neuromorph's bit-accurate
# Loihi simulator.
#
# **Data.** N-MNIST (Orchard et al., "Converting static image datasets to spiking neuromorphic datasets using
# saccades", Front. Neurosci. 2015) is MNIST recorded by an ATIS event camera that makes three saccades in
# front of each digit: 34×34 pixels, two polarities, about 300 ms per sample. Download it from the authors'
# page (<https://www.garrickorchard.com/datasets/n-mnist>), unpack `Train.zip` and `Test.zip` into a folder
# `DATA/nmnist/` (so that `DATA/nmnist/Train/<label>/<id>.bin` exist) and set `NEUROMORPH_DATA=DATA`.
# Any subset keeping that layout works; the outputs below come from a 1,000-sample training subset
# (N-MNIST training samples 1–1,000) and the first 100 test samples.
#
# Without `NEUROMORPH_DATA` the tutorial uses `digits-dvs`, the data set embedded in neuromorph (scikit-learn's
# 8×8 digits moved through N-MNIST's three saccades in front of neuromorph's DVS emulator; generated on first
# use, no download). Everything else is the same.

# %%
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import neuromorph as nm
from neuromorph.train import evaluate_checkpoint, fit, load_model, resolve_recipe

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode: tiny data, 1 epoch
OUT = Path(os.environ.get("NEUROMORPH_TUTORIAL_OUT", "runs/tutorials")) / "02_nmnist"
DATA = os.environ.get("NEUROMORPH_DATA")
_ = torch.manual_seed(0)

if DATA:
    root = Path(DATA) / "nmnist"
    recipe = resolve_recipe("nmnist", data_root=str(root))
else:
    print("NEUROMORPH_DATA is not set: using the embedded digits-dvs data set")
    recipe = resolve_recipe("digits-dvs")
# a shorter run than the recipe's (30 epochs for nmnist), to keep this page minutes long on a laptop CPU
recipe = recipe.replace(epochs=1, train_limit=100, test_limit=40) if QUICK else recipe.replace(epochs=12)
print(json.dumps({k: v for k, v in recipe.to_dict().items() if k not in ("data_root",)}, indent=None))

# %% [markdown]
# ## One recording
#
# An event is `(x, y, t, p)`: a pixel, a time in microseconds and a polarity (ON brighter, OFF darker).
# `nm.data.read_nmnist` reads N-MNIST's 40-bit ATIS files into a structured NumPy array; `nm.data.DigitsDVS`
# gives the embedded set in the same dtype. Binned into frames, the three saccades show up as three views of
# the digit.

# %%
from neuromorph.data import ToFrame

if DATA:
    sample_file = sorted((root / "Train" / "3").glob("*.bin"))[0]
    events = nm.data.read_nmnist(sample_file)
    label = 3
else:
    events, label = nm.data.DigitsDVS(split="train")[0]
print(f"{len(events)} events of digit {label}; fields {events.dtype.names}; t from {events['t'][0]} to {events['t'][-1]} µs")
frames = ToFrame(sensor_size=(34, 34, 2), n_time_bins=3)(events)  # [T, P, H, W] counts
fig, axes = plt.subplots(1, 3, figsize=(7, 2.4))
for k, ax in enumerate(axes):
    ax.imshow(frames[k, 1].astype(float) - frames[k, 0], cmap="coolwarm", vmin=-3, vmax=3)
    ax.set_title(f"saccade {k + 1}: ON − OFF", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Train
#
# A *recipe* fixes everything a run depends on: the data set and its binning (here `n_time_bins` frames per
# sample), the model builder and its arguments (`NMNISTConvSNN`: conv–BatchNorm–LIF–pooling blocks, then a
# linear readout), optimiser, schedule, readout, epochs, batch size and seed. `fit` trains it and writes
# `best.pt`, `last.pt`, `metrics.jsonl` and `summary.json` into the run folder; the checkpoint stores the recipe,
# so it can be evaluated, resumed or exported without any other input. The same run from the shell is
# `neuromorph train nmnist --data-root DATA/nmnist --epochs 12`.
#
# The training split is the subset's Train folder; N-MNIST has no validation split, and the `nmnist` recipe
# keeps the last epoch (`val_fraction=0`) instead of selecting on a few held-out samples. The test split is
# evaluated once, at the end.

# %%
summary = fit(recipe, OUT, overwrite=True, progress=False)
print(f"test accuracy {summary['test_accuracy']:.3f} on {summary['n_test']} test samples "
      f"({summary['n_train']} training samples, {summary['epochs_completed']} epochs, {summary['wall_time_s']:.0f} s)")

records = [json.loads(line) for line in (OUT / "metrics.jsonl").read_text().splitlines()]
epochs = [r for r in records if "train_loss" in r]
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot([r["epoch"] for r in epochs], [r["train_loss"] for r in epochs], "o-", label="train loss")
ax2 = ax.twinx()
ax2.plot([r["epoch"] for r in epochs], [r["train_accuracy"] for r in epochs], "s-", color="C1", label="train accuracy")
ax.set_xlabel("epoch")
ax.legend(loc="center left", fontsize=8)
ax2.legend(loc="center right", fontsize=8)
plt.show()

# %% [markdown]
# ## Evaluate: accuracy, confusion, firing rates
#
# `evaluate_checkpoint` loads a checkpoint and evaluates it on a split of the data its recipe names (the shell's
# `neuromorph eval best.pt --json` prints the same). It returns the accuracy, per-class accuracy, the confusion
# matrix (rows: true class, columns: predicted) and the mean firing rate of every spiking layer.

# %%
result = evaluate_checkpoint(OUT / "best.pt")
print(f"accuracy {result['accuracy']:.3f} on {result['n']} samples")
print("firing rate per spiking layer:", {k: round(v, 3) for k, v in result["firing_rate"].items() if v is not None})
confusion = np.array(result["confusion"])
fig, ax = plt.subplots(figsize=(4, 3.5))
im = ax.imshow(confusion, cmap="Blues")
for (i, j), n in np.ndenumerate(confusion):
    if n:
        ax.text(j, i, n, ha="center", va="center", fontsize=7, color="white" if n > confusion.max() / 2 else "black")
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_xticks(range(10))
ax.set_yticks(range(10))
plt.show()

# %% [markdown]
# ## Spikes
#
# `record_spikes` runs one sample and returns the spikes of every spiking layer (found through the layer
# protocol, so it works for your own models too). A raster per layer shows which neurons fire when. The
# model's output is the linear readout's current at every step; averaged over the steps it is the score of
# each class (the recipe's `readout="mean"`).

# %%
from neuromorph.train.data import load_split
from neuromorph.train.plots import record_spikes

model, info = load_model(OUT / "best.pt")
test = load_split(recipe, "test", info["data"]["n_steps"])
x, y = test.batch(torch.arange(len(test)))
spikes = record_spikes(model, x[:, :1])
fig, axes = plt.subplots(1, len(spikes), figsize=(3 * len(spikes), 2.5))
for ax, (name, s) in zip(axes, spikes.items()):
    flat = s.reshape(s.shape[0], -1)
    t_idx, n_idx = flat.nonzero(as_tuple=True)
    ax.scatter(t_idx, n_idx, s=2)
    ax.set_title(f"{name}: {flat.shape[1]} neurons", fontsize=8)
    ax.set_xlabel("step")
plt.show()
with torch.no_grad():
    scores = model(x[:, :1]).mean(0)[0]
print("true label", int(y[0]), "| predicted", int(scores.argmax()), "| scores", [round(v, 2) for v in scores.tolist()])

# %% [markdown]
# ## Export to NIR
#
# NIR (the Neuromorphic Intermediate Representation, Pedersen et al., Nature Communications 2024) is the
# exchange format between SNN libraries and hardware toolchains. `export_checkpoint(..., to="nir")` writes
# the model as a NIR graph: BatchNorm is folded into the convolutions, time constants are written in seconds
# (with the `dt` neuromorph assumed in the metadata; see tutorial 7), and a max pooling of spikes becomes a
# sum pooling followed by an IF "gate" neuron, which is exact for spikes. It also reports which peer
# libraries (snnTorch, Norse, SpikingJelly, Sinabs) can run the file. Shell: `neuromorph export best.pt --to nir`.

# %%
from neuromorph.export import export_checkpoint

nir_result = export_checkpoint(OUT / "best.pt", to="nir", out=OUT / "model.nir")
print("written:", nir_result.written, "| nodes:", nir_result.details["nodes"])
for note in nir_result.notes:
    print("note:", note)
for peer, verdict in nir_result.details["peers"].items():
    print(f"{peer} {verdict['installed']}: one sample at a time {verdict['per_sample']}, batched {verdict['batched']}")
    for issue in verdict["issues"]:
        print(f"    {issue['node']}: {issue['problem']}\n      -> {issue['workaround']}")

# %% [markdown]
# ## Export to Loihi and the constraint report
#
# Loihi runs integer neurons: 8-bit weight mantissas with a shared exponent per layer, decays in units of
# 1/4096, a hard reset to 0, limited fan-in and fan-out per core. `export_checkpoint(..., to="lava",
# check="loihi2")` maps the model to a lava-dl netx HDF5 file and checks it against the Loihi 2 hardware
# profile first; a failed check writes nothing and says what to change. Each row of the report is one check of
# one layer, with the value, the limit and the verdict. Shell: `neuromorph export best.pt --to lava --check loihi2`.

# %%
lava_result = export_checkpoint(OUT / "best.pt", to="lava", out=OUT / "model.net.h5", check="loihi2")
print(lava_result.check.table())
print("written:", lava_result.written)
for note in lava_result.notes:
    print("note:", note)
for layer in lava_result.details["layers"]:
    print(layer)

# %% [markdown]
# ## Run the exported file in the bit-accurate simulator
#
# `nm.export.simulate` runs a netx file in Loihi's integer arithmetic, bit for bit as Lava's fixed-point CPU
# models do (the same file runs in Lava itself; see the installation page for Lava's separate environment).
# `fidelity_report` compares it with the float model layer by layer: the fraction of (step, sample, neuron)
# entries where float and integer spikes agree, and the accuracy before and after quantization. Every synapse
# delivers one step late on Loihi, so each layer lags the one before; the report aligns them.

# %%
from neuromorph.export import fidelity_report, simulate

counts = x.round().clamp(min=0)  # the simulator takes integer spike counts per step
sim = simulate(OUT / "model.net.h5", counts.numpy().astype(np.int64))
print("simulated layers:", sim.names)
print("output spike array (hardware time):", sim.spikes[-1].shape)
report = fidelity_report(model, OUT / "model.net.h5", counts, y)
for row in report.layers:
    if row["match_rate"] is not None:  # the readout does not spike; it is judged by the accuracy below
        print(f"{row['layer']}: float/quantized spike match {row['match_rate']:.4f} "
              f"({row['spikes_float']} vs {row['spikes_quantized']} spikes)")
print(f"accuracy on {len(y)} test samples: float {report.accuracy_float:.3f}, Loihi integer simulation {report.accuracy_quantized:.3f}")

# %% [markdown]
# The same steps from the shell, for a checkpoint made by `neuromorph train`:
#
# ```bash
# neuromorph eval runs/nmnist/best.pt --json
# neuromorph export runs/nmnist/best.pt --to nir
# neuromorph export runs/nmnist/best.pt --to lava --check loihi2
# neuromorph plot runs/nmnist
# ```
#
# Next: tutorial 4 measures what this network would cost on Loihi.
