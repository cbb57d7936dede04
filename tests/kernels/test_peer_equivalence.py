"""Our dynamics equal the peer libraries' when the parameters are mapped (spikes identical, T = 100).

float64 everywhere: the libraries order their floating-point operations differently, so in float32 a
membrane landing within one ulp of the threshold could flip a spike; in float64 that is ~1e-16 likely.
"""

import pytest
import torch

import neuromorph as nm

T, B, N = 100, 8, 64


def _input(seed=0, scale=0.9):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, N, generator=g, dtype=torch.float64) * scale + 0.35


def _assert_same_spikes(ours, theirs):
    assert ours.shape == theirs.shape
    assert ours.sum() > 100, "the input must drive real activity"
    assert torch.equal(ours, theirs.to(ours.dtype))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_snntorch_leaky(reset):
    snn = pytest.importorskip("snntorch")
    beta, threshold = 0.85, 1.0
    x = _input(1)
    leaky = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset).double()
    mem = leaky.init_leaky()
    spikes = []
    for t in range(T):
        spk, mem = leaky(x[t], mem)
        spikes.append(spk)
    theirs = torch.stack(spikes)
    # snnTorch applies the reset one step late, before the decay: mem_{t+1} = β mem_t + x − s_t θ (subtract)
    # or β (1 − s_t) mem_t + x (zero). With decay_input=False, zero reset is our hard reset to 0, and the
    # delayed subtraction is our soft reset by θ/β (the amount that is left after one decay).
    tau = 1 / (1 - beta)
    if reset == "subtract":
        ours = nm.nn.LIF(tau=tau, threshold=threshold, reset="soft", reset_amount=threshold / beta,
                         decay_input=False)
    else:
        ours = nm.nn.LIF(tau=tau, threshold=threshold, reset="hard", v_reset=0.0, decay_input=False)
    _assert_same_spikes(ours.double()(x), theirs)


@pytest.mark.parametrize("v_reset", [0.0, None], ids=["hard", "soft"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_spikingjelly_lifnode_multistep(v_reset, decay_input):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, neuron

    tau = 2.5
    x = _input(2, scale=1.5 if decay_input else 0.9)
    sj = neuron.LIFNode(tau=tau, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset, step_mode="m").double()
    theirs = sj(x)
    functional.reset_net(sj)
    ours = nm.nn.LIF(tau=tau, threshold=1.0, reset="hard" if v_reset is not None else "soft", v_reset=0.0,
                     decay_input=decay_input).double()
    _assert_same_spikes(ours(x), theirs)


def test_norse_lif_box():
    pytest.importorskip("norse")
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.module.lif_box import LIFBoxCell

    tau_steps = 4.0
    x = _input(3, scale=1.5) + 0.3
    cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / tau_steps, dtype=torch.float64),
                                       v_th=torch.tensor(1.0, dtype=torch.float64)), dt=1.0)
    state, spikes = None, []
    for t in range(T):
        z, state = cell(x[t], state)
        spikes.append(z)
    ours = nm.nn.LIF(tau=tau_steps, threshold=1.0, reset="hard", decay_input=True).double()
    _assert_same_spikes(ours(x), torch.stack(spikes))


def test_norse_lif_current_based():
    """Norse's LIF is current-based: i ← i + x, v ← v + dt/τ_m (v_leak − v + i), then i decays."""
    pytest.importorskip("norse")
    from norse.torch import LIF, LIFParameters

    tau_mem, tau_syn = 5.0, 3.0
    x = _input(4, scale=0.6) * 0.5
    p = LIFParameters(tau_mem_inv=torch.tensor(1 / tau_mem, dtype=torch.float64),
                      tau_syn_inv=torch.tensor(1 / tau_syn, dtype=torch.float64),
                      v_th=torch.tensor(1.0, dtype=torch.float64), v_reset=torch.tensor(0.0, dtype=torch.float64))
    theirs, _ = LIF(p, dt=1.0)(x)
    ours = nm.nn.CubaLIF(tau_mem=tau_mem, tau_syn=tau_syn, threshold=1.0, reset="hard", decay_input=True).double()
    _assert_same_spikes(ours(x), theirs)
