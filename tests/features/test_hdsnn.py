"""HD-SNN (METHODS.md §7): dense conv3d vs the event-driven sum, causality, pruning invariances,
cost model, learning on synthetic motion, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuromorph.data.events import make_events
from neuromorph.errors import ConfigError, DataFormatError, ShapeError
from neuromorph.features.hdsnn import (HDSNN, accuracy, bin_events, evidence_from_events, fit, motion_clips,
                                       spike_threshold)


def sparse_input(shape=(2, 12, 9, 8), density=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).double()


def model(contrast_symmetry=False, seed=0, **kw):
    m = HDSNN(3, n_delays=4, kernel_size=(3, 5), contrast_symmetry=contrast_symmetry, seed=seed, **kw).double()
    with torch.no_grad():
        m.kernel.normal_(generator=torch.Generator().manual_seed(seed))
    return m


def test_dense_conv_equals_event_driven_sum():
    m = model()
    a = sparse_input()
    dense = m.evidence(a)[0].detach().numpy()
    event, ops = evidence_from_events(a, m.kernel)
    np.testing.assert_allclose(dense, event, rtol=0, atol=1e-12)
    # a direct transcription of B(c,t,x,y) = Σ K(c,p,d,δx,δy) A(p, t−d, x−δx, y−δy) at a few points
    k, A = m.kernel.detach().numpy(), a.numpy()
    for c, t, x, y in [(0, 5, 4, 4), (2, 11, 0, 7), (1, 0, 8, 0)]:
        s = 0.0
        for p in range(2):
            for d in range(4):
                for i, dx in enumerate(range(-1, 2)):
                    for j, dy in enumerate(range(-2, 3)):
                        tt, xx, yy = t - d, x - dx, y - dy
                        if tt >= 0 and 0 <= xx < 9 and 0 <= yy < 8:
                            s += k[c, p, d, i, j] * A[p, tt, xx, yy]
        assert dense[c, t, x, y] == pytest.approx(s, abs=1e-12)
    assert 0 < ops <= int(a.sum()) * k.size


def test_contrast_symmetry_is_max_over_polarity_swap():
    m = model(contrast_symmetry=True)
    a = sparse_input(seed=1)
    b = m.evidence(a)[0].detach().numpy()
    e1, _ = evidence_from_events(a, m.kernel)
    e2, _ = evidence_from_events(a.flip(0), m.kernel)
    np.testing.assert_allclose(b, np.maximum(e1, e2), atol=1e-12)
    logits = m(a)
    np.testing.assert_allclose((logits - m.evidence(a)).detach().numpy(),
                               np.broadcast_to(m.bias.detach().numpy()[None, :, None, None, None], logits.shape))


def test_causal_output_ignores_future_input():
    m = model(contrast_symmetry=True)
    a = sparse_input(density=0.1, seed=2)
    t0 = 6
    b = a.clone()
    b[:, t0 + 1:] = sparse_input(density=0.3, seed=3)[:, t0 + 1:]
    assert not torch.equal(a, b)
    out_a, out_b = m(a), m(b)
    torch.testing.assert_close(out_a[:, :, : t0 + 1], out_b[:, :, : t0 + 1], rtol=0, atol=0)
    assert not torch.allclose(out_a[:, :, t0 + 1:], out_b[:, :, t0 + 1:])


def test_pruning_zero_weights_changes_nothing_and_costs_scale_with_synapses():
    m = model()
    with torch.no_grad():
        m.kernel[m.kernel.abs() < 0.5] = 0.0  # about 38% of the synapses are gone
    nnz = m.n_synapses
    assert 0 < nnz < m.kernel.numel()
    same = m.pruned(nnz)  # removing only zero-weight synapses
    a = sparse_input(seed=4)
    torch.testing.assert_close(same(a), m(a), rtol=0, atol=0)
    _, ops_full = evidence_from_events(a, m.kernel)
    # away from the borders every input spike of polarity p drives every nonzero synapse of p once
    interior = torch.zeros((2, 20, 30, 30), dtype=torch.float64)
    interior[:, 0, 10:15, 10:15] = a[:, 0, :5, :5]
    _, ops = evidence_from_events(interior, m.kernel)
    nnz_p = (m.kernel.detach() != 0).sum(dim=(0, 2, 3, 4))
    assert ops == int((interior.sum(dim=(1, 2, 3)) * nnz_p).sum()) > 0
    assert ops_full <= int((a.sum(dim=(1, 2, 3)) * nnz_p).sum())


def test_pruned_keeps_largest_weights_and_shortened_keeps_short_delays():
    m = model()
    p = m.pruned(10)
    assert p.n_synapses == 10
    kept = m.kernel.detach().abs()[p.kernel.detach() != 0]
    dropped = m.kernel.detach().abs()[p.kernel.detach() == 0]
    assert kept.min() >= dropped.max()
    s = m.shortened(2)
    assert torch.equal(s.kernel[:, :, :2], m.kernel[:, :, :2]) and (s.kernel[:, :, 2:] == 0).all()
    assert m.pruned(0).n_synapses == 0
    with pytest.raises(ConfigError, match="n_keep"):
        m.pruned(m.kernel.numel() + 1)


def test_bin_events_and_spike_threshold():
    ev = make_events([0, 3, 3, 1], [1, 2, 2, 0], [0, 999, 1500, 9000], [1, 0, 0, 1])
    a = bin_events(ev, (4, 3), n_steps=5, dt=1000)
    assert a.shape == (2, 5, 4, 3) and a.sum() == 3  # t = 9000 µs falls after 5 bins
    assert a[1, 0, 0, 1] == 1 and a[0, 0, 3, 2] == 1 and a[0, 1, 3, 2] == 1
    with pytest.raises(DataFormatError, match="'x'"):
        bin_events(make_events([4], [0], [0], [0]), (4, 3), 5, 1000)
    for bad_dt in ("1ms", float("inf"), 0):
        with pytest.raises(ConfigError, match="dt"):
            bin_events(ev, (4, 3), 5, bad_dt)
    e = torch.arange(100_000, dtype=torch.float64).reshape(1, 1, 100, 10, 100)
    th = spike_threshold(e, rate_hz=10.0, dt=1000.0)  # 1% of the entries
    assert int((e > th).sum()) == 1000
    big = torch.zeros(17_000_000)  # over torch.quantile's 16M limit: every entry must count, not a prefix
    big[-1_000_000:] = torch.arange(1, 1_000_001, dtype=torch.float32)
    assert int((big > spike_threshold(big, rate_hz=10.0, dt=1000.0)).sum()) == 170_000
    m = model(contrast_symmetry=True)
    a = sparse_input(shape=(1, 2, 40, 9, 8), density=0.1, seed=7)
    th = spike_threshold(m(a), rate_hz=50.0, dt=1000.0)  # 5% of the (c, t, x, y) entries
    s = m.spikes(a, th)
    assert set(s.unique().tolist()) == {0.0, 1.0}
    assert int(s.sum()) == round(0.05 * s.numel())
    with pytest.raises(ConfigError, match="rate_hz"):
        spike_threshold(m(a), rate_hz=2000.0, dt=1000.0)


@pytest.fixture
def one_thread():
    # a tiny conv3d: one thread avoids oversubscribing the shared CPU (and is as fast)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_learns_motion_direction_from_synthetic_events(one_thread):
    torch.manual_seed(0)
    a, y = motion_clips(48, size=12, n_steps=14, n_directions=4, threshold=0.5, seed=0)
    at, yt = motion_clips(24, size=12, n_steps=14, n_directions=4, threshold=0.5, seed=1)
    assert 0.01 < float(a.mean()) < 0.5 and set(y.tolist()) == {0, 1, 2, 3}
    m = HDSNN(4, n_delays=4, kernel_size=(5, 5), contrast_symmetry=True, seed=0)
    before = accuracy(m, at, yt, warmup=3)
    result = fit(m, a, y, epochs=12, lr=3e-2)
    assert result.losses[-1] < result.losses[0]
    after = accuracy(m, at, yt, warmup=3)
    assert after > 0.6 and after > before + 0.2  # chance is 0.25


def test_bad_input_errors():
    with pytest.raises(ConfigError, match="kernel_size"):
        HDSNN(2, kernel_size=(4, 5))
    with pytest.raises(ConfigError, match="n_classes"):
        HDSNN(0)
    with pytest.raises(ConfigError, match="contrast_symmetry"):
        HDSNN(2, n_polarities=1)
    m = HDSNN(2, n_delays=2, kernel_size=(3, 3))
    with pytest.raises(ShapeError, match=r"\[B, P=2"):
        m(torch.zeros(1, 3, 4, 5, 5))
    with pytest.raises(ConfigError, match="labels"):
        fit(m, torch.zeros(2, 2, 4, 5, 5), torch.tensor([0, 2]))
    with pytest.raises(ShapeError, match="integer"):
        fit(m, torch.zeros(2, 2, 4, 5, 5), torch.tensor([0.0, 1.0]))
    assert len(fit(m, torch.zeros(2, 2, 4, 5, 5), torch.tensor([0, 1], dtype=torch.int32)).losses) == 10
