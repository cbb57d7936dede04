# %% [markdown]
# # Your first SNN in five minutes
#
# This tutorial grows the README snippet into a working understanding of neuromorph's core: what a spiking
# neuron layer computes, which shape its input has, how it learns through a surrogate gradient, which
# backend runs it, and how to run a network one step at a time. It needs no data and runs on a CPU in
# seconds.
#
# Everything in neuromorph is **time-major**: a tensor `[T, B, ...]` holds T time steps of a batch of B
# samples. Neurons are **stateless**: each call runs the whole sequence from rest and keeps nothing for the
# next call, so there is no `reset_net()` to forget between batches.

# %%
import os

import matplotlib.pyplot as plt
import torch

import neuromorph as nm

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode
_ = torch.manual_seed(0)

# %% [markdown]
# ## A network
#
# A spiking network is an ordinary `torch.nn.Sequential`. Synapses (`nm.nn.Linear`, `Conv2d`, ...) are the
# torch layers applied to every time step; neurons (`LIF`, `IF`, `ALIF`, `CubaLIF`) turn input currents into
# spikes over time; `LI` is a leaky integrator that never fires, the usual readout, whose membrane potential
# is the output.

# %%
net = torch.nn.Sequential(
    nm.nn.Linear(700, 256), nm.nn.LIF(tau=2.0, threshold=1.0, reset="soft", surrogate="atan"),
    nm.nn.Linear(256, 20), nm.nn.LI(tau=2.0),
)
x = (torch.rand(100, 32, 700) < 0.05).float()  # [T, B, features]: 100 steps, 32 samples, 700 input channels
out = net(x)                                     # [T, B, 20]; no state to reset between calls
print(net)
print("output", tuple(out.shape))

# %% [markdown]
# ## What a LIF neuron computes
#
# With time in steps, `LIF` integrates its input with decay β = 1 − 1/τ, fires when the potential crosses the
# threshold θ, and resets:
#
# h_t = β v_{t−1} + x_t / τ  (the input is scaled by 1/τ; `decay_input=False` drops that),
# s_t = H(h_t − θ),
# v_t = h_t − s_t θ (`reset="soft"`), h_t (1 − s_t) + v_reset s_t (`"hard"`), or h_t (`"none"`).
#
# One neuron driven by a constant current shows it: the potential climbs, crosses θ, drops by θ, climbs
# again. To watch the potential we run the neuron one step at a time with `streaming=True`: it then returns
# `(spikes, state)`, and `state.v` is the membrane potential after the step (more on streaming below).

# %%
T = 40
current = torch.full((T, 1, 1), 1.5)
spikes = nm.nn.LIF(tau=5.0, threshold=1.0, reset="soft")(current)  # the whole sequence at once
probe = nm.nn.LIF(tau=5.0, threshold=1.0, reset="soft", streaming=True)
state, trace = None, []
for t in range(T):
    _, state = probe(current[t : t + 1], state)
    trace.append(float(state.v))
print("spike steps:", spikes[:, 0, 0].nonzero().flatten().tolist())

fig, ax = plt.subplots(figsize=(7, 2.5))
ax.plot(trace, label="v (after reset)")
ax.vlines(spikes[:, 0, 0].nonzero().flatten(), 0, 1.2, color="C3", label="spikes")
ax.axhline(1.0, color="gray", ls=":", label="threshold θ")
ax.set_xlabel("step")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The other neurons: `IF` (no leak), `ALIF` (the threshold rises by `adapt_increment` per spike and decays
# back with `tau_adapt`), `CubaLIF` (a current-based LIF with a synaptic trace, the Loihi neuron). `tau` and
# `threshold` may be one number or one per neuron (`shape=`), and learnable (`learn_tau=True`,
# `learn_threshold=True`). Time constants are in steps; with `dt=` (seconds per step) the layer also knows
# them in seconds, which matters when the network leaves neuromorph (NIR stores seconds, see tutorial 7).

# %%
layers = {
    "IF": nm.nn.IF(threshold=1.0),
    "LIF": nm.nn.LIF(tau=5.0),
    "ALIF": nm.nn.ALIF(tau=5.0, tau_adapt=20.0, adapt_increment=0.5),
    "CubaLIF": nm.nn.CubaLIF(tau_mem=5.0, tau_syn=2.0),
}
for name, layer in layers.items():
    print(f"{name:8s} {int(layer(current).sum())} spikes in {T} steps   {layer}")

# %% [markdown]
# ## Surrogate gradients
#
# A spike is a step function of the potential: its derivative is zero almost everywhere. Training replaces
# it in the backward pass by a smooth stand-in, the *surrogate*, a function of u − θ with a slope or width
# `alpha`. The forward pass is unchanged; only the gradient differs.

# %%
u = torch.linspace(-2, 2, 401)
fig, ax = plt.subplots(figsize=(7, 2.5))
for name in ("atan", "sigmoid", "fast_sigmoid", "triangle", "rectangular"):
    x_u = u.clone().requires_grad_(True)
    nm.functional.surrogate.spike_fn(x_u, name).sum().backward()
    ax.plot(u, x_u.grad, label=name)
ax.set_xlabel("u − θ")
ax.set_ylabel("dS/du used in backward")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Training, briefly
#
# A toy task: tell apart two classes of spike trains that differ in which half of the input channels fire
# more. The readout is the LI potential averaged over time; everything else is plain PyTorch.

# %%
def toy_batch(n: int, T: int = 30, generator=None):
    y = torch.randint(0, 2, (n,), generator=generator)
    rate = torch.full((n, 40), 0.05)
    rate[y == 0, :20] = 0.3
    rate[y == 1, 20:] = 0.3
    return (torch.rand(T, n, 40, generator=generator) < rate).float(), y


model = torch.nn.Sequential(nm.nn.Linear(40, 64), nm.nn.LIF(tau=2.0), nm.nn.Linear(64, 2), nm.nn.LI(tau=2.0))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
g = torch.Generator().manual_seed(0)
for step in range(20 if QUICK else 100):
    xb, yb = toy_batch(32, generator=g)
    loss = torch.nn.functional.cross_entropy(model(xb).mean(0), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
xt, yt = toy_batch(256, generator=g)
with torch.no_grad():
    acc = (model(xt).mean(0).argmax(1) == yt).float().mean()
print(f"loss {loss.item():.3f}, test accuracy {acc:.3f}")

# %% [markdown]
# ## Backends
#
# The same neuron runs on several backends (`backend=`):
#
# - `reference`: step-by-step autograd, written independently of the others: the ground truth;
# - `fused`: one autograd Function with a hand-written backward, numba loops on the CPU;
# - `triton`: GPU kernels (`pip install 'neuromorph[gpu]'`);
# - `auto` (default): `triton` on CUDA tensors, else `fused`.
#
# They give the same spikes and gradients, so the choice is about speed only. Compare them here (the first
# `fused` call in a fresh environment also compiles its kernels; numba caches them on disk):

# %%
import time

xs = (torch.rand(100, 32, 256) < 0.2).float()
results = {}
for backend in ("reference", "fused"):
    neuron = nm.nn.LIF(tau=2.0, backend=backend)
    inp = (xs * 2).requires_grad_(True)
    t0 = time.perf_counter()
    s = neuron(inp)
    s.sum().backward()
    results[backend] = (s.detach(), inp.grad, time.perf_counter() - t0)
    print(f"{backend:9s} forward+backward {1e3 * results[backend][2]:.1f} ms")
print("same spikes:", torch.equal(results["reference"][0], results["fused"][0]),
      "| same gradients:", torch.allclose(results["reference"][1], results["fused"][1], atol=1e-6))

# %% [markdown]
# ## Streaming: one step at a time
#
# Because neurons keep no state between calls, calling a network on one step `x_t.unsqueeze(0)` at a time
# starts every neuron from rest at every step, and most never reach threshold. For online inference wrap the
# Sequential in `nm.nn.Streaming`: `stream.step(x_t)` takes one step `[B, ...]` and carries the state to the
# next; `stream.reset()` before the next sequence. Any split into steps or chunks gives exactly the spikes of
# the whole sequence run at once.

# %%
stream = nm.nn.Streaming(net)
with torch.no_grad():
    whole = net(x)
    stepped = torch.stack([stream.step(x_t) for x_t in x])
    stream.reset()
print("step by step equals the whole sequence:", torch.allclose(whole, stepped, atol=1e-6))

# %% [markdown]
# A single neuron can stream too: built with `streaming=True` it returns `(spikes, state)`, and the state
# goes back in with the next chunk.

# %%
neuron = nm.nn.LIF(tau=5.0, streaming=True)
first, state = neuron(current[:20])
second, state = neuron(current[20:], state)
print("two chunks equal one call:", torch.equal(torch.cat([first, second]), spikes))

# %% [markdown]
# ## Input layout mistakes are errors, not silent garbage
#
# Batch-first input `[B, T, ...]`, the habit of several other libraries, would be read as T = B. Declaring the
# per-step shape with `nm.nn.expect_input` makes a model check every call and raise `ShapeError` with the fix.

# %%
checked = nm.nn.expect_input(net, (700,), steps=100)
try:
    checked(torch.rand(32, 100, 700).long())  # batch-first and integer counts: two mistakes at once
except nm.errors.ShapeError as err:
    print("ShapeError:", err)

# %% [markdown]
# Next: tutorial 2 trains a convolutional SNN on real N-MNIST recordings and takes it to Loihi.
