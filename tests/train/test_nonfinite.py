"""One NaN sample must not poison the weights: the loop skips batches with a non-finite loss or gradient
(counted in metrics.jsonl, warned with epoch and batch), stops after several in a row, and never writes
non-finite weights as a checkpoint."""

from __future__ import annotations

import pytest
import torch

from neuromorph.errors import NonFiniteError
from neuromorph.train import checkpoint as ck
from neuromorph.train.data import DataBundle, Split
from neuromorph.train.loop import fit
from neuromorph.train.metrics import read_jsonl

from .helpers import toy_bundle, toy_recipe


def _with_nan(bundle: DataBundle, rows: list[int]) -> DataBundle:
    x = bundle.train.x.to(torch.float32).clone()
    x[rows, 2, 0] = float("nan")
    return DataBundle(Split(x, bundle.train.y), bundle.val, bundle.test, bundle.n_classes, bundle.input_shape, bundle.info)


def test_one_nan_sample_is_skipped_and_weights_stay_finite(tmp_path):
    data = _with_nan(toy_bundle(), [17])
    with pytest.warns(RuntimeWarning, match=r"epoch \d batch \d+ .*batch skipped") as caught:
        summary = fit(toy_recipe(), tmp_path, data=data, progress=False)
    messages = [str(w.message) for w in caught]
    assert [m.split(" batch ")[0].split(" at ")[1] for m in messages] == ["epoch 1", "epoch 2", "epoch 3"]
    assert all("training samples with NaN/Inf input: [17]" in m for m in messages)
    assert summary["status"] == "completed"
    records = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "event" not in r]
    assert [r["skipped_batches"] for r in records] == [1, 1, 1]  # the batch holding sample 17, every epoch
    assert all(r["train_loss"] == r["train_loss"] for r in records)  # finite: the bad batch is left out
    for name in ("best.pt", "last.pt"):
        state = ck.load_checkpoint(tmp_path / name)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values()), name
    assert summary["test_accuracy"] > 0.5  # it still learned (3 classes)


def test_nan_in_a_row_stops_with_epoch_and_batch(tmp_path):
    data = _with_nan(toy_bundle(), list(range(96)))  # every sample: every batch is bad
    with pytest.warns(RuntimeWarning), pytest.raises(NonFiniteError, match=r"3 batches in a row.*epoch 1 batch 2"):
        fit(toy_recipe(), tmp_path, data=data, progress=False, max_nonfinite=3)
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()
    events = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r.get("event") == "nonfinite"]
    assert events and events[0]["epoch"] == 1 and events[0]["batch"] == 2


def test_nonfinite_weights_are_never_saved(tmp_path):
    """Weights that became non-finite outside the gradient step (here a method hook, as a delay clamp or
    a weight normalisation could) are refused before any checkpoint is written."""
    from neuromorph.train.loop import Hooks

    class Overflow(Hooks):
        def end_epoch(self, model, epoch):
            with torch.no_grad():
                model.fc1.weight[0, 0] = float("inf")

    with pytest.raises(NonFiniteError, match="'fc1.weight' holds NaN/Inf after epoch 1"):
        fit(toy_recipe(), tmp_path, data=toy_bundle(), progress=False, hooks=Overflow())
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()
