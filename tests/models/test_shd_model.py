"""The SHD delay network (METHODS.md §3(c)): readout, optimisers and schedules, dropout, and the whole
model against a reconstruction of the reference (SpikingJelly LIFNode + DCLS Dcls1d, as in SNN-delays)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.models.shd import (
    SHDDelayNet,
    SequenceDropout,
    build_optimizers,
    sigma_schedule,
    summed_softmax,
    summed_softmax_loss,
)
from neuromorph.nn.delays import DelayedLinear, rounded_delays



def _standin_model() -> torch.nn.Sequential:
    """The SHD layer structure with torch's own BatchNorm (parameter grouping needs no forward pass)."""
    return torch.nn.Sequential(
        DelayedLinear(140, 256, 25), torch.nn.BatchNorm1d(256), DelayedLinear(256, 256, 25),
        torch.nn.BatchNorm1d(256), DelayedLinear(256, 20, 25),
    )


# ---------------------------------------------------------------- readout
def test_summed_softmax_and_loss():
    torch.manual_seed(0)
    v = torch.randn(7, 4, 5, requires_grad=True)
    y = torch.tensor([0, 3, 4, 1])
    m = summed_softmax(v)
    expected = sum(torch.softmax(v[t], dim=1) for t in range(7))
    torch.testing.assert_close(m, expected)
    torch.testing.assert_close(m.sum(1), torch.full((4,), 7.0))
    loss = summed_softmax_loss(v, y)
    manual = -(m.log_softmax(1)[torch.arange(4), y]).mean()
    torch.testing.assert_close(loss, manual)
    loss.backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    with pytest.raises(ShapeError, match="summed_softmax"):
        summed_softmax(torch.randn(4, 5))


# ---------------------------------------------------------------- optimisers and schedules
def test_build_optimizers_groups_and_hyperparameters():
    model = _standin_model()
    (opt_w, opt_p), scheds = build_optimizers(model, epochs=150)
    layers = [model[0], model[2], model[4]]
    assert [id(p) for p in opt_p.param_groups[0]["params"]] == [id(m.positions) for m in layers]
    assert opt_p.param_groups[0]["lr"] == pytest.approx(0.1) and opt_p.param_groups[0]["weight_decay"] == 0.0
    decayed, rest = opt_w.param_groups
    assert [id(p) for p in decayed["params"]] == [id(m.weight) for m in layers]
    assert decayed["weight_decay"] == 1e-5 and rest["weight_decay"] == 0.0
    bn = {id(p) for i in (1, 3) for p in model[i].parameters()}
    assert {id(p) for p in rest["params"]} == bn
    # every trainable parameter is optimised exactly once
    all_ids = [id(p) for o in (opt_w, opt_p) for g in o.param_groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in model.parameters())
    assert [when for _, when in scheds] == ["epoch", "epoch"]
    assert isinstance(scheds[0][0], torch.optim.lr_scheduler.OneCycleLR)
    assert isinstance(scheds[1][0], torch.optim.lr_scheduler.CosineAnnealingLR)


def test_schedules_per_epoch():
    model = _standin_model()
    (opt_w, opt_p), scheds = build_optimizers(model, epochs=20)
    lr_w, lr_p = [], []
    for _ in range(20):
        lr_w.append(opt_w.param_groups[0]["lr"])
        lr_p.append(opt_p.param_groups[0]["lr"])
        opt_w.step()
        opt_p.step()
        for s, _ in scheds:
            s.step()
    # OneCycle: starts at max_lr / 25, peaks at max_lr = 5e-3 after 30 % of the epochs, then anneals
    assert lr_w[0] == pytest.approx(5e-3 / 25)
    assert max(lr_w) == pytest.approx(5e-3) and lr_w.index(max(lr_w)) == round(0.3 * 20) - 1
    assert lr_w[-1] < 1e-5
    # cosine annealing of the positions' lr from 0.1 with T_max = epochs
    for e, lr in enumerate(lr_p):
        assert lr == pytest.approx(0.05 * (1 + math.cos(math.pi * e / 20)))


def test_positions_clamped_after_each_step():
    model = _standin_model()
    (opt_w, opt_p), _ = build_optimizers(model, epochs=3)
    for m in (model[0], model[2], model[4]):
        m.positions.grad = torch.full_like(m.positions, -1.0)  # Adam's first step moves every P by +lr = 0.1
        with torch.no_grad():
            m.positions.fill_(11.95)
    opt_p.step()
    for m in (model[0], model[2], model[4]):
        assert torch.all(m.positions == 12.0)


def test_sigma_schedule_for_model():
    s = sigma_schedule(_standin_model(), epochs=150)
    assert (s.sigma_init, s.final_epoch) == (12.0, 37)
    with pytest.raises(ConfigError, match="kernel size"):
        sigma_schedule(torch.nn.Sequential(DelayedLinear(2, 2, 25), DelayedLinear(2, 2, 31)), 10)
    with pytest.raises(ConfigError, match="epochs"):
        build_optimizers(_standin_model(), epochs=0)
    with pytest.raises(ConfigError, match="no DelayedLinear"):
        build_optimizers(torch.nn.Linear(2, 2), epochs=3)


# ---------------------------------------------------------------- dropout
def test_sequence_dropout_shares_mask_over_time():
    torch.manual_seed(1)
    d = SequenceDropout(0.4)
    x = torch.ones(6, 50, 40)
    y = d(x)
    assert torch.equal(y, y[0].expand_as(y))  # the same units dropped at every step
    values = y.unique()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == torch.tensor(1 / 0.6, dtype=torch.float32)
    assert abs((y[0] == 0).float().mean().item() - 0.4) < 0.05
    d.eval()
    assert torch.equal(d(x), x)
    torch.manual_seed(1)
    assert torch.equal(SequenceDropout(0.0)(x), x)


# ---------------------------------------------------------------- the whole network (needs the core)
def test_model_structure_and_parameter_count():
    model = SHDDelayNet()
    n = sum(p.numel() for p in model.parameters())
    assert n == 2 * 106_496 + 1_024  # METHODS §3(c): weights + positions + BN ≈ 0.21 M
    assert [type(m).__name__ for m in model] == [
        "DelayedLinear", "BatchNorm1d", "LIF", "SequenceDropout"
    ] * 2 + ["DelayedLinear", "LI"]
    lif = model[2]
    spec = lif.spec()
    assert spec.kind == "LIF" and spec.reset == "hard" and not spec.decay_input
    assert float(spec.tau) == pytest.approx(1.005) and float(spec.threshold) == 1.0
    assert model[0].kernel_size == 25 and model[0].bias is None
    assert lif.detach_reset and float(lif.v_reset) == 0.0
    assert (lif.surrogate.name, lif.surrogate.alpha) == ("atan", 5.0)
    assert model[3].p == 0.4 and model[7].p == 0.4
    readout = model[9].spec()
    assert readout.kind == "LI" and float(readout.tau) == pytest.approx(1.005) and not readout.decay_input
    x = (torch.rand(30, 3, 140) < 0.05).float()
    assert model(x).shape == (30 + 3 * 12, 3, 20)
    with pytest.raises(ShapeError, match="SHDDelayNet"):
        model(torch.rand(30, 3, 700))


def test_one_training_step_moves_weights_and_positions():
    torch.manual_seed(2)
    model = SHDDelayNet(hidden=32)
    (opt_w, opt_p), _ = build_optimizers(model, epochs=5)
    x = (torch.rand(40, 8, 140) < 0.1).float() * 3
    y = torch.randint(0, 20, (8,))
    before = [p.detach().clone() for p in (model[0].weight, model[0].positions, model[4].positions)]
    loss = summed_softmax_loss(model(x), y)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (model[0].positions, model[4].positions, model[0].weight))
    opt_w.step()
    opt_p.step()
    after = [model[0].weight, model[0].positions, model[4].positions]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    assert all(m.positions.abs().max() <= 12 for m in (model[0], model[4], model[8]))


def _reference_forward(model: SHDDelayNet, x: torch.Tensor) -> torch.Tensor:
    """The forward of SNN-delays' ``SnnDelays`` rebuilt from its parts: Dcls1d on padded [B, C, T],
    SpikingJelly BatchNorm1d and LIFNode(decay_input=False, hard reset, detach_reset), and a LIFNode with
    threshold 1e9 whose membrane is the output. Weights copied from ``model``; eval mode."""
    dcls = pytest.importorskip("DCLS.construct.modules")
    sj = pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    k = 25
    blocks = [(0, 1, 2), (4, 5, 6)]
    out = x
    made = []
    for lin_i, bn_i, _ in blocks:
        lin = model[lin_i]
        conv = dcls.Dcls1d(lin.in_features, lin.out_features, kernel_count=1, dilated_kernel_size=k, bias=False, version=lin.form)
        bn = layer.BatchNorm1d(lin.out_features, step_mode="m")
        lif = neuron.LIFNode(tau=1.005, v_threshold=1.0, surrogate_function=surrogate.ATan(alpha=5.0), detach_reset=True,
                             step_mode="m", decay_input=False)
        with torch.no_grad():
            conv.weight.copy_(lin.weight.unsqueeze(-1))
            conv.P.copy_(lin.positions.view(conv.P.shape))
            conv.SIG.copy_(lin.sigma.view(conv.SIG.shape))
        bn.load_state_dict(model[bn_i].state_dict())
        for m in (conv, bn, lif):
            m.eval()
        made.append(lif)
        h = conv(F.pad(out.permute(1, 2, 0), (k - 1, (k - 1) // 2))).permute(2, 0, 1)
        h = bn(h.unsqueeze(3)).squeeze(3)
        out = lif(h)
    lin = model[8]
    conv = dcls.Dcls1d(lin.in_features, lin.out_features, kernel_count=1, dilated_kernel_size=k, bias=False, version=lin.form)
    with torch.no_grad():
        conv.weight.copy_(lin.weight.unsqueeze(-1))
        conv.P.copy_(lin.positions.view(conv.P.shape))
        conv.SIG.copy_(lin.sigma.view(conv.SIG.shape))
    readout = neuron.LIFNode(tau=1.005, v_threshold=1e9, surrogate_function=surrogate.ATan(alpha=5.0), detach_reset=True,
                             step_mode="m", decay_input=False, store_v_seq=True)
    readout(conv(F.pad(out.permute(1, 2, 0), (k - 1, (k - 1) // 2))).permute(2, 0, 1))
    v = readout.v_seq
    for m in made + [readout]:
        functional.reset_net(m)
    return v


@pytest.mark.parametrize("rounded", [False, True])
def test_equals_reference_reconstruction(rounded):
    torch.manual_seed(3)
    model = SHDDelayNet(hidden=48, delay_method="direct")
    # non-trivial BN statistics, and σ late in training so the delays matter
    for i in (1, 5):
        bn = model[i]
        with torch.no_grad():
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.05, 0.3)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(0.0, 0.5)
    for m in (model[0], model[4], model[8]):
        m.set_sigma(0.5)
    model.eval()
    x = (torch.rand(50, 4, 140) < 0.15).float() * torch.randint(1, 4, (50, 4, 140)).float()
    with torch.no_grad():
        if rounded:
            with rounded_delays(model):
                ours = model(x)
                ref = _reference_forward(model, x)
        else:
            ours = model(x)
            ref = _reference_forward(model, x)
    assert ours.shape == ref.shape == (50 + 36, 4, 20)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_input_layout_is_declared():
    """SHDDelayNet declares [T, B, n_inputs] with nm.nn.expect_input: integer counts batch-first (torch's default
    collate) and a missing time axis are refused with the fix, a wrong channel count names the layout."""
    model = SHDDelayNet(n_inputs=12, hidden=8, max_delay=3).eval()
    x = (torch.rand(6, 2, 12) < 0.3).float()
    assert model(x).shape == (6 + 3 * 1, 2, 20)  # K = 3: one step more per DelayedLinear
    with pytest.raises(ShapeError, match="batch-first.*collate_time_major"):
        model(x.transpose(0, 1).to(torch.int16))
    with pytest.raises(ShapeError, match="no time axis"):
        model(x[0])
    with pytest.raises(ShapeError, match=r"SHDDelayNet.*\[T, B, 12\]"):
        model(torch.rand(6, 2, 13))
