# %% [markdown]
# # Learned delays on SHD (DCLS)
#
# In a spiking network the *time* at which a spike arrives carries information. Hammouamri, Khalfaoui-Hassani
# and Masquelier ("Learning Delays in Spiking Neural Networks using Dilated Convolutions with Learnable
# Spacings", ICLR 2024) learn one delay per synapse together with its weight and reach state-of-the-art
# accuracy on the Spiking Heidelberg Digits (SHD). neuromorph implements their method as
# `nm.nn.DelayedLinear` and their training recipe as the `shd` recipe. This tutorial shows how a delay is
# made differentiable, the σ schedule that turns soft delays into sharp ones, the rounding to integer delays
# that evaluation and hardware use, and the export.
#
# **Data.** SHD (Cramer et al., IEEE TNNLS 2022): spoken digits (English and German, 20 classes) converted
# to spikes of 700 cochlea channels. Download `shd_train.h5.gz` and `shd_test.h5.gz` from
# <https://zenkelab.org/datasets/>, unzip them into `DATA/shd/` and set `NEUROMORPH_DATA=DATA`. Any folder
# holding `*_train.h5` and `*_test.h5` in SHD's HDF5 layout works (`DATA/shd/`, else `DATA/shd_fsdd/`).
# The outputs below were computed on such a file that is **not** SHD: the Free Spoken Digit Dataset
# (10 English digits, 6 speakers) run through SHD's cochlea model; its accuracies are not comparable with
# published SHD results. Without `NEUROMORPH_DATA`, the tutorial writes a small synthetic file in SHD's
# layout whose classes differ only in the order in which channel groups fire, a task that delays solve.

# %%
import os
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch

import neuromorph as nm
from neuromorph.nn.delays import delayed_layers
from neuromorph.train import fit, load_model, resolve_recipe

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode: tiny data, 1 epoch
OUT = Path(os.environ.get("NEUROMORPH_TUTORIAL_OUT", "runs/tutorials")) / "03_shd"
DATA = os.environ.get("NEUROMORPH_DATA")
_ = torch.manual_seed(0)


def write_sequence_task(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """A small SHD-layout data set: 4 classes; each sample fires three groups of channels, 150 ms apart, in
    an order that depends on the class (the groups and their spike counts are the same for every class)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    orders = [(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1)]
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, len(orders), n)
        with h5py.File(folder / f"seq_{split}.h5", "w") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            for k, label in enumerate(labels):
                t, u = [], []
                for slot, group in enumerate(orders[label]):
                    ch = rng.integers(group * 200 + 50, group * 200 + 150, 60)
                    t.append(0.05 + 0.15 * slot + rng.normal(0, 0.01, 60))
                    u.append(ch)
                t, u = np.concatenate(t).clip(0, 0.6), np.concatenate(u)
                order = np.argsort(t)
                times[k], units[k] = t[order].astype(np.float32), u[order].astype(np.uint16)
            f["labels"] = labels.astype(np.uint8)
    return folder


if DATA and (Path(DATA) / "shd").is_dir():
    root = Path(DATA) / "shd"
elif DATA and (Path(DATA) / "shd_fsdd").is_dir():
    root = Path(DATA) / "shd_fsdd"
else:
    print("NEUROMORPH_DATA is not set (or holds no shd/ folder): writing a synthetic SHD-layout task")
    root = write_sequence_task(OUT / "data")
print("data files:", sorted(p.name for p in root.glob("*.h5")))

# %% [markdown]
# ## A delay you can differentiate
#
# `DelayedLinear(in, out, max_delay)` is a fully connected layer in which every synapse i→j has a weight
# w_ji and a real-valued delay. The layer is a convolution over time whose kernel for (j, i) holds a single
# tap at that delay, spread into a normalised Gaussian of width σ so that the position has a gradient:
#
# g_ji[n] = exp(−½ ((n − c_ji) / σ_eff)²), σ_eff = |σ| + 0.27, and the taps k_ji[n] = w_ji g_ji[n] / Σ_m g_ji[m]
# sum to w_ji.
#
# Delays span 0 … K−1 steps (K = `max_delay` made odd). The output is ⌊(K−1)/2⌋ steps longer than the input,
# so that late spikes still reach the next layer. Below: the taps of three synapses, with a wide σ at the
# start of training and with the final σ.

# %%
layer = nm.nn.DelayedLinear(4, 3, max_delay=25)
with torch.no_grad():
    layer.set_delays(torch.tensor([[3.0, 0, 0, 0], [11.4, 0, 0, 0], [20.0, 0, 0, 0]]))
    layer.weight.fill_(1.0)
fig, axes = plt.subplots(1, 2, figsize=(8, 2.4), sharey=True)
for ax, sigma in zip(axes, (12.0, 0.23)):
    layer.set_sigma(sigma)
    taps = layer.taps().detach()  # [K, in, out]: the weight with which x_i[t − d] reaches y_j[t]
    for j in range(3):
        ax.plot(taps[:, 0, j], "o-", ms=3, label=f"delay {layer.delays()[j, 0]:.1f}")
    ax.set_title(f"σ = {sigma}", fontsize=9)
    ax.set_xlabel("delay (steps)")
axes[0].set_ylabel("tap weight")
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## The σ schedule
#
# Training starts with wide Gaussians, σ = ⌊K/2⌋, so that every delay receives gradient from far away, and
# shrinks σ by a constant factor at the end of each epoch until σ = 0.23 (σ_eff = 0.5) at a quarter of the
# epochs; from then on each synapse has essentially one tap. `SigmaSchedule.for_training(K, epochs)` is the
# schedule of the paper's code; the `shd` recipe applies it.

# %%
from neuromorph.nn import SigmaSchedule

epochs_paper = 150
schedule = SigmaSchedule.for_training(25, epochs_paper)
plt.figure(figsize=(6, 2.4))
plt.plot([schedule(e) for e in range(epochs_paper + 1)])
plt.xlabel("epochs done")
plt.ylabel("σ")
plt.title(f"σ from {schedule.sigma_init} to {schedule.sigma_final} by epoch {schedule.final_epoch}, ×{schedule.alpha:.3f} per epoch",
          fontsize=9)
plt.show()

# %% [markdown]
# ## The recipe
#
# The `shd` recipe is that of the paper's code: 10 ms count bins of the 700 channels summed in groups of 5
# (140 inputs), two hidden layers of 256 LIF neurons behind `DelayedLinear` layers with delays up to 250 ms
# (25 steps), BatchNorm and dropout, a non-spiking `LI` readout scored by the *summed softmax* over time; two
# Adam optimisers, one for the weights (OneCycle schedule) and one for the delay positions (lr 0.1, cosine);
# σ shrinking every epoch; evaluation with the delays rounded to integers. The paper trains 150 epochs; the
# run below is short (a few minutes on a laptop CPU) and shows the pipeline rather than the paper's accuracy.
# The same from the shell: `neuromorph train shd --data-root DATA/shd --epochs 8`.

# %%
recipe = resolve_recipe("shd", data_root=str(root))
if QUICK:
    recipe = recipe.replace(epochs=1, train_limit=48, test_limit=24, batch_size=16)
else:
    recipe = recipe.replace(epochs=8, train_limit=1000, batch_size=64)
summary = fit(recipe, OUT / "run", overwrite=True, progress=False)
print(f"test accuracy {summary['test_accuracy']:.3f} with integer delays on {summary['n_test']} test samples "
      f"({summary['n_train']} training samples, {summary['epochs_completed']} epochs, {summary['wall_time_s']:.0f} s)")

# %% [markdown]
# ## Integer delays
#
# Hardware delays are whole time steps. `layer.integer_delays()` gives the delays `round_delays()` would set
# (σ = 0, one tap per synapse of weight w_ji); `with nm.nn.rounded_delays(model):` evaluates with them and
# restores the real-valued ones afterwards. The recipe evaluates this way, so the accuracy above is that of
# the integer network. The histograms show where the trained delays ended.

# %%
model, info = load_model(OUT / "run" / "best.pt")
layers = delayed_layers(model)
fig, axes = plt.subplots(1, len(layers), figsize=(3 * len(layers), 2.4), sharey=True)
for i, (ax, dl) in enumerate(zip(axes, layers)):
    d = dl.integer_delays().flatten()
    ax.bar(range(dl.kernel_size), torch.bincount(d, minlength=dl.kernel_size))
    ax.set_title(f"layer {i}: mean delay {d.float().mean():.1f} steps", fontsize=9)
    ax.set_xlabel("delay (10 ms steps)")
axes[0].set_ylabel("synapses")
plt.show()
real = layers[0].delays()
print("first synapses, real-valued delays:", [round(v, 2) for v in real.flatten()[:6].tolist()])
print("                   integer delays: ", layers[0].integer_delays().flatten()[:6].tolist())

# %% [markdown]
# ## Export
#
# The export writes the model in the form it is evaluated in: the integer delays. In NIR each delayed layer
# becomes `Delay → Linear` branches (NIR's own delay node, which only neuromorph's `from_nir` runs among the libraries
# compared in tutorial 7); the Lava/Loihi netx file stores them as the layer's
# `delay` table, and the Loihi 2 check verifies that the delays fit the hardware's range.

# %%
from neuromorph.export import export_checkpoint

for to, out in (("nir", OUT / "model.nir"), ("lava", OUT / "model.net.h5")):
    res = export_checkpoint(OUT / "run" / "best.pt", to=to, out=out, check="loihi2")
    print(f"{to}: written={res.written}, Loihi 2 check {'passed' if res.check.ok else 'FAILED'}")
    for note in res.notes:
        print("   note:", note)
delay_rows = [r for r in res.check.rows if "delay" in r["check"]]
print("\n".join(f"{r['layer']}: {r['check']} {r['value']} (limit {r['limit']})" for r in delay_rows))
