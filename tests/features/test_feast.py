"""FEAST (METHODS.md §6): exact equality with a plain-Python transcription of the equations, the
unit properties listed in §6d, convergence signals, bad input, and a run on real N-MNIST."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from neuromorph.data.events import make_events
from neuromorph.errors import ConfigError, DataFormatError, ShapeError
from neuromorph.features import FeastLayer, FeastNetwork, feature_histogram


def random_stream(n, size=(12, 10), n_channels=2, seed=0, t0=0):
    rng = np.random.default_rng(seed)
    t = t0 + np.cumsum(rng.integers(0, 400, size=n))
    return make_events(rng.integers(0, size[0], n), rng.integers(0, size[1], n), t, rng.integers(0, n_channels, n))


def reference_feast(streams, w, theta, size, n_channels, radius, tau, eta, d_close, d_open, learn=True):
    """Direct transcription of METHODS.md §6b, one event at a time, in plain Python floats."""
    w = [list(row) for row in w]
    theta = list(theta)
    side = 2 * radius + 1
    winners = []
    for ev in streams:
        surface = {}  # (channel, x, y) -> last timestamp; absent = never (contributes 0)
        for e in ev:
            x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
            ch = int(e["p"]) if n_channels > 1 else 0
            surface[(ch, x, y)] = t
            c = []
            for cc in range(n_channels):
                for dx in range(-radius, radius + 1):
                    for dy in range(-radius, radius + 1):
                        s = surface.get((cc, x + dx, y + dy))
                        c.append(0.0 if s is None else math.exp((s - t) / tau))
            norm = math.sqrt(sum(v * v for v in c))
            c = [v / norm for v in c]
            d = [sum(a * b for a, b in zip(row, c)) for row in w]
            cand = [i for i in range(len(w)) if d[i] > theta[i]]
            if not cand:
                winners.append(-1)
                if learn:
                    theta = [th - d_open for th in theta]
                continue
            j = max(cand, key=lambda i: d[i])
            winners.append(j)
            if learn:
                new = [(1 - eta) * a + eta * b for a, b in zip(w[j], c)]
                n = math.sqrt(sum(v * v for v in new))
                w[j] = [v / n for v in new]
                theta[j] += d_close
    assert len(w[0]) == n_channels * side * side
    return winners, np.array(w), np.array(theta)


@pytest.mark.parametrize("n_channels,radius", [(1, 1), (2, 2)])
def test_matches_reference_transcription(n_channels, radius):
    size = (12, 10)
    streams = [random_stream(300, size, 2, seed=1), random_stream(250, size, 2, seed=2, t0=10**6)]
    layer = FeastLayer(5, size, n_channels=n_channels, radius=radius, tau=800.0, eta=0.05, delta_close=0.01,
                       delta_open=0.02, init_threshold=0.5, seed=3)
    w0, th0 = layer._weights.copy(), layer.thresholds.copy()
    ref_win, ref_w, ref_th = reference_feast(streams, w0, th0, size, n_channels, radius, 800.0, 0.05, 0.01, 0.02)
    trace = layer.fit(streams, record_every=0)
    np.testing.assert_allclose(layer._weights, ref_w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.thresholds, ref_th, rtol=0, atol=1e-12)
    ref_win = np.array(ref_win)
    assert trace.misses == int((ref_win < 0).sum()) and 0 < trace.misses < len(ref_win)
    np.testing.assert_array_equal(trace.wins, np.bincount(ref_win[ref_win >= 0], minlength=5))
    # frozen inference follows the same rule without learning
    w_fit = layer._weights.copy()
    inf_win, w_same, th_same = reference_feast(streams, layer._weights, layer.thresholds, size, n_channels, radius,
                                               800.0, 0.05, 0.01, 0.02, learn=False)
    out = layer.transform(streams)
    inf_win = np.array(inf_win)
    got = np.concatenate([o["p"] for o in out])
    np.testing.assert_array_equal(got, inf_win[inf_win >= 0])
    np.testing.assert_array_equal(layer._weights, w_fit)  # transform() did not learn


def test_time_surface_context_by_hand():
    # one neuron, eta = 1 and a threshold it always beats: after an event, w equals that event's c_hat
    layer = FeastLayer(1, (5, 5), radius=1, tau=1000.0, eta=1.0, delta_close=0.0, delta_open=0.0,
                       init_threshold=-2.0)
    ev = make_events([1, 2], [1, 1], [0, 1000], [0, 1])
    layer.fit(ev)
    expected = np.zeros((3, 3))
    expected[1, 1] = 1.0  # the event itself, dt = 0
    expected[0, 1] = math.exp(-1.0)  # the earlier event at dx = -1, dt = tau
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(layer.weights[0, 0], expected, atol=1e-15)


def test_unit_norm_after_every_update():
    layer = FeastLayer(4, (12, 10), n_channels=2, radius=2, tau=500.0, eta=0.2, init_threshold=0.0, seed=1)
    stream = random_stream(400, n_channels=2, seed=5)
    for k in range(0, 400, 20):  # short samples, checking the norms between them
        layer.fit(stream[k:k + 20], record_every=0)
        np.testing.assert_allclose(np.linalg.norm(layer._weights, axis=1), 1.0, atol=1e-12)
    assert layer.win_counts.sum() > 0


def test_thresholds_move_only_by_close_and_open_steps():
    dc, do = 0.003, 0.011
    layer = FeastLayer(6, (12, 10), n_channels=2, radius=1, tau=700.0, delta_close=dc, delta_open=do,
                       init_threshold=0.9, seed=2)
    stream = random_stream(3000, n_channels=2, seed=6)
    th0 = layer.thresholds.copy()
    trace = layer.fit(stream, record_every=1)
    steps = np.diff(np.vstack([th0, trace.thresholds]), axis=0)
    miss = trace.miss_rate == 1.0
    assert miss.any() and (~miss).any()
    np.testing.assert_allclose(steps[miss], -do, atol=1e-12)
    hit_steps = steps[~miss]
    assert np.all(np.isclose(hit_steps, dc, atol=1e-12).sum(axis=1) == 1)
    assert np.all(np.isclose(hit_steps, 0.0, atol=1e-12).sum(axis=1) == 5)
    # the winner recorded by the step is the one transform-free counting reports
    np.testing.assert_array_equal(np.isclose(hit_steps, dc, atol=1e-12).sum(axis=0), trace.wins)


def test_stationary_stream_equalizes_wins_and_hit_miss_ratio():
    n, dc, do = 8, 0.001, 0.01
    layer = FeastLayer(n, (16, 16), radius=2, tau=2000.0, eta=0.01, delta_close=dc, delta_open=do,
                       init_threshold=0.0, seed=0)
    rng = np.random.default_rng(0)
    m = 200_000
    stream = make_events(rng.integers(0, 16, m), rng.integers(0, 16, m), np.cumsum(rng.integers(0, 200, m)),
                         np.zeros(m))
    burn_in = layer.fit(stream[: m // 2], record_every=5000)
    trace = layer.fit(stream[m // 2:], record_every=5000)
    # steady state: wins_i * delta_close = misses * delta_open for every neuron
    assert trace.hit_miss_ratio == pytest.approx(n * do / dc, rel=0.05)
    assert trace.wins.min() / trace.wins.max() > 0.9
    # thresholds converge: they rise far from 0 during burn-in, then stay nearly flat
    assert burn_in.thresholds[-1].min() > 0.4
    assert np.abs(trace.thresholds[-1] - trace.thresholds[0]).max() < 0.2


def test_context_equal_to_weight_gives_similarity_one():
    layer = FeastLayer(3, (8, 8), n_channels=2, radius=2, seed=4)
    w = layer.weights
    for j in range(3):
        d = layer.similarity(3.7 * w[j])  # any positive scale: cosine similarity
        assert d[j] == pytest.approx(1.0, abs=1e-12)
        assert np.all(np.delete(d, j) < 1.0)


def test_deterministic_under_seed():
    stream = random_stream(2000, n_channels=2, seed=9)
    a, b, c = (FeastLayer(4, (12, 10), n_channels=2, radius=1, tau=500.0, init_threshold=0.3, seed=s)
               for s in (7, 7, 8))
    for layer in (a, b, c):
        layer.fit(stream)
    np.testing.assert_array_equal(a._weights, b._weights)
    np.testing.assert_array_equal(a.transform(stream), b.transform(stream))
    assert not np.array_equal(a._weights, c._weights)


def test_trace_records_convergence_signals():
    layer = FeastLayer(4, (12, 10), n_channels=2, radius=1, tau=500.0, init_threshold=1.0)
    streams = [random_stream(1000, seed=s) for s in range(3)]
    trace = layer.fit(streams, epochs=2, record_every=100)
    assert trace.events == 6000 and trace.thresholds.shape == (60, 4)
    np.testing.assert_array_equal(trace.event_index, np.arange(99, 6000, 100))
    # windows' misses add up to the total; every event is a win or a miss
    assert round(trace.miss_rate.sum() * 100) == trace.misses
    assert trace.wins.sum() + trace.misses == 6000
    # theta starts at 1 > every cosine: the first events miss and open the layer, until the miss
    # rate settles near its steady state 1 / (1 + N * delta_open / delta_close) = 1 / 41
    assert trace.miss_rate[0] >= 0.5
    assert 0.005 < trace.miss_rate[-10:].mean() < 0.08
    assert layer.events_seen == 6000 and len(layer.history) == 1
    np.testing.assert_array_equal(layer.win_counts, trace.wins)


def test_multilayer_network_chains_feature_events():
    size = (12, 10)
    l1 = FeastLayer(4, size, n_channels=2, radius=1, tau=500.0, init_threshold=0.0, seed=0)
    l2 = FeastLayer(3, size, n_channels=4, radius=1, tau=500.0, init_threshold=0.0, seed=1)
    net = FeastNetwork([l1, l2])
    streams = [random_stream(800, seed=s) for s in range(4)]
    traces = net.fit(streams)
    assert len(traces) == 2 and traces[1].events == sum(len(o) for o in l1.transform(streams))
    out = net.transform(streams)
    manual = l2.transform(l1.transform(streams))
    for a, b in zip(out, manual):
        np.testing.assert_array_equal(a, b)
    assert all(o["p"].max() < 3 for o in out)
    with pytest.raises(ConfigError, match="n_channels"):
        FeastNetwork([l1, FeastLayer(3, size, n_channels=2)])


def test_feature_histogram_by_hand():
    ev = np.zeros(5, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int16)])
    ev["x"] = [0, 9, 9, 3, 9]
    ev["y"] = [0, 0, 9, 9, 9]
    ev["p"] = [0, 1, 1, 0, 0]
    h = feature_histogram([ev, ev[:0]], 2, (10, 10), grid=(2, 2), normalize=False)
    # index = f * 4 + cx * 2 + cy
    expected = np.zeros(8)
    expected[[0, 1, 7, 6, 3]] += 1  # (f0,c00) (f0,c01) (f1,c11) (f1,c10) (f0,c11)
    np.testing.assert_array_equal(h[0], expected)
    np.testing.assert_array_equal(h[1], 0)
    np.testing.assert_allclose(feature_histogram(ev, 2, (10, 10))[None], [[0.6, 0.4]])
    for grid, size in (((2, 2, 2), (10, 10)), ((2, 2), (10,)), ((2, 2), (0, 10))):
        with pytest.raises(ConfigError):
            feature_histogram(ev, 2, size, grid=grid)


def test_bad_input_errors():
    layer = FeastLayer(2, (12, 10), n_channels=2)
    good = random_stream(10)
    with pytest.raises(ConfigError, match="n_neurons"):
        FeastLayer(0, (12, 10))
    with pytest.raises(ConfigError, match="tau"):
        FeastLayer(2, (12, 10), tau=0)
    with pytest.raises(ShapeError, match="empty"):
        layer.fit(good[:0])
    with pytest.raises(ShapeError, match="empty"):
        layer.fit([])
    unsorted = good.copy()
    unsorted["t"][4] = -1
    with pytest.raises(DataFormatError, match=r"streams\[1\] field 't' is not sorted: event 4"):
        layer.fit([good, unsorted])
    outside = good.copy()
    outside["x"][3] = 12
    with pytest.raises(DataFormatError, match=r"field 'x': event 3 has x=12"):
        layer.transform(outside)
    neg = good.copy()
    neg["y"][0] = -1
    with pytest.raises(DataFormatError, match="'y'"):
        layer.fit(neg)
    bad_p = good.copy()
    bad_p["p"][2] = 2
    with pytest.raises(DataFormatError, match="'p'"):
        layer.fit(bad_p)
    with pytest.raises(ShapeError, match="lacks field"):
        layer.fit(np.zeros(3, dtype=[("x", int), ("y", int), ("t", int)]))
    with pytest.raises(ShapeError):
        layer.fit(np.zeros((3, 4)))
    # refused input left the layer untouched
    assert layer.events_seen == 0 and layer.win_counts.sum() == 0


def test_real_nmnist_features_classify(shared_data):
    from neuromorph.data import read_nmnist
    from neuromorph.features import LinearReadout

    root = shared_data / "nmnist"
    train_files = sorted((root / "Train").glob("*/*.bin"))[::4]  # 250 of the 1000 training samples
    test_files = sorted((root / "Test").glob("*/*.bin"))
    train = [read_nmnist(f) for f in train_files]
    test = [read_nmnist(f) for f in test_files]
    y_train = np.array([int(f.parent.name) for f in train_files])
    y_test = np.array([int(f.parent.name) for f in test_files])
    n, dc, do = 16, 0.001, 0.01
    layer = FeastLayer(n, (34, 34), radius=3, tau=20_000.0, delta_close=dc, delta_open=do, init_threshold=0.0)
    trace = layer.fit(train)
    # FEAST's steady state on real data: equal win rates, wins / misses near N * delta_open / delta_close
    assert trace.hit_miss_ratio == pytest.approx(n * do / dc, rel=0.1)
    assert trace.wins.min() / trace.wins.max() > 0.95
    h_train = feature_histogram(layer.transform(train), n, (34, 34), grid=(4, 4))
    h_test = feature_histogram(layer.transform(test), n, (34, 34), grid=(4, 4))
    acc = LinearReadout(C=0.1).fit(h_train, y_train).score(h_test, y_test)
    assert acc >= 0.8  # chance is 0.1; the full run (benchmarks/RESULTS.md) trains on all 1000


def test_save_load_roundtrip_and_corrupt_files(tmp_path):
    from neuromorph.errors import CheckpointError

    layer = FeastLayer(4, (12, 10), n_channels=2, radius=1, tau=500.0, init_threshold=0.2, seed=3)
    stream = random_stream(1500, seed=11)
    layer.fit(stream)
    path = layer.save(tmp_path / "feast.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["feast.npz"]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    twin = FeastLayer.load(path)
    np.testing.assert_array_equal(twin.weights, layer.weights)
    np.testing.assert_array_equal(twin.thresholds, layer.thresholds)
    np.testing.assert_array_equal(twin.win_counts, layer.win_counts)
    assert (twin.tau, twin.radius, twin.sensor_size, twin.events_seen) == (500.0, 1, (12, 10), 1500)
    np.testing.assert_array_equal(twin.transform(stream), layer.transform(stream))
    # the loaded layer keeps learning exactly like the original
    layer.fit(stream[:300]), twin.fit(stream[:300])
    np.testing.assert_array_equal(twin._weights, layer._weights)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="junk.npz"):
        FeastLayer.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", format=np.asarray("something else"))
    with pytest.raises(CheckpointError, match="not a FeastLayer"):
        FeastLayer.load(tmp_path / "other.npz")
    with np.load(path) as z:
        bad = dict(z)
    bad["weights"] = bad["weights"][:2]
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(CheckpointError, match="do not match"):
        FeastLayer.load(tmp_path / "bad.npz")
