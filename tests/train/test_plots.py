"""Run plots: whole-epoch ticks, rasters that show the active neurons of a mostly silent layer, spikes
recorded from every layer the protocol calls a neuron (also one run step by step)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("matplotlib")

import neuromorph.nn as nnm  # noqa: E402
from neuromorph.train import plots  # noqa: E402


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures plots would save (and close) so that their axes can be read."""
    kept = []

    def keep(fig, path):
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


def test_curves_have_whole_epoch_ticks(figures, tmp_path):
    records = [{"epoch": e, "train_loss": 1.0 / (e + 1), "train_accuracy": 0.2 * e, "val_loss": 1.1 / (e + 1),
                "val_accuracy": 0.2 * e} for e in (1, 2, 3)]
    plots.plot_curves(records, tmp_path / "curves.png")
    for ax in figures[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_raster_shows_the_active_neurons_of_a_mostly_silent_layer(figures, tmp_path):
    spikes = torch.zeros(20, 1, 256)
    spikes[::2, 0, 200] = 1
    spikes[3, 0, 7] = 1
    spikes[5:9, 0, 250] = 1
    rows, label = plots.raster_rows(spikes[:, 0])
    assert rows.tolist() == [7, 200, 250] and label == "3 active neurons of 256"
    plots.plot_raster({"net.1": spikes[:, 0]}, tmp_path / "raster.png")
    ax = figures[0].axes[0]
    assert ax.get_ylim() == (-0.5, 2.5)  # three rows, not 256 mostly empty ones
    assert "showing 3 active neurons of 256" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["7", "200", "250"]
    # more active neurons than rows: the most active ones, in index order
    many = torch.zeros(5, 10)
    many[:, 9] = 1
    many[:2, 4] = 1
    many[0, :] = 1
    rows, label = plots.raster_rows(many, max_neurons=2)
    assert rows.tolist() == [4, 9] and label == "the 2 most active of 10 active neurons (of 10)"


def test_record_spikes_reads_the_protocol_including_step_by_step_neurons():
    torch.manual_seed(0)
    ann = torch.nn.Sequential(nnm.Linear(4, 6), nnm.QCFS(levels=4, lam=1.0))
    snn = nnm.convert_to_snn(ann)
    x = torch.rand(8, 1, 4)
    got = plots.record_spikes(snn, x)
    assert list(got) == ["model.1"] and got["model.1"].shape == (8, 6)
    with torch.no_grad():
        out = snn(x)  # the last layer's output per step: spike * lambda
    assert torch.equal(got["model.1"], out[:, 0])
    hoyer = torch.nn.Sequential(nnm.Linear(4, 6), nnm.HoyerSpike(), nnm.Linear(6, 2), nnm.LI()).eval()
    assert list(plots.record_spikes(hoyer, x)) == ["1"]  # a spiking layer; the LI readout is not
