"""PNG figures of FEAST and HD-SNN: written atomically, real PNGs, bad paths refused."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from neuromorph.data.events import make_events  # noqa: E402
from neuromorph.errors import ConfigError  # noqa: E402
from neuromorph.features import HDSNN, FeastLayer  # noqa: E402
from neuromorph.features.plot import plot_feast_kernels, plot_hdsnn_kernels, plot_threshold_trajectories  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_write_png_files(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    ev = make_events(rng.integers(0, 10, n), rng.integers(0, 8, n), np.cumsum(rng.integers(0, 300, n)),
                     rng.integers(0, 2, n))
    layer = FeastLayer(5, (10, 8), n_channels=2, radius=1, tau=500.0, init_threshold=0.5)
    trace = layer.fit(ev, record_every=100)
    paths = [plot_feast_kernels(layer, tmp_path / "k.png"),
             plot_threshold_trajectories(trace, tmp_path / "sub" / "t.png", layer.delta_open, layer.delta_close),
             plot_hdsnn_kernels(HDSNN(2, n_delays=3, kernel_size=(3, 3)), tmp_path / "h.png")]
    umask = os.umask(0)
    os.umask(umask)
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    # nothing but the three figures: no temp files left behind
    assert sorted(q.name for q in tmp_path.rglob("*") if q.is_file()) == ["h.png", "k.png", "t.png"]
    with pytest.raises(ConfigError, match=r"\.png"):
        plot_feast_kernels(layer, tmp_path / "k.pdf")
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # every figure closed, the refused one too
