# %% [markdown]
# # Adaptive recurrent networks and event-driven training
#
# Two additions to the plain LIF network, each with its own question of when it pays:
#
# 1. **Adaptive neurons** (SE-adLIF, Baronig, Ferrand, Sabathiel & Legenstein, Nat. Commun. 2025): a LIF
#    neuron with a second state variable, an adaptation current, discretised so that it stays stable for
#    any coupling. Two recurrent layers of them are the best single model the paper reports on SHD.
# 2. **Event-driven synapses**: `nm.nn.Linear` does work only for the nonzero entries of its input, and
#    chooses between that and the dense product on every call from the input's measured density.
#
# **Data.** SHD's HDF5 layout (`DATA/shd/*_train.h5`, `*_test.h5`, from <https://zenkelab.org/datasets/>),
# else `DATA/shd_fsdd/`; set `NEUROMORPH_DATA=DATA` (see the tutorials README). The outputs below were computed
# on a file that is **not** SHD: the Free Spoken Digit Dataset (10 English digits, 6 speakers) run through
# SHD's cochlea model; its accuracies are not comparable with published SHD results. Without
# `NEUROMORPH_DATA`, the tutorial writes a small synthetic file in SHD's layout (Poisson spikes in a
# class-dependent band of channels), which shows the mechanics but not the densities of real recordings.

# %%
import os
import time
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch

import neuromorph as nm
import neuromorph.energy as ne
from neuromorph.errors import ExportError
from neuromorph.export import to_nir
from neuromorph.kernels.sparse import count_work, crossover_for, synapse_backend
from neuromorph.train import fit, load_model, resolve_recipe
from neuromorph.train.data import load_split

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode: tiny data, 1 epoch
OUT = Path(os.environ.get("NEUROMORPH_TUTORIAL_OUT", "runs/tutorials")) / "06_adaptive_sparse"
DATA = os.environ.get("NEUROMORPH_DATA")
torch.set_num_threads(1)  # the timings below are for one thread
_ = torch.manual_seed(0)


def write_band_task(folder: Path, n_train: int = 200, n_test: int = 60, seed: int = 0) -> Path:
    """A small SHD-layout data set: 4 classes, 0.5 s of Poisson spikes (about 5 % of the 4 ms bins active)
    concentrated in a band of 100 channels that depends on the class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 4, n)
        with h5py.File(folder / f"band_{split}.h5", "w") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            for k, label in enumerate(labels):
                u = np.concatenate([rng.integers(150 * label, 150 * label + 100, 600), rng.integers(0, 700, 300)])
                t = rng.uniform(0, 0.5, u.size)
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
    root = write_band_task(OUT / "data")
print("data files:", sorted(p.name for p in root.glob("*.h5")))

# %% [markdown]
# ## SE-adLIF and EF-adLIF in brief
#
# Per step, with input current I_t, threshold ϑ = 1, α = exp(−1/τ_u) and β = exp(−1/τ_w):
#
# ```text
# ũ_t = α u_{t−1} + (1 − α) (I_t − w_{t−1})          the membrane sees last step's adaptation current
# z_t = H(ũ_t − ϑ)                                   spike
# u_t = ũ_t (1 − z_t)                                hard reset to 0
# SE:  w_t = β w_{t−1} + (1 − β) q (a u_t + b z_t)     adaptation driven by the NEW membrane and spike
# EF:  w_t = β w_{t−1} + (1 − β) q (a u_{t−1} + b z_{t−1})   ... by the previous ones (Euler forward)
# ```
#
# `a` couples the adaptation to the membrane below threshold (the neuron can resonate), `b` makes every spike
# add adaptation (the neuron slows down); q scales both (SE: 120, EF: 60). The only difference between the
# two is which membrane the adaptation integrates. Symplectic Euler (SE) keeps the determinant of the
# sub-threshold update at αβ for every coupling, so oscillations always decay; Euler forward (EF) becomes
# unstable once q·a is large (above about 65 for τ_u = 5, τ_w = 60 steps).
#
# ## Stability: both on the same input, with a large coupling
#
# One neuron of each, τ_u = 5 and τ_w = 60 steps (the learned interpolation weights `w_u`, `w_w` at 0), no
# spike-driven adaptation (b = 0) and q·a = 300. A threshold out of reach (10³⁰) keeps them below threshold,
# so that we see the sub-threshold dynamics. Both are built with `streaming=True` and stepped one step at a
# time, so that the state (membrane `state.v`, adaptation current `state.a`) can be read after each step.

# %%
def membrane_trace(cls, current):
    neuron = cls(1, q=300.0, threshold=1e30, streaming=True)
    with torch.no_grad():
        neuron.w_u.zero_(), neuron.w_w.zero_(), neuron.a.fill_(1.0), neuron.b.zero_()
        state, trace = None, []
        for x_t in current:
            _, state = neuron(x_t[None], state)
            trace.append(state.v.item())
    return np.array(trace)


steps = 100
current = torch.zeros(steps, 1, 1)
current[5:10] = 1.0  # a short pulse
traces = {cls.__name__: membrane_trace(cls, current) for cls in (nm.nn.SEAdLIF, nm.nn.EFAdLIF)}
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
axes[0].plot(traces["SEAdLIF"])
axes[0].set_title("SEAdLIF, q·a = 300: membrane u", fontsize=9)
for name, u in traces.items():
    axes[1].semilogy(np.abs(u) + 1e-12, label=name)
axes[1].set_title("|u| of both, log scale", fontsize=9)
axes[1].legend(fontsize=8)
for ax in axes:
    ax.set_xlabel("step")
plt.show()
for name, u in traces.items():
    print(f"{name}: max |u| over the last 20 steps {np.abs(u[-20:]).max():.3g}")

# %% [markdown]
# The SE neuron rings and decays (a damped resonance: the adaptation pulls the membrane back below rest and
# lets it go); the EF neuron, with the same parameters and input, oscillates with a growing amplitude. This is
# why SE-adLIF can use q = 120 and EF-adLIF is limited to q = 60 within the default ranges.
#
# ## Per-neuron parameters and their constraints
#
# Every neuron learns four numbers: the interpolation weights `w_u` and `w_w` of its time constants
# (τ_u = w_u τ_max + (1 − w_u) τ_min, τ_w likewise), `a` and `b`. Their ranges (w_u, w_w, a in [0, 1],
# b in [0, 2]) are not enforced inside the forward pass: after each optimizer step a **projection** clamps them,
# `layer.apply_constraints()`, which `neuromorph.train` calls on every layer that defines it. In your own loop,
# call `nm.nn.apply_constraints(model)` after `optimizer.step()`. Below, one large step pushes parameters out of
# range and the projection brings them back (Adam with lr = 1 moves every parameter by about 1).

# %%
def ranges(neuron):
    return ", ".join(f"{n} in [{getattr(neuron, n).min():.2f}, {getattr(neuron, n).max():.2f}]"
                     for n in ("w_u", "w_w", "a", "b"))


layer = nm.nn.SEAdLIF(6)
print("τ_u (steps):", [round(v, 1) for v in layer.tau_u.tolist()])
print("τ_w (steps):", [round(v, 1) for v in layer.tau_w.tolist()])
net = torch.nn.Sequential(nm.nn.Linear(20, 6), nm.nn.Recurrent(layer, 6), nm.nn.Linear(6, 3), nm.nn.LI(tau=15.5))
with torch.no_grad():
    net[0].weight.mul_(10.0)  # strong enough input that the neurons fire (b, the spike coupling, gets a gradient)
opt = torch.optim.Adam(net.parameters(), lr=1.0)
x = (torch.rand(40, 4, 20) < 0.2).float()
print("before the step:     ", ranges(layer))
net(x).mean(0).logsumexp(-1).mean().backward()
opt.step()
print("after the step:      ", ranges(layer))
nm.nn.apply_constraints(net)
print("after the projection:", ranges(layer))

# %% [markdown]
# ## A recurrent SE-adLIF network
#
# `nm.nn.Recurrent(neuron, N)` adds all-to-all recurrent weights V (`[N, N]`) to any neuron: its input
# current is x_t + V s_{t−1}. The `shd-adlif` recipe is the paper's network: 4 ms count bins of the 700
# channels summed in groups of 5 (140 inputs), `Linear → Recurrent(SEAdLIF) → Dropout` twice (360 neurons,
# orthogonal V), a leaky-integrator readout, the summed-softmax loss, Adam at lr 0.01, 300 epochs. Below it
# runs in a much smaller form (narrower layers, a subset, a few epochs), to show the pipeline, not the accuracy.
# From the shell: `neuromorph train shd-adlif --data-root DATA/shd`. `model_kwargs={"neuron": "ef"}` gives
# the EF-adLIF network, `"lif"` the recurrent LIF baseline.

# %%
recipe = resolve_recipe("shd-adlif", data_root=str(root))
if QUICK:
    recipe = recipe.replace(epochs=1, train_limit=48, test_limit=24, batch_size=16, model_kwargs={"hidden": 32})
else:
    recipe = recipe.replace(epochs=6, train_limit=1000, batch_size=32, model_kwargs={"hidden": 128})
summary = fit(recipe, OUT / "run", overwrite=True, progress=False)
print(f"test accuracy {summary['test_accuracy']:.3f} on {summary['n_test']} test samples "
      f"({summary['n_train']} training samples, {summary['epochs_completed']} epochs, {summary['wall_time_s']:.0f} s)")
model, info = load_model(OUT / "run" / "best.pt")
model.eval()
print(model)

# %% [markdown]
# ## Streaming, one step at a time
#
# `nm.nn.Streaming` runs a Sequential step by step and carries every state between calls: the membrane and
# adaptation current of each neuron and, in a `Recurrent` layer, its last spikes. The recipe's model leaves
# the first 10 readout steps out of its output (the loss ignores them); the stream returns every step.

# %%
test = load_split(recipe, "test")
xb, yb = test.batch(torch.arange(4))
stream = nm.nn.Streaming(model)
with torch.no_grad():
    whole = model(xb)
    stepped = torch.stack([stream.step(x_t) for x_t in xb])
stream.reset()
print(f"input {tuple(xb.shape)}; streamed output {tuple(stepped.shape)}; whole-sequence output {tuple(whole.shape)}")
print("step by step equals the whole sequence:",
      torch.allclose(stepped[model.ignore_first:], whole, atol=1e-5))

# %% [markdown]
# ## What exports, and what the energy report charges
#
# NIR has no neuron with an adaptation current, and Lava/Loihi's netx runs only CUBA LIF and sigma-delta
# neurons: the NIR and Lava exports refuse an adaptive layer by name rather than export a different neuron.
# `neuromorph export best.pt --to nir` and `export_checkpoint` refuse with the same message; the checkpoint
# itself is written as usual, and it evaluates, streams and is measured like any other.

# %%
try:
    to_nir(model, xb[:, :1])
except ExportError as err:
    print("ExportError:", err)

# %% [markdown]
# The energy report counts an adaptive neuron as **two** state updates per step (membrane and adaptation
# current), so the `updates` of each adLIF layer are 2 × neurons × steps. The recurrent synapses V have a row
# of their own, `<layer>.recurrent`: each spike a neuron emits at step t reaches the other neurons through
# its column of V at step t + 1, so the row charges spikes(t-1) × the nonzero fan-out of that column (the
# spikes of the last step feed no step of the call). The lines below check that row against the count by
# hand.

# %%
report = ne.measure(model, xb, hardware="loihi,cmos45nm")
print(report.table())
T = xb.shape[0]
for row in report.layers:
    if row.role == "neuron" and row.neuron_updates:
        print(f"{row.name} ({row.kind}): {row.neuron_updates / report.samples:.0f} updates per inference "
              f"= {row.neuron_updates / report.samples / (row.neurons * T):.0f} × {row.neurons} neurons × {T} steps")
recurrent = {name: m for name, m in model.named_modules() if isinstance(m, nm.nn.Recurrent)}
rows = {row.name: row for row in report.layers}
seen = {}
hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, out.detach()))
         for name, m in recurrent.items()]
with torch.no_grad():
    model.eval()
    model(xb)
for h in hooks:
    h.remove()
for name, layer in recurrent.items():
    # By hand: the spikes of steps 0..T-2, each times the nonzero fan-out of its column of V.
    fan_out = (layer.weight != 0).sum(0).to(seen[name].dtype)
    by_hand = float((seen[name][:-1] * fan_out).sum()) / report.samples
    rec = rows[f"{name}.recurrent"].synops / report.samples
    print(f"{name}: recurrent synops per inference {rec:.0f}, by hand {by_hand:.0f}")

# %% [markdown]
# ## Event-driven synapses: how sparse is real input?
#
# A layer that receives spikes sees mostly zeros. The first layer of this network reads 4 ms bins of 140
# channel groups; the second reads the hidden spikes. `nm.nn.Linear` counts the nonzero entries of its input
# on every call and keeps them in `last_density`, with the path it chose in `last_path`. The crossover falls
# with the layer's width (the event-driven kernels scan every input once whatever the width), so a narrow
# readout crosses over at a lower density (a dozen outputs or fewer stay dense without counting).

# %%
xs, _ = load_split(recipe, "train").batch(torch.arange(16 if QUICK else 64))
print(f"input bins {tuple(xs.shape)}: {float((xs > 0).float().mean()):.4f} of the entries are nonzero, "
      f"counts up to {int(xs.max())}")
linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nm.nn.Linear)]
model.train()
model(xs).sum().backward()  # a training forward: the crossover for training applies
model.zero_grad()
for name, m in linears:
    density = "not counted" if np.isnan(m.last_density) else f"{m.last_density:.4f}"
    print(f"Linear {name} ({m.in_features}→{m.out_features}): input density {density}, "
          f"training crossover {crossover_for(m.out_features, training=True):.3f} → {m.last_path}")
plt.figure(figsize=(6, 2.4))
plt.plot((xs > 0).float().mean((1, 2)))
plt.xlabel("4 ms bin")
plt.ylabel("fraction of inputs active")
plt.title("input density over time (training batch)", fontsize=9)
plt.show()

# %% [markdown]
# ## What is exact
#
# The event-driven product adds exactly the nonzero terms of the dense product, so outputs and gradients equal
# the dense ones up to float rounding (the additions run in another order than in the BLAS kernel), for binary
# spikes and for event counts alike. `synapse_backend("dense")` / `("sparse")` forces every `backend="auto"`
# layer inside the block, here to compare the two on the same model and batch.

# %%
def loss_and_grads(backend):
    torch.manual_seed(1)  # the same dropout masks on both paths
    model.zero_grad()
    with synapse_backend(backend):
        out = model(xs)
        out.logsumexp(-1).mean().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


out_d, g_d = loss_and_grads("dense")
out_s, g_s = loss_and_grads("sparse")
print("largest output difference:", f"{(out_d - out_s).abs().max():.2e}")
print("largest relative gradient difference:",
      f"{max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-12)) for a, b in zip(g_d, g_s)):.2e}")
model.zero_grad()

# %% [markdown]
# ## Timing a training step on this machine
#
# A training step (forward, backward and Adam update) of the whole model on the batch above, with every
# `Linear` dense and then sparse, one thread. The recurrent product inside `Recurrent` is event-driven on
# both (its fused kernel), so the difference is that of the two `Linear` layers that read spikes. (The
# outputs shown were computed on a 2-core machine shared with other jobs: timings vary by tens of percent
# between runs; repeat them on yours.)

# %%
def time_step(backend, repeats):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    times = []
    with synapse_backend(backend):
        for _ in range(repeats + 1):  # the first call compiles / warms up
            t0 = time.perf_counter()
            opt.zero_grad()
            model(xs).logsumexp(-1).mean().backward()
            opt.step()
            nm.nn.apply_constraints(model)
            times.append(time.perf_counter() - t0)
    model.load_state_dict(state)  # leave the trained model as it was
    return float(np.median(times[1:]))


repeats = 1 if QUICK else 5
t_dense, t_sparse = time_step("dense", repeats), time_step("sparse", repeats)
print(f"training step, batch {xs.shape[1]} × {xs.shape[0]} steps: dense {1e3 * t_dense:.0f} ms, "
      f"sparse {1e3 * t_sparse:.0f} ms (median of {repeats})")

# %% [markdown]
# The whole step includes the neurons and the recurrent layers, which are the same on both paths, so the
# difference is diluted. The product alone shows where each pays: one 700→256 layer (SHD's raw channels into a
# hidden layer), 3200 rows (100 steps × 32 samples), random spikes of increasing density, forward and
# backward.

# %%
def product_time(density, backend, rows=3200, n_in=700, n_out=256, repeats=3):
    lin = nm.nn.Linear(n_in, n_out, backend=backend)
    x = (torch.rand(rows, n_in) < density).float()
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        lin(x).sum().backward()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


densities = [0.01, 0.05, 0.2] if QUICK else [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]
sweep = {b: [product_time(d, b, rows=800 if QUICK else 3200) for d in densities] for b in ("dense", "sparse")}
plt.figure(figsize=(6, 2.6))
for b, ts in sweep.items():
    plt.plot(densities, [1e3 * t for t in ts], "o-", label=b)
plt.axvline(crossover_for(256, training=True), color="gray", ls=":", label="auto's crossover")
plt.xscale("log")
plt.xlabel("input density")
plt.ylabel("ms per forward + backward")
plt.legend(fontsize=8)
plt.show()
for d, td, ts in zip(densities, sweep["dense"], sweep["sparse"]):
    print(f"density {d:5.3f}: dense {1e3 * td:6.1f} ms, sparse {1e3 * ts:6.1f} ms, speed-up {td / ts:4.1f}×")

# %% [markdown]
# ## The kernel's work is the energy report's synops
#
# `count_work()` records what the event-driven kernels did: active inputs (`events`), weight columns added
# (`accumulates`) and `synops`, the same weighted by the input value (a bin with 3 events is 3 spikes). For
# inputs of spikes or counts and weights without zeros, this equals the synops the energy report charges for
# those layers: the report counts the work the kernels really do.

# %%
model.eval()
with torch.no_grad(), synapse_backend("sparse"), count_work() as work:
    model(xb)
report = ne.measure(model, xb)
linear_names = {name for name, _ in linears}
report_synops = sum(row.synops for row in report.layers if row.name in linear_names)
print(f"kernels: {work.events} events, {work.accumulates} accumulates, {work.synops:.0f} synops")
print(f"energy report, the Linear layers: {report_synops:.0f} synops")
print("equal:", abs(work.synops - report_synops) < 1e-6 * max(1.0, report_synops))

# %% [markdown]
# ## When each pays
#
# - **SE-adLIF** over LIF: on tasks whose information is in the timing and frequency of the input (spoken
#   digits, SHD/SSC), at the price of two state updates per neuron and step and four parameters per neuron.
#   Prefer SE over EF-adLIF: about the same cost, and stable for any coupling. They train and stream like
#   any neuromorph neuron, but they do not export to NIR or Loihi; if hardware is the goal, train a LIF (or
#   CubaLIF) network.
# - **Event-driven synapses**: on CPU, for layers whose input is spikes or event counts below the crossover
#   density (about 0.29 in training and 0.31 in inference for wide layers on the machine the defaults were
#   measured on; lower for narrow layers, dense below a dozen outputs). The `auto` backend measures the
#   density on every call and picks the path, so there is nothing to switch on; the results are the same to
#   float rounding. Real-valued inputs are dense and run the dense product automatically; convolutions are
#   dense; on GPUs the dense product is kept (no event-driven GPU kernel has been measured). The crossover
#   depends on the machine: re-measure with `benchmarks/sparse_crossover.py` and pass
#   `Linear(..., crossover=...)` if your timings differ from the sweep above.
