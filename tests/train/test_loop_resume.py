"""The loop: bitwise resume after an interruption, clear errors instead of silent fresh starts."""

from __future__ import annotations

import pytest
import torch

from neuromorph.errors import CheckpointError, ConfigError
from neuromorph.train import checkpoint as ck
from neuromorph.train.loop import fit
from neuromorph.train.metrics import read_jsonl

from .helpers import toy_bundle, toy_recipe


def _strip(records):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def _assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k], k


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = fit(toy_recipe(), out, data=toy_bundle(), progress=False)
    return out, summary


@pytest.mark.parametrize("stop_at", [(1, 2), (0, 5)])  # mid-epoch, and at the last step of an epoch
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, uninterrupted, stop_at):
    full_out, full = uninterrupted
    assert full["status"] == "completed" and full["epochs_completed"] == 3
    out = tmp_path / "run"
    part = fit(toy_recipe(), out, data=toy_bundle(), progress=False, on_step=lambda e, s: (e, s) == stop_at)
    assert part["status"] == "interrupted"
    state = ck.load_checkpoint(out / "last.pt")["train_state"]
    expect_pos = (stop_at[0], stop_at[1] + 1) if stop_at[1] + 1 < 6 else (stop_at[0] + 1, 0)
    assert (state["epoch"], state["step"]) == expect_pos
    resumed = fit(toy_recipe(), out, data=toy_bundle(), progress=False, resume=True)
    assert resumed["status"] == "completed"
    for name in ("last.pt", "best.pt"):
        a, b = ck.load_checkpoint(full_out / name), ck.load_checkpoint(out / name)
        _assert_same_state(a["state_dict"], b["state_dict"])
    # optimiser moments and schedule position match too, so a further epoch would also be identical
    oa = ck.load_checkpoint(full_out / "last.pt")["train_state"]["optimizers"][0]["state"]
    ob = ck.load_checkpoint(out / "last.pt")["train_state"]["optimizers"][0]["state"]
    for k in oa:
        _assert_same_state(oa[k], ob[k])
    assert _strip(read_jsonl(full_out / "metrics.jsonl")) == _strip(read_jsonl(out / "metrics.jsonl"))
    assert resumed["test_accuracy"] == full["test_accuracy"]


def test_training_learns_and_reports(uninterrupted):
    out, summary = uninterrupted
    records = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in records[:-1]] == [1, 2, 3] and records[-1]["event"] == "final"
    assert records[-1]["test_n"] == 30 and summary["n_test"] == 30
    assert records[2]["train_loss"] < records[0]["train_loss"]
    assert summary["test_accuracy"] > 0.6  # well above chance (1/3) on separable rates
    assert len(summary["per_class"]) == 3 and sum(map(sum, summary["confusion"])) == 30
    best = ck.load_checkpoint(out / "best.pt")
    assert best["info"]["epoch"] == summary["best_epoch"]
    assert best["info"]["val_accuracy"] == max(r["val_accuracy"] for r in records[:-1])


def test_no_silent_fresh_start(tmp_path, uninterrupted):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        fit(toy_recipe(), tmp_path / "empty", data=toy_bundle(), progress=False, resume=True)
    with pytest.raises(ConfigError, match="--resume"):
        fit(toy_recipe(), uninterrupted[0], data=toy_bundle(), progress=False)
    out = tmp_path / "corrupt"
    out.mkdir()
    (out / "last.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="last.pt"):
        fit(toy_recipe(), out, data=toy_bundle(), progress=False, resume=True)


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path, uninterrupted):
    import os
    import signal

    def press_ctrl_c(epoch, step):
        if (epoch, step) == (2, 1):
            os.kill(os.getpid(), signal.SIGINT)  # the real signal: handled by the loop, not KeyboardInterrupt
        return False

    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN when started in the background
    part = fit(toy_recipe(), out, data=toy_bundle(), progress=False, on_step=press_ctrl_c)
    assert part["status"] == "interrupted" and part["epochs_completed"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    state = ck.load_checkpoint(out / "last.pt")["train_state"]
    # the flag is read before on_step runs, so the loop stops after the next step (2, 2) and resumes at 3
    assert (state["epoch"], state["step"]) == (2, 3)
    fit(toy_recipe(), out, data=toy_bundle(), progress=False, resume=True)
    a = ck.load_checkpoint(uninterrupted[0] / "last.pt")["state_dict"]
    _assert_same_state(a, ck.load_checkpoint(out / "last.pt")["state_dict"])


def test_delay_recipe_resumes_bitwise_with_sigma_schedule_and_two_optimisers(tmp_path):
    """The SHD/DCLS recipe adds two optimisers, per-epoch schedules, σ shrinking and rounded evaluation:
    an interrupted + resumed run must still equal the uninterrupted one exactly."""
    recipe = toy_recipe(model="neuromorph.models.shd:SHDDelayNet", hooks="dcls-delays", optimizer="adam", schedule="onecycle",
                        readout="summed-softmax", lr=1e-3, weight_decay=1e-5, epochs=4, batch_size=32,
                        model_kwargs={"hidden": 8, "n_hidden_layers": 1, "max_delay": 5, "dropout": 0.2})
    data = toy_bundle(n_train=64, steps=6)
    full = fit(recipe, tmp_path / "full", data=data, progress=False)
    fit(recipe, tmp_path / "part", data=data, progress=False, on_step=lambda e, s: (e, s) == (1, 0))
    fit(recipe, tmp_path / "part", data=data, progress=False, resume=True)
    a = ck.load_checkpoint(tmp_path / "full" / "last.pt")
    b = ck.load_checkpoint(tmp_path / "part" / "last.pt")
    _assert_same_state(a["state_dict"], b["state_dict"])
    sigmas = {k: v for k, v in a["state_dict"].items() if k.endswith("sigma")}
    # σ_init = ⌊K/2⌋ = 2 shrinks to 0.23 at final_epoch = ⌊4/4⌋ = 1 (METHODS §3(b))
    assert sigmas and all(torch.allclose(v, torch.full_like(v, 0.23)) for v in sigmas.values())
    # real-valued positions are kept in training (evaluation rounds them only temporarily)
    pos = [v for k, v in a["state_dict"].items() if k.endswith("positions")]
    assert any((p != p.round()).any() for p in pos)
    assert full["status"] == "completed" and 0.0 <= full["test_accuracy"] <= 1.0
