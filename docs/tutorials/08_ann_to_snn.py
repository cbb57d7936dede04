# %% [markdown]
# # From ANNs to SNNs: QCFS conversion and one-time-step Hoyer SNNs
#
# Training an SNN through time with surrogate gradients (tutorials 1–3) is one route. Two others start from
# what ANNs do well and pay for fewer time steps:
#
# 1. **Conversion.** Train an ANN whose activation already looks like a spike rate, then replace each
#    activation by an integrate-and-fire neuron. The QCFS activation (quantization-clip-floor-shift; Bu et al.,
#    ICLR 2022, as used by the Masked Spiking Transformer, Wang et al., ICCV 2023) makes the converted SNN match
#    the ANN after about L time steps, L being the number of quantisation levels.
# 2. **One time step.** Datta, Liu and Beerel ("Hoyer regularizer is all you need for ultra low-latency spiking
#    neural networks", 2022) train an SNN that runs a single time step: each neuron fires at most once, with a
#    threshold set from the *Hoyer extremum* of its layer's activations.
#
# Both are shown on scikit-learn's 8×8 handwritten digits, which ship with scikit-learn (no download).

# %%
import os

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits

import neuromorph as nm

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode
_ = torch.manual_seed(0)

digits = load_digits()
x_all = torch.tensor(digits.data, dtype=torch.float32) / 16.0  # [N, 64] in [0, 1]
y_all = torch.tensor(digits.target)
order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))
test_idx, train_idx = order[:360], order[360:]
x_train, y_train, x_test, y_test = x_all[train_idx], y_all[train_idx], x_all[test_idx], y_all[test_idx]
epochs = 2 if QUICK else 40
print(f"{len(train_idx)} training and {len(test_idx)} test images; {epochs} epochs")


def train(model, loss_extra=None, inputs=lambda x: x, readout=lambda out: out):
    """Adam, batches of 64; ``loss_extra(model)`` is added to the cross-entropy (a regulariser)."""
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y_train), generator=g).split(64):
            loss = torch.nn.functional.cross_entropy(readout(model(inputs(x_train[batch]))), y_train[batch])
            if loss_extra is not None:
                loss = loss + loss_extra(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return (readout(model(inputs(x_test))).argmax(1) == y_test).float().mean().item()

# %% [markdown]
# ## QCFS: an activation that counts spikes
#
# QCFS(x) = λ · clip(floor(x·L/λ + ½) / L, 0, 1), with L levels and a trainable λ (the clipping value). It
# is a staircase of L steps between 0 and λ. A soft-reset IF neuron fed x/λ at every step, threshold 1 and
# initial potential ½, fires exactly floor(x·L/λ + ½) times in L steps: its rate times λ *is* QCFS(x). That is
# why the conversion is exact after T = L steps for a constant input, and close for a deep network.

# %%
L = 8
act = nm.nn.QCFS(levels=L, lam=2.0)
x_line = torch.linspace(-0.5, 2.5, 301)
neuron = nm.nn.QCFSNeuron(act.lam.detach(), levels=L)
with torch.no_grad():
    rate = torch.stack([neuron(x_line) for _ in range(L)]).mean(0)  # L steps of the same input
    neuron.reset_state()
    plt.figure(figsize=(6, 2.6))
    plt.plot(x_line, torch.relu(x_line).clamp(max=2.0), ":", label="clip(ReLU)")
    plt.plot(x_line, act(x_line), label=f"QCFS, L = {L}")
    plt.plot(x_line, rate, "--", label=f"IF neuron: λ · spikes / {L} steps")
plt.xlabel("input x")
plt.legend(fontsize=8)
plt.show()
print("IF rate equals QCFS on the whole range:", torch.allclose(rate, act(x_line).detach()))

# %% [markdown]
# Train an ANN with QCFS activations (plain `torch.nn.Linear` layers: an ANN has no time axis), then
# `nm.nn.convert_to_snn` replaces every `QCFS` by a `QCFSNeuron` with the same λ. The result, a
# `ConvertedSNN`, runs T steps of the static input (`snn(x, T)`) and returns the outputs per step; their
# running mean is the prediction after t steps.

# %%
ann = torch.nn.Sequential(torch.nn.Linear(64, 128), nm.nn.QCFS(levels=L), torch.nn.Linear(128, 64), nm.nn.QCFS(levels=L),
                          torch.nn.Linear(64, 10))
ann_accuracy = train(ann)
snn = nm.nn.convert_to_snn(ann)
T = 32
with torch.no_grad():
    out = snn(x_test, T)  # [T, B, 10]
    running = out.cumsum(0) / torch.arange(1, T + 1).view(T, 1, 1)
    acc_by_t = (running.argmax(2) == y_test).float().mean(1)
print(f"ANN accuracy {ann_accuracy:.3f}; converted SNN after 1, {L // 2}, {L}, {T} steps: "
      + ", ".join(f"{acc_by_t[t - 1]:.3f}" for t in (1, L // 2, L, T)))
plt.figure(figsize=(6, 2.6))
plt.plot(range(1, T + 1), acc_by_t, "o-", ms=3, label="converted SNN")
plt.axhline(ann_accuracy, color="gray", ls=":", label="QCFS ANN")
plt.axvline(L, color="C3", ls="--", lw=0.8, label="T = L")
plt.xlabel("time steps T")
plt.ylabel("test accuracy")
plt.legend(fontsize=8)
plt.show()

# %% [markdown]
# The λ each layer learned is its neurons' firing scale (a spike carries the value λ). Spikes per neuron per
# step, averaged over the test set, is the activity that the energy report (tutorial 4) prices.

# %%
print("learned λ per QCFS layer:", [round(m.lam.item(), 3) for m in ann.modules() if isinstance(m, nm.nn.QCFS)])
with torch.no_grad():
    counts = {}
    for k, n in enumerate(snn.neurons()):
        n.register_forward_hook(lambda mod, inp, out, k=k: counts.__setitem__(k, counts.get(k, 0) + (out != 0).float().mean()))
    snn(x_test, T)
print("firing rate per converted layer:", {k: round(float(v) / T, 3) for k, v in counts.items()})

# %% [markdown]
# ## One time step: the Hoyer spike
#
# `nm.nn.HoyerSpike` is a spiking activation that thresholds each time step on its own (no membrane carries
# over). With z = u/|v_th| (v_th trainable) and z_clip = clip(z, 0, 1), the layer fires where
# z_clip ≥ E, E = Σ z_clip² / Σ z_clip being the *Hoyer extremum* of the layer's (or, with `num_features`, each
# channel's) activations: a self-weighted mean that adapts the threshold to the distribution of the
# activations. Training uses the batch's E and keeps a running average for inference, like BatchNorm; the
# gradient is 0.5 on 0 < z < 1. The Hoyer-square regulariser H(x) = ‖x‖₁²/‖x‖₂² of the clipped
# pre-activations (`nm.nn.hoyer_regularizer(model)`, weighted by λ_H, 1e-8 in the official scripts) pushes
# the activations towards sparse, well-separated values.
#
# The network is time-major like every neuromorph SNN, with T = 1: input `[1, B, 64]`.

# %%
one_step = torch.nn.Sequential(
    nm.nn.Linear(64, 128), nm.nn.BatchNorm1d(128), nm.nn.HoyerSpike(),
    nm.nn.Linear(128, 64), nm.nn.BatchNorm1d(64), nm.nn.HoyerSpike(),
    nm.nn.Linear(64, 10),
)
hoyer_accuracy = train(one_step, loss_extra=lambda m: 1e-8 * nm.nn.hoyer_regularizer(m),
                       inputs=lambda x: x.unsqueeze(0), readout=lambda out: out[0])
with torch.no_grad():
    spikes = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, k=k: spikes.__setitem__(k, out))
             for k, m in enumerate(m for m in one_step if isinstance(m, nm.nn.HoyerSpike))]
    one_step(x_test.unsqueeze(0))
    for h in hooks:
        h.remove()
print(f"one-time-step SNN: test accuracy {hoyer_accuracy:.3f} (QCFS ANN {ann_accuracy:.3f})")
print("spikes per neuron (one step):", {k: round(float(s.mean()), 3) for k, s in spikes.items()})
print("running Hoyer thresholds E:", [round(float(m.running_threshold.mean()), 3) for m in one_step if isinstance(m, nm.nn.HoyerSpike)])

# %% [markdown]
# **When each pays.** A converted QCFS network keeps the ANN's training pipeline and accuracy but needs about
# L steps (here 8) at inference, so its synaptic operations grow with T. A one-time-step Hoyer SNN runs a
# single step, so each neuron spikes at most once per input: the fewest operations and the lowest latency,
# at some accuracy cost on harder tasks. Neither carries a membrane across inputs, so neither models time;
# for event streams, train through time (tutorials 2 and 3).
