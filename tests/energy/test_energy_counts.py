"""Exact synop / MAC counts against hand-computed values and an independent brute-force enumeration."""

from __future__ import annotations

import itertools

import pytest
import torch

import neuromorph.energy as ne
import neuromorph as nm
from neuromorph.errors import ConfigError, UnknownLayerError
from neuromorph.energy.counters import conv_fanout, pool_fanout


def _spikes(shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def test_linear_synops_hand_computed():
    lin = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, 0.0, -1.0], [2.0, 0.0, 0.0]]))
    # fan-out per input (nonzero weights per column): [2, 0, 1]
    x = torch.zeros(2, 1, 3)  # [T, B, in]
    x[0, 0] = torch.tensor([1.0, 1.0, 0.0])  # 2 + 0
    x[1, 0] = torch.tensor([1.0, 1.0, 1.0])  # 2 + 0 + 1
    layer = ne.measure(lin, x, hardware="cmos45nm").layers[0]
    assert layer.synops == 5
    assert layer.synops_per_step == [2, 3]
    assert layer.spikes_in == 5
    assert layer.spikes_per_step == [2, 3]
    assert layer.macs == 0
    assert layer.ann_macs_per_sample == 3 * 2  # three nonzero synapses at each of the T = 2 steps
    assert layer.rate == pytest.approx(5 / 6)


def test_linear_real_input_costs_dense_macs():
    lin = torch.nn.Linear(4, 3)
    x = torch.rand(5, 2, 4) + 0.1  # analog: an encoding layer
    layer = ne.measure(lin, x).layers[0]
    assert layer.input_type == "real"
    assert layer.synops == 0
    assert layer.macs == 5 * 2 * 4 * 3


def test_conv2d_stride2_padding1_fanout_hand_computed():
    # 4x4 input, 3x3 kernel, stride 2, padding 1 -> 2x2 output. Windows cover rows {-1,0,1} and {1,2,3}:
    # row (and column) fan-out is [1, 2, 1, 1]; the 2-D fan-out is the outer product, times C_out.
    conv = torch.nn.Conv2d(1, 3, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(0.5)
    row = torch.tensor([1.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    expected = 3 * torch.outer(row, row)
    fan = conv_fanout(lambda x, w: conv._conv_forward(x, w, None), conv.weight, (1, 4, 4))
    assert torch.equal(fan[0], expected)

    x = torch.zeros(1, 1, 1, 4, 4)  # [T, B, C, H, W] flattened below to [N, C, H, W] for torch's Conv2d
    x[0, 0, 0, 0, 0] = 1  # corner: fan-out 3
    x[0, 0, 0, 1, 1] = 1  # centre of four windows: 12
    x[0, 0, 0, 3, 3] = 1  # far corner: 3
    layer = ne.measure(conv, x[0]).layers[0]
    assert layer.synops == 18


def test_conv2d_zero_weights_are_not_synapses():
    conv = torch.nn.Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.weight[1] = 0.0  # the second output channel has no synapses at all
        conv.weight[0, 0, 0, 0] = 0.0  # and the first loses its top-left tap
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1  # in 4 windows at taps (1,1),(1,-1)... only window (0,0) uses tap (2,2); see below
    # position (1,1) is tap (2,2) of output (0,0), tap (2,0) of (0,1), tap (0,2) of (1,0), tap (0,0) of (1,1):
    # the zeroed tap (0,0) removes one of the four -> 3 synops
    assert ne.measure(conv, x).layers[0].synops == 3


def _brute_force_conv_synops(x, weight, stride, padding, dilation, groups):
    """Enumerate every (output position, input channel, tap) that reads a spike through a nonzero weight."""
    n, c_in, h, w = x.shape
    c_out, c_in_g, kh, kw = weight.shape
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    per_group_out = c_out // groups
    total = 0
    for b, co, i, j in itertools.product(range(n), range(c_out), range(oh), range(ow)):
        g = co // per_group_out
        for ci, a, bb in itertools.product(range(c_in_g), range(kh), range(kw)):
            r = i * stride[0] - padding[0] + a * dilation[0]
            c = j * stride[1] - padding[1] + bb * dilation[1]
            if 0 <= r < h and 0 <= c < w and weight[co, ci, a, bb] != 0:
                total += int(x[b, g * c_in_g + ci, r, c])
    return total


@pytest.mark.parametrize(
    "stride,padding,dilation,groups",
    [((2, 2), (1, 1), (1, 1), 1), ((2, 1), (0, 2), (1, 2), 2), ((3, 3), (2, 1), (2, 1), 4)],
)
def test_conv2d_matches_brute_force_enumeration(stride, padding, dilation, groups):
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(4, 4, (3, 2), stride=stride, padding=padding, dilation=dilation, groups=groups, bias=False)
    with torch.no_grad():
        conv.weight[conv.weight.abs() < 0.1] = 0.0  # prune some synapses
    x = _spikes((2, 4, 7, 6), p=0.4)
    expected = _brute_force_conv_synops(x, conv.weight, stride, padding, dilation, groups)
    assert ne.measure(conv, x.unsqueeze(0)[0]).layers[0].synops == expected


def test_time_major_conv_splits_steps_when_flattened():
    conv = torch.nn.Conv1d(2, 3, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = _spikes((4, 2, 2, 9), p=0.5)  # [T, B, C, L]
    with ne.EnergyMonitor(conv, time_steps=4, batch_size=2) as mon:
        conv(x.flatten(0, 1))
    layer = mon.layers[0]
    per_step = [
        ne.measure(conv, x[t]).layers[0].synops for t in range(4)
    ]
    assert layer.synops_per_step == per_step
    assert layer.synops == sum(per_step)


def test_pooling_window_fanout():
    # max-pool 2x2 stride 2 on 4x4: every position is in exactly one window
    fan = pool_fanout(torch.nn.MaxPool2d(2), (3, 4, 4))
    assert torch.equal(fan, torch.ones(3, 4, 4, dtype=torch.float64))
    # avg-pool 3 stride 2 padding 1 on length 5: windows {-1,0,1}, {1,2,3}, {3,4,5}
    fan1 = pool_fanout(torch.nn.AvgPool1d(3, stride=2, padding=1), (1, 5))
    assert fan1[0].tolist() == [1, 2, 1, 2, 1]
    # ceil_mode adds a last window that starts inside the input: length 5, k=2, s=2 -> windows {0,1},{2,3},{4}
    fan2 = pool_fanout(torch.nn.MaxPool1d(2, stride=2, ceil_mode=True), (1, 5))
    assert fan2[0].tolist() == [1, 1, 1, 1, 1]
    fan3 = pool_fanout(torch.nn.MaxPool1d(2, stride=2), (1, 5))
    assert fan3[0].tolist() == [1, 1, 1, 1, 0]
    # adaptive pooling (torch's window rule): length 5 to 3 -> windows {0,1}, {1,2,3}, {3,4}
    assert pool_fanout(torch.nn.AdaptiveAvgPool1d(3), (1, 5))[0].tolist() == [1, 2, 1, 2, 1]


class DilatedMaxPool(torch.nn.Module):
    """A user's max pooling (this module only, no torch pooling class): it declares its op in the layer
    protocol, and the fan-out must follow the op (max pooling honours dilation), not the class."""

    layer_decl = nm.nn.LayerDecl("pooling", "max_pool1d")

    def __init__(self):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode = 2, 1, 0, 2, False

    def forward(self, x):
        return torch.nn.functional.max_pool1d(x, 2, 1, 0, 2)


def test_pooling_kind_comes_from_the_declared_op():
    # windows {0,2}, {1,3}, {2,4}
    assert pool_fanout(DilatedMaxPool(), (1, 5))[0].tolist() == [1, 1, 2, 1, 1]

    class Undeclared(torch.nn.Module):
        kernel_size, stride, padding = 2, 2, 0

    with pytest.raises(UnknownLayerError, match="Undeclared"):
        pool_fanout(Undeclared(), (1, 4))
    with pytest.raises(ConfigError, match="declared as a synapse 'linear'"):
        pool_fanout(torch.nn.Linear(4, 4), (1, 4))


def test_pooling_over_spikes_counts_accumulates():
    pool = torch.nn.AvgPool1d(3, stride=2, padding=1)
    x = torch.zeros(1, 1, 5)
    x[0, 0, 1] = 1  # in 2 windows
    x[0, 0, 4] = 1  # in 1 window
    layer = ne.measure(pool, x.unsqueeze(0)[0]).layers[0]
    assert layer.role == "pool" and layer.acs == 3 and layer.synops == 0


def test_delayed_linear_hand_computed():
    from neuromorph.nn.delays import DelayedLinear

    layer = DelayedLinear(3, 2, max_delay=4)  # K = 5, output has T + 2 steps
    assert layer.kernel_size == 5
    layer.set_delays(torch.tensor([[0.0, 1.0, 4.0], [3.0, 2.0, 0.0]]))
    layer.round_delays()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [1.0, 1.0, 1.0]]))
    x = torch.zeros(4, 1, 3)  # T = 4 -> 6 output steps
    x[3, 0, 0] = 1  # j=0 (d=0) lands at 3; j=1 (d=3) would land at 6, past the output: 1 synop
    x[0, 0, 2] = 1  # j=0 (d=4) at 4, j=1 (d=0) at 0: 2 synops
    x[2, 0, 2] = 1  # j=0 (d=4) would land at 6: lost; j=1 at 2: 1 synop
    x[1, 0, 1] = 1  # w[0,1] = 0: only j=1 (d=2) at 3: 1 synop
    rec = ne.measure(layer, x).layers[0]
    assert rec.synops == 5
    assert rec.synops_per_step == [2, 1, 1, 1]
    # the count equals the deliveries the layer actually makes (weights 1 where nonzero)
    with torch.no_grad():
        layer.weight.copy_((layer.weight != 0).float())
    delivered = 0
    for t, b, i in x.nonzero().tolist():
        single = torch.zeros_like(x)
        single[t, b, i] = 1
        delivered += int((layer(single).abs() > 0.5).sum())
    assert delivered == 5


def test_functional_product_of_two_spike_tensors_is_macs():
    class QK(torch.nn.Module):
        def forward(self, q, k=None):
            return q @ q.transpose(-1, -2)

    q = _spikes((3, 2, 4, 5), p=0.5)  # [T, B, tokens, dim]
    rec = ne.measure(QK(), q).layers[0]
    assert rec.kind == "matmul" and rec.role == "functional"
    # one MAC per pair of coincident spikes: sum over (t, b, i, j) of sum_d q[i, d] q[j, d]
    coincident = sum(
        int(q[t, b, i, d]) * int(q[t, b, j, d])
        for t in range(3) for b in range(2) for i in range(4) for j in range(4) for d in range(5)
    )
    assert rec.macs == coincident
    assert rec.ann_macs_per_sample == 3 * 4 * 4 * 5  # dense, T = 3 steps of one sample: every output element, dim MACs
    assert rec.synops == 0


def test_functional_linear_in_container_forward_is_counted():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 1.0]]))
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.lin(torch.nn.functional.linear(x, self.w))

    x = torch.zeros(1, 1, 3)
    x[0, 0, :2] = 1
    report = ne.measure(Block(), x)
    names = [r.name for r in report.layers]
    assert names == ["Block/linear#0", "lin"]
    assert report.layers[0].synops == 4
    assert report.layers[1].macs == 4  # the F.linear output [2, 3] is real-valued


def test_event_counts_at_the_input_are_spikes():
    conv = torch.nn.Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.zeros(1, 1, 1, 4, 4)  # [T, B, C, H, W]
    x[0, 0, 0, 1, 1] = 3  # three events of one pixel in one bin: fan-out 4 windows x 2 channels each
    x[0, 0, 0, 0, 0] = 1  # one event at the corner: fan-out 2
    with ne.EnergyMonitor(conv) as mon:
        mon.input_storages = {x.untyped_storage().data_ptr()}
        conv(x[0])
    rec = mon.layers[0]
    assert rec.input_type == "counts" and rec.synops == 3 * 8 + 2 and rec.spikes_in == 4 and rec.macs == 0
    # measure() marks its input the same way
    assert ne.measure(conv, x[0]).layers[0].synops == 26
    # opting out: dense MACs over every synapse, sum of the fan-out map = (1+2+1+1)^2 x 2 channels = 50
    report = ne.measure(conv, x[0], counts_as_spikes=False)
    assert report.layers[0].input_type == "real" and report.layers[0].macs == 50 and report.layers[0].synops == 0
    # integer values that are not the measured input (an activation inside the net) are real-valued
    with ne.EnergyMonitor(conv) as mon:
        conv(x[0].clone())
    assert mon.layers[0].input_type == "real" and mon.layers[0].macs == 50


def test_real_nmnist_sample_first_layer_synops(shared_data):
    """A real N-MNIST recording, binned into count frames: the first conv costs one synop per event per
    nonzero synapse. Checked against a direct convolution of the counts with the 0/1 weight mask (the
    sum over outputs of events in each window), which does not use the fan-out map."""
    import numpy as np

    from neuromorph.data.readers.atis import read_nmnist
    from neuromorph.data.transforms import ToFrame

    path = sorted((shared_data / "nmnist" / "Test" / "0").glob("*.bin"))[0]
    events = read_nmnist(path)
    frames = ToFrame(sensor_size=(34, 34, 2), n_time_bins=5)(events)  # [T, P, H, W] event counts
    x = torch.as_tensor(np.asarray(frames), dtype=torch.float32).unsqueeze(1)  # [T, B=1, 2, 34, 34]
    assert x.max() > 1  # some pixels fire more than once per bin: counts, not plain spikes
    import neuromorph.nn as nm_nn

    torch.manual_seed(0)
    conv = nm_nn.Conv2d(2, 6, 5, stride=2, padding=2, bias=False)  # time-distributed: takes [T, B, C, H, W]
    with torch.no_grad():
        conv.weight[conv.weight.abs() < 0.02] = 0.0
    rec = ne.measure(conv, x).layers[0]
    mask = (conv.weight != 0).double()
    expected = torch.nn.functional.conv2d(x.flatten(0, 1).double(), mask, stride=2, padding=2).sum()
    assert rec.input_type == "counts"
    assert rec.spikes_in == x.sum() > 0.99 * len(events)  # every binned event
    assert rec.synops == expected.item()
    assert len(rec.synops_per_step) == 5 and sum(rec.synops_per_step) == rec.synops


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_counts_on_cuda_equal_cpu():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, stride=2, padding=1), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5))
    x = _spikes((3, 2, 16, 16), p=0.3)
    cpu = ne.measure(net, x.unsqueeze(0)[0]).to_dict()
    gpu = ne.measure(net.cuda(), x.cuda().unsqueeze(0)[0]).to_dict()
    assert [(layer["synops"], layer["macs"], layer["acs"]) for layer in cpu["layers"]] == \
        [(layer["synops"], layer["macs"], layer["acs"]) for layer in gpu["layers"]]


def test_attention_functionals_and_fused_modules():
    class Attention(torch.nn.Module):
        def forward(self, q):
            return torch.nn.functional.scaled_dot_product_attention(q, q, q), torch.einsum("tbij,tbkj->tbik", q, q)

    q = _spikes((2, 3, 4, 5), p=0.5)  # [T, B, tokens, dim]
    by = {r.name: r for r in ne.measure(Attention(), q).layers}
    coincident = float((q @ q.transpose(-1, -2)).sum())
    assert by["Attention/scaled_dot_product_attention#0.qk"].macs == coincident
    # real attention weights times V spikes: each V spike is read by every query row (4 tokens)
    assert by["Attention/scaled_dot_product_attention#0.av"].synops == float(q.sum()) * 4
    assert by["Attention/einsum#1"].macs == 2 * 3 * 4 * 4 * 5  # dense: product of all index sizes

    # a fused kernel the monitor cannot see into (MultiheadAttention's fast path) is named, not zero
    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = torch.nn.MultiheadAttention(8, 2)

        def forward(self, x):
            return self.mha(x, x, x)[0]

    with pytest.raises(ConfigError, match=r"'mha' \(MultiheadAttention\)"):
        ne.measure(Wrap().eval(), _spikes((4, 2, 8)))


def test_average_pooled_spikes_cost_synops_not_macs():
    """Average pooling of spikes folds into the next synapse (as the Loihi export does): every spike of a
    window reaches the next layer through its pooled position, so the next layer costs count x fan-out
    synaptic operations, not dense MACs."""
    import neuromorph as nm

    torch.manual_seed(0)
    lin = nm.nn.Linear(2 * 2 * 2, 3)
    net = torch.nn.Sequential(nm.nn.AvgPool2d(2), nm.nn.Flatten(), lin)
    x = (torch.rand(4, 2, 2, 4, 4) < 0.3).float()  # [T, B, C, H, W] spikes
    report = ne.measure(net, x, hardware="cmos45nm")
    last = report.layers[-1]
    assert last.macs == 0 and last.input_type == "counts"
    # each input spike reaches all 3 outputs through its pooled position
    assert last.synops == pytest.approx(x.sum().item() * 3)
    # a real-valued input to the same pooling still costs dense MACs downstream
    real = ne.measure(net, torch.rand(4, 2, 2, 4, 4) * 0.7, hardware="cmos45nm").layers[-1]
    assert real.macs > 0 and real.synops == 0
