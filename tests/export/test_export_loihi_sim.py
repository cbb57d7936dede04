"""Bit-accurate Loihi simulator against integer traces computed by hand (3 neurons), and the netx reader's
handling of damaged and foreign files."""

import h5py
import numpy as np
import pytest

from neuromorph.errors import DataFormatError, ShapeError
from neuromorph.export.loihi import simulate
from neuromorph.export.netx import NetxLayer, NetxNetwork, read_netx, write_netx


def _net(tmp_path, **kw):
    layer = dict(
        kind="dense",
        weight=np.array([[100, 0], [50, 50], [-20, 127]]),
        shape=(3,),
        i_decay=4096,
        v_decay=1024,
        v_th_mant=150,
    )
    layer.update(kw)
    p = tmp_path / "net.h5"
    write_netx(NetxNetwork(input_shape=(2,), layers=[NetxLayer(**layer)]), p)
    return p


INPUT = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 0], [0, 0]])


def test_lif_trace_by_hand(tmp_path):
    # a[t] = W s[t-1] (one step synaptic latency):
    #   a1 = [100, 50, -20], a2 = [100, 100, 107], a3 = [0, 50, 127], a4 = [100, 50, -20]
    # iDecay = 4096 -> u[t] = a[t] << 6; vDecay = 1024 -> v keeps 3072/4096, rounded toward zero; vth = 150 << 6 = 9600
    # t1: v = [6400, 3200, -1280]
    # t2: v = [4800+6400=11200 (spike, ->0), 2400+6400=8800, -960+6848=5888]
    # t3: v = [0, 6600+3200=9800 (spike), 4416+8128=12544 (spike)]
    # t4: v = [6400, 3200, -1280];  t5: v = [4800, 2400, -960]
    res = simulate(_net(tmp_path), INPUT)
    s = res.spikes[0][:, 0]
    assert s.shape == (6 + 1, 3)
    expected = np.zeros((7, 3), int)
    expected[2, 0] = 1
    expected[3, 1] = expected[3, 2] = 1
    np.testing.assert_array_equal(s, expected)
    v = res.voltage[:, 0]
    np.testing.assert_array_equal(v[1], [6400, 3200, -1280])
    np.testing.assert_array_equal(v[2], [11200, 8800, 5888])  # stored before the reset
    np.testing.assert_array_equal(v[3], [0, 9800, 12544])
    np.testing.assert_array_equal(v[4], [6400, 3200, -1280])
    np.testing.assert_array_equal(v[5], [4800, 2400, -960])
    # aligned() removes the one-step latency
    np.testing.assert_array_equal(res.aligned(0)[:, 0], expected[1:7])


def test_cuba_current_decay_and_rounding_toward_zero(tmp_path):
    # iDecay = 1024: u keeps 3072/4096 of itself; vDecay = 0 (no leak): v integrates u; bias 1 -> +64 from step 0
    # weights [[-1,0],[3,0],[0,0]] chosen so that products are not multiples of 4096:
    # input spike on channel 0 at t=0 only -> a1 = [-1, 3, 0]
    # n0: v0 = 64; u1 = -64, v1 = 64-64+64 = 64; u2 = trunc(-48.0) = -48, v2 = 80; u3 = -36, v3 = 108;
    #     u4 = -27, v4 = 145; u5 = trunc(-20.25) = -20 (floor would be -21), v5 = 189
    # n1: v0 = 64; u1 = 192, v1 = 320; u2 = 144, v2 = 528; u3 = 108, v3 = 700; u4 = 81, v4 = 845;
    #     u5 = trunc(60.75) = 60, v5 = 969
    # n2: bias only: v[t] = 64 (t + 1)
    p = _net(tmp_path, weight=np.array([[-1, 0], [3, 0], [0, 0]]), i_decay=1024, v_decay=0, v_th_mant=100000, bias=np.array([1, 1, 1]))
    x = np.zeros((6, 2), int)
    x[0, 0] = 1
    res = simulate(p, x, num_steps=6)
    v = res.voltage[:, 0]
    np.testing.assert_array_equal(v[:, 0], [64, 64, 80, 108, 145, 189])
    np.testing.assert_array_equal(v[:, 1], [64, 320, 528, 700, 845, 969])
    np.testing.assert_array_equal(v[:, 2], 64 * np.arange(1, 7))
    assert res.spikes[0].sum() == 0


def test_voltage_decay_rounds_toward_zero(tmp_path):
    # weight -1 on channel 0, vDecay 1024 (v keeps 3/4), bias -1 -> -64 per step from step 0:
    # v0 = -64; v1 = -48 - 64 - 64 = -176; v2 = -132 - 64 = -196; v3 = -147 - 64 = -211;
    # v4 = trunc(-158.25) - 64 = -222; v5 = trunc(-166.5) - 64 = -166 - 64 = -230 (floor would give -231)
    p = _net(tmp_path, weight=np.array([[-1, 0], [0, 0], [0, 1]]), bias=np.array([-1, 0, 0]))
    x = np.zeros((6, 2), int)
    x[0, 0] = 1
    res = simulate(p, x, num_steps=6)
    np.testing.assert_array_equal(res.voltage[:, 0, 0], [-64, -176, -196, -211, -222, -230])


def test_two_layers_latency_and_axonal_delay(tmp_path):
    # layer 1: identity-like weights, spikes one step after the input; layer 2 has a delay of 2 on its only synapse
    l1 = NetxLayer(kind="dense", weight=np.array([[127, 0], [0, 127], [0, 0]]), shape=(3,), i_decay=4096, v_decay=4096, v_th_mant=100)
    l2 = NetxLayer(
        kind="dense", weight=np.array([[127, 0, 0]]), shape=(1,), i_decay=4096, v_decay=4096, v_th_mant=100, delay=np.array([[2, 0, 0]])
    )
    p = tmp_path / "two.h5"
    write_netx(NetxNetwork(input_shape=(2,), layers=[l1, l2]), p)
    x = np.zeros((8, 2), int)
    x[1, 0] = 1
    res = simulate(p, x)
    assert np.flatnonzero(res.spikes[0][:, 0, 0]).tolist() == [2]  # input at 1, +1 latency
    assert np.flatnonzero(res.spikes[1][:, 0, 0]).tolist() == [5]  # 2 + 1 latency + 2 delay
    assert np.flatnonzero(res.aligned(1)[:, 0, 0]).tolist() == [3]  # model time: 1 + delay 2


def test_conv_layer_matches_manual_correlation(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.integers(-5, 6, size=(2, 1, 3, 3))
    layer = NetxLayer(kind="conv", weight=w, shape=(2, 4, 4), i_decay=4096, v_decay=4096, v_th_mant=100000, padding=(1, 1))
    p = tmp_path / "conv.h5"
    write_netx(NetxNetwork(input_shape=(1, 4, 4), layers=[layer]), p)
    x = rng.integers(0, 2, size=(3, 1, 4, 4))
    res = simulate(p, x, num_steps=4)
    xp = np.pad(x[0, 0], 1)
    manual = np.zeros((2, 4, 4), int)
    for o in range(2):
        for i in range(4):
            for j in range(4):
                manual[o, i, j] = (xp[i : i + 3, j : j + 3] * w[o, 0]).sum()
    # vDecay = 4096: v = u = a << 6 each step
    np.testing.assert_array_equal(res.voltage[1, 0], manual << 6)


def test_reader_rejects_damaged_and_foreign_files(tmp_path):
    p = _net(tmp_path)
    data = p.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFormatError, match="truncated.h5"):
        simulate(bad, INPUT)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(DataFormatError, match="HDF5"):
        read_netx(garbage)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["spikes/times"] = np.arange(3)
    with pytest.raises(DataFormatError, match="no '/layer' group"):
        read_netx(foreign)
    missing = tmp_path / "missing.h5"
    with h5py.File(p, "r") as src, h5py.File(missing, "w") as dst:
        src.copy("layer", dst)
        del dst["layer/1/neuron/vThMant"]
    with pytest.raises(DataFormatError, match="vThMant"):
        read_netx(missing)
    out_of_range = tmp_path / "range.h5"
    with h5py.File(p, "r") as src, h5py.File(out_of_range, "w") as dst:
        src.copy("layer", dst)
        dst["layer/1/neuron/vDecay"][()] = 5000
    with pytest.raises(DataFormatError, match="vDecay=5000"):
        read_netx(out_of_range)
    with pytest.raises(ShapeError):
        simulate(p, np.zeros((4, 3)))
    with pytest.raises(ShapeError, match="non-negative integer"):
        simulate(p, np.full((4, 2), 0.5))


def test_write_is_atomic(tmp_path, monkeypatch):
    p = _net(tmp_path)
    before = p.read_bytes()
    bad = NetxLayer(kind="dense", weight=np.array([[1]]), shape=(1,), i_decay=4096, v_decay=0, v_th_mant=1)
    bad.bias = object()  # h5py cannot store it: the write fails half-way
    with pytest.raises(Exception):
        write_netx(NetxNetwork(input_shape=(1,), layers=[bad]), p)
    assert p.read_bytes() == before
    assert [q.name for q in tmp_path.iterdir()] == ["net.h5"]
