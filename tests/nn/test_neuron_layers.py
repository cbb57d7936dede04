import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError, NonFiniteError, ShapeError


def _x(T=30, B=4, N=16, seed=0):
    return torch.rand(T, B, N, generator=torch.Generator().manual_seed(seed)) * 1.5


@pytest.mark.parametrize("make", [
    lambda: nm.nn.LIF(tau=3.0, reset="soft", streaming=True),
    lambda: nm.nn.LIF(tau=3.0, reset="hard", v_reset=-0.2, streaming=True),
    lambda: nm.nn.IF(threshold=0.8, streaming=True),
    lambda: nm.nn.ALIF(tau=3.0, tau_adapt=10.0, adapt_increment=0.3, streaming=True),
    lambda: nm.nn.CubaLIF(tau_mem=3.0, tau_syn=2.0, streaming=True),
    lambda: nm.nn.LI(tau=3.0, streaming=True),
])
def test_streaming_equals_sequence(make):
    layer = make()
    x = _x()
    whole, state_whole = layer(x)
    outs, state = [], None
    for chunk in torch.split(x, [1, 7, 10, 12]):
        o, state = layer(chunk, state)
        outs.append(o)
    torch.testing.assert_close(torch.cat(outs), whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(state.v, state_whole.v, rtol=0, atol=1e-6)
    if layer.kind != "LI":
        assert 0 < whole.sum() < whole.numel()


def test_stateless_by_default_no_reset_needed():
    lif = nm.nn.LIF(tau=2.0)
    x = _x()
    assert torch.equal(lif(x), lif(x))


def test_lif_hand_computed_trace():
    """h_t = β v + x/τ with τ = 2; soft reset subtracts θ = 1."""
    lif = nm.nn.LIF(tau=2.0, threshold=1.0, reset="soft", decay_input=False)
    x = torch.tensor([0.6, 0.6, 0.6, 0.0, 1.2]).view(5, 1, 1)
    # v: 0.6 -> 0.9 -> 1.05 (spike, v=0.05) -> 0.025 -> 1.2125 (spike)
    assert lif(x).flatten().tolist() == [0, 0, 1, 0, 1]


def test_per_neuron_learnable_parameters_get_gradients():
    lif = nm.nn.LIF(tau=torch.linspace(2, 5, 16), threshold=0.7, learn_tau=True, learn_threshold=True, shape=(16,))
    assert lif.tau.shape == (16,) and lif.threshold.shape == (16,)
    lif(_x()).sum().backward()
    assert lif.tau.grad.shape == (16,) and lif.threshold.grad.shape == (16,)
    assert lif.tau.grad.abs().sum() > 0 and lif.threshold.grad.abs().sum() > 0
    with pytest.raises(ShapeError, match="shape"):
        lif(torch.rand(3, 2, 8))


def test_physical_time_constants_with_dt():
    a = nm.nn.LIF(tau=20e-3, dt=1e-3)
    b = nm.nn.LIF(tau=20.0)
    torch.testing.assert_close(a.tau, b.tau)
    assert a.spec().dt == 1e-3 and a.spec().kind == "LIF"


@pytest.mark.parametrize("bad,match", [
    (lambda: nm.nn.LIF(tau=0.0), "tau"),
    (lambda: nm.nn.LIF(tau=-2.0), "tau"),
    (lambda: nm.nn.LIF(tau=0.5), "tau"),
    (lambda: nm.nn.LIF(threshold=0.0), "threshold"),
    (lambda: nm.nn.CubaLIF(tau_syn=0.0), "tau_syn"),
    (lambda: nm.nn.LIF(surrogate="relu"), "surrogate.*atan"),
    (lambda: nm.nn.LIF(backend="cuda"), "backend.*reference.*fused.*triton"),
    (lambda: nm.nn.LIF(reset="zero"), "reset.*soft.*hard.*none"),
])
def test_bad_parameters_name_the_parameter(bad, match):
    with pytest.raises(ConfigError, match=match):
        bad()


def test_bad_inputs():
    lif = nm.nn.LIF()
    with pytest.raises(ShapeError, match=r"\[T, B"):
        lif(torch.rand(4, 16))
    with pytest.raises(ShapeError, match="floating"):
        lif(torch.ones(3, 4, 16, dtype=torch.int64))
    x = _x()
    x[3, 1, 2] = float("nan")
    lif(x)  # default: no check, no error
    with pytest.raises(NonFiniteError, match="NaN"):
        nm.nn.LIF(check_finite=True)(x)
    with pytest.raises(ConfigError, match="streaming"):
        lif(_x(), lif.dynamics() and None or nm.nn.NeuronState(torch.zeros(4, 16)))


def test_time_distributed_layers_act_per_step():
    torch.manual_seed(0)
    conv = nm.nn.Conv2d(2, 4, 3, stride=2, padding=1)
    assert isinstance(conv, torch.nn.Conv2d)
    x = torch.rand(5, 3, 2, 16, 16)
    y = conv(x)
    assert y.shape == (5, 3, 4, 8, 8)
    torch.testing.assert_close(y[2], torch.nn.functional.conv2d(x[2], conv.weight, conv.bias, 2, 1))
    bn = nm.nn.BatchNorm1d(7)
    z = torch.randn(6, 4, 7) * 3 + 1
    out = bn(z)
    torch.testing.assert_close(out.reshape(-1, 7).mean(0), torch.zeros(7), atol=1e-5, rtol=0)
    assert nm.nn.Flatten()(torch.rand(5, 3, 2, 4, 4)).shape == (5, 3, 32)
    assert nm.nn.MaxPool2d(2)(torch.rand(5, 3, 2, 4, 4)).shape == (5, 3, 2, 2, 2)
    with pytest.raises(ShapeError, match="Conv2d"):
        conv(torch.rand(2, 2, 2))


def test_spec_reports_the_dynamics():
    s = nm.nn.CubaLIF(tau_mem=4.0, tau_syn=2.0, threshold=0.5, reset="hard").spec()
    assert s.kind == "CubaLIF" and s.reset == "hard"
    assert s.tau.item() == 4.0 and s.tau_syn.item() == 2.0 and s.threshold.item() == 0.5
    assert nm.nn.LI(tau=3.0).spec().threshold is None
