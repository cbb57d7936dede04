# %% [markdown]
# # Coming from snnTorch, SpikingJelly, Norse or Sinabs
#
# If you know another SNN library, most of neuromorph will look familiar: PyTorch modules, surrogate
# gradients, LIF neurons. A few conventions differ, and each difference changes the spikes if it is missed.
# This tutorial builds **the same network** in snnTorch, SpikingJelly, Norse, Sinabs and neuromorph, with the
# same weights, checks that all five give the same spikes, names each convention on the way, and then moves a
# trained model between libraries through NIR.
#
# | | neuromorph | snnTorch | SpikingJelly | Norse | Sinabs |
# |---|---|---|---|---|---|
# | input layout | time-major `[T, B, ...]`, whole sequence per call | one step `[B, ...]` per call, you loop | `step_mode="m"`: `[T, B, ...]`; `"s"`: one step | cells: one step; you loop | batch-major `[B, T, ...]` |
# | state | none kept between calls (`streaming=True` for online use) | kept in the module (`init_hidden`) or passed | kept in the module; `functional.reset_net` | passed in and out | kept in the module; `reset_states()` |
# | leak | `tau` in steps, β = 1 − 1/τ | `beta` | `tau` in steps, β = 1 − 1/τ | `tau_mem_inv` (1/s) and `dt` (s) | `tau_mem` in steps, α = exp(−1/τ) |
# | input scaling | x/τ (`decay_input=True`), or x | x | x/τ (`decay_input=True`), or x | dt·τ_inv·x | (1 − α)·x (`norm_input=True`), or x |
# | firing | v > θ | v > θ | v ≥ θ | v > θ | v ≥ θ, several spikes per step by default |
#
# The peer libraries are optional: `pip install 'neuromorph[peers]'` (see the installation page for the
# packages that need `--no-deps` beside a CPU-only torch).

# %%
import logging
import math
import os
import warnings
from pathlib import Path

import torch

import neuromorph as nm

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode
OUT = Path(os.environ.get("NEUROMORPH_TUTORIAL_OUT", "runs/tutorials")) / "07_peers"
OUT.mkdir(parents=True, exist_ok=True)
warnings.filterwarnings("ignore")  # the peers' own deprecation chatter
logging.getLogger().setLevel(logging.ERROR)
_ = torch.manual_seed(0)

T, B, n_in, n_hidden, n_out = 25, 8, 20, 32, 4
w1, w2 = torch.randn(n_hidden, n_in) * 0.8, torch.randn(n_out, n_hidden) * 0.8
x = (torch.rand(T, B, n_in) < 0.3).float()  # time-major [T, B, features]


def linear(w: torch.Tensor, scale: float = 1.0) -> torch.nn.Linear:
    layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(w * scale)
    return layer

# %% [markdown]
# ## neuromorph
#
# Two LIF layers with τ = 2 steps (β = 0.5), threshold 1, hard reset to 0. One call runs the whole sequence;
# nothing to reset afterwards.

# %%
net = torch.nn.Sequential(nm.nn.Linear(n_in, n_hidden, bias=False), nm.nn.LIF(tau=2.0, reset="hard"),
                          nm.nn.Linear(n_hidden, n_out, bias=False), nm.nn.LIF(tau=2.0, reset="hard"))
with torch.no_grad():
    net[0].weight.copy_(w1)
    net[2].weight.copy_(w2)
    reference = net(x)  # [T, B, n_out]
print(f"neuromorph: {int(reference.sum())} output spikes")
results = {}

# %% [markdown]
# ## SpikingJelly
#
# neuromorph's LIF is SpikingJelly's Euler form, so the parameters carry over one to one. In multi-step mode
# SpikingJelly also takes `[T, B, ...]`; its neurons keep their state, so `reset_net` goes between batches.

# %%
from spikingjelly.activation_based import functional, layer, neuron

sj = torch.nn.Sequential(layer.Linear(n_in, n_hidden, bias=False), neuron.LIFNode(tau=2.0, decay_input=True, v_reset=0.0),
                         layer.Linear(n_hidden, n_out, bias=False), neuron.LIFNode(tau=2.0, decay_input=True, v_reset=0.0))
with torch.no_grad():
    sj[0].weight.copy_(w1)
    sj[2].weight.copy_(w2)
functional.set_step_mode(sj, "m")
with torch.no_grad():
    results["SpikingJelly"] = sj(x)
functional.reset_net(sj)  # forget the state before the next batch

# %% [markdown]
# ## snnTorch
#
# snnTorch's `Leaky` adds the input unscaled: v ← β v + x. neuromorph (and SpikingJelly) scale it by 1/τ
# unless `decay_input=False`, so with the same β the snnTorch weights are the neuromorph weights × 1/τ (or
# build neuromorph's LIF with `decay_input=False` and keep the weights). Its default resets one step late
# (`reset_delay=True`); `reset_delay=False` resets in the step that fired, as neuromorph does. You loop over
# time yourself.

# %%
import snntorch

beta = 1 - 1 / 2.0
lif1 = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero", reset_delay=False)
lif2 = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero", reset_delay=False)
fc1, fc2 = linear(w1, 1 / 2.0), linear(w2, 1 / 2.0)
mem1, mem2, out = lif1.reset_mem(), lif2.reset_mem(), []
with torch.no_grad():
    for t in range(T):  # one step [B, ...] per call
        spk1, mem1 = lif1(fc1(x[t]), mem1)
        spk2, mem2 = lif2(fc2(spk1), mem2)
        out.append(spk2)
results["snnTorch"] = torch.stack(out)

# %% [markdown]
# ## Norse
#
# Norse writes its neurons as continuous-time equations integrated with a step `dt` in seconds:
# v ← v + dt·τ_inv·(v_leak − v + x). With dt·τ_inv = 1/τ that is neuromorph's step; here dt = 1 ms and
# τ_inv = 500 /s, i.e. τ = 2 ms = 2 steps. (`LIFCell` adds a synaptic current, neuromorph's `CubaLIF`;
# `LIFBoxCell` has none.) Cells take one step and return the state to pass back in.

# %%
import norse.torch as norse

p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0),
                           v_leak=torch.tensor(0.0))
cell1, cell2 = norse.LIFBoxCell(p, dt=1e-3), norse.LIFBoxCell(p, dt=1e-3)
fc1, fc2 = linear(w1), linear(w2)
s1 = s2 = None
out = []
with torch.no_grad():
    for t in range(T):
        z1, s1 = cell1(fc1(x[t]), s1)
        z2, s2 = cell2(fc2(z1), s2)
        out.append(z2)
results["Norse"] = torch.stack(out)

# %% [markdown]
# ## Sinabs
#
# Sinabs decays exponentially with τ in steps, α = exp(−1/τ), and scales the input by 1 − α
# (`norm_input=True`): β = 0.5 is τ = 1/ln 2. By default its neurons emit several spikes per step and subtract
# the threshold; `SingleSpike` and `MembraneReset` give one spike and a reset to 0. Input is batch-major.

# %%
import sinabs.activation
import sinabs.layers as sl


def sinabs_lif():
    return sl.LIF(tau_mem=1 / math.log(2), norm_input=True, spike_fn=sinabs.activation.SingleSpike,
                  reset_fn=sinabs.activation.MembraneReset())


sn = torch.nn.Sequential(linear(w1), sinabs_lif(), linear(w2), sinabs_lif())
with torch.no_grad():
    results["Sinabs"] = sn(x.transpose(0, 1)).transpose(0, 1)  # [B, T, ...] in, [B, T, ...] out

# %%
for name, spikes in results.items():
    print(f"{name:13s} same spikes as neuromorph: {torch.equal(spikes, reference)}")

# %% [markdown]
# (The thresholds differ by `>` versus `≥`; with real-valued potentials an exact tie does not happen here,
# but with integer inputs and weights it can.)
#
# ## Moving a trained model through NIR
#
# NIR (the Neuromorphic Intermediate Representation) is the exchange format all five read and write. Two
# things it does not store, and how neuromorph handles them:
#
# - **No time step.** NIR's neurons are continuous-time equations with time constants in seconds.
#   neuromorph's are discrete, so `to_nir` writes τ_seconds = τ_steps · dt and stores the `dt` it used in
#   `graph.metadata["dt"]` (the neurons' own `dt`, else 1e-4 s). An importer must use that `dt`; snnTorch's
#   importer assumes 1e-4 s, so keep the default when the file is for snnTorch.
# - **No batch axis.** Node shapes are per sample.
#
# Train the network above briefly on a toy task, export it, and run the file in each library.

# %%
def toy_batch(n: int, generator: torch.Generator):
    y = torch.randint(0, n_out, (n,), generator=generator)
    rate = torch.full((n, n_in), 0.05)
    for c in range(n_out):
        rate[y == c, c * 5 : c * 5 + 5] = 0.5
    return (torch.rand(T, n, n_in, generator=generator) < rate).float(), y


g = torch.Generator().manual_seed(0)
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
for step in range(30 if QUICK else 200):
    xb, yb = toy_batch(32, g)
    loss = torch.nn.functional.cross_entropy(net(xb).sum(0), yb)  # spike counts as logits
    opt.zero_grad()
    loss.backward()
    opt.step()
xt, yt = toy_batch(256, g)
with torch.no_grad():
    trained = net(xt)
print(f"trained: accuracy {(trained.sum(0).argmax(1) == yt).float().mean():.3f} on 256 toy samples")

graph = nm.export.to_nir(net, xt[:, :1])
nm.export.write_nir(graph, OUT / "toy.nir")
print("nodes:", list(graph.nodes), "| dt in the file:", graph.metadata["dt"])
print(nm.export.peers.format_peer_report(nm.export.peers.peer_report(graph)))

# %% [markdown]
# The peer report (also printed by `neuromorph export CKPT --to nir`) says, for each library, whether it runs
# the file exactly, one sample at a time and batched, and the workaround where it does not. Now run the file:

# %%
import contextlib
import io

import nir
import snntorch.utils
from snntorch.import_nir import import_from_nir as snntorch_from_nir
from spikingjelly.activation_based.nir_exchange import import_from_nir as sj_from_nir

loaded = nir.read(OUT / "toy.nir")


def run_stepwise(module, x, reset=None):
    """Run a peer's imported graph one step at a time: ``y, state = module(x[t], state)``."""
    if reset:
        reset(module)
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = module(x[t], state)
            out.append(y)
    return torch.stack(out)


sample = xt[:, :8]
with torch.no_grad():
    want = net(sample)
ours = nm.export.from_nir(loaded)
with torch.no_grad():
    print("neuromorph.export.from_nir:", torch.equal(ours(sample), want))
print("SpikingJelly:", torch.equal(run_stepwise(sj_from_nir(loaded, dt=loaded.metadata["dt"]), sample), want))
print("Norse:", torch.equal(run_stepwise(norse.from_nir(loaded, dt=loaded.metadata["dt"]), sample), want))
with contextlib.redirect_stdout(io.StringIO()):  # snnTorch's importer prints its weight scaling
    snn_net = snntorch_from_nir(loaded)
print("snnTorch:", torch.equal(run_stepwise(snn_net, sample, snntorch.utils.reset), want))

# %% [markdown]
# And the other way: a network written to NIR by another library runs in neuromorph with
# `nm.export.from_nir(graph)`; give `dt=` when the file does not record it (NIR has no field for it; neuromorph
# reads `metadata["dt"]` when present). Here SpikingJelly's network from above, exported with SpikingJelly's
# own `export_to_nir` and read back by neuromorph:

# %%
from spikingjelly.activation_based.nir_exchange import export_to_nir as sj_to_nir

functional.set_step_mode(sj, "s")
functional.reset_net(sj)
sj_graph = sj_to_nir(sj, x[0], dt=1e-4)
back = nm.export.from_nir(sj_graph, dt=1e-4)
with torch.no_grad():
    print("SpikingJelly -> NIR -> neuromorph, same spikes:", torch.equal(back(x), reference))
print(back)
