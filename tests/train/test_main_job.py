"""The main job end to end on the embedded digits-dvs set (small: few samples, narrow model, 1 epoch):
train -> summary -> eval of best.pt (must reproduce the summary's test numbers) -> plots -> report."""

from __future__ import annotations

import json

import pytest

from neuromorph.cli import main
from neuromorph.train import checkpoint as ck


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    argv = ["train", "digits-dvs", "--out", str(out / "run"), "--epochs", "1", "--batch-size", "16", "--seed", "1",
            "--set", "train_limit=112", "--set", "test_limit=32", "--set", "model_kwargs.channels=[4, 8]",
            "--plots", str(out / "plots"), "--no-progress", "--json"]
    return out, argv


def test_train_eval_plot_report(run, capsys):
    out, argv = run
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["n_test"] == 32 and summary["n_train"] == 101
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and len(summary["per_class"]) == 10
    assert set(summary["firing_rate"]) == {"net.2", "net.6"}  # the two LIF layers of NMNISTConvSNN
    assert all(0.0 <= r <= 1.0 for r in summary["firing_rate"].values())

    # the checkpoint knows its recipe: eval needs no other input and reproduces the final test numbers
    assert main(["eval", str(out / "run" / "best.pt"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n"] == 32 and ev["dataset"] == "digits-dvs"
    assert ev["accuracy"] == pytest.approx(summary["test_accuracy"]) and ev["loss"] == pytest.approx(summary["test_loss"])
    assert ev["per_class"] == summary["per_class"] and ev["firing_rate"] == pytest.approx(summary["firing_rate"])
    model, info = ck.load_model(out / "run" / "best.pt")
    assert info["recipe"]["name"] == "digits-dvs" and info["kwargs"]["channels"] == [4, 8]

    for name in ("curves.png", "confusion.png", "firing_rates.png", "raster_sample0.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    assert main(["plot", str(out / "run"), "--sample", "3", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["plots"]
    assert sorted(p.split("/")[-1] for p in written) == ["confusion.png", "curves.png", "firing_rates.png", "raster_sample3.png"]
    assert all(p.startswith(str(out / "run" / "plots")) for p in written)

    report = summary["report"]
    assert report["energy"]["status"] == "ok", report["energy"]
    energy = json.loads((out / "run" / "energy.json").read_text())
    assert energy  # written by the energy module
    # the digits-dvs model (average pooling, hard-reset LIF) maps to NIR and to Loihi: both files are written
    for step in ("nir", "lava"):
        item = report[step]
        assert item["status"] == "ok", item
        assert (out / "run" / item["file"].split("/")[-1]).stat().st_size > 0


def test_resume_of_finished_run_and_refusal_to_clobber(run, capsys):
    out, argv = run
    if not (out / "run" / "summary.json").exists():  # under xdist the other test may run in another worker
        assert main(argv) == 0
        capsys.readouterr()
    assert main(argv) == 2  # the folder already holds a run
    assert "--resume" in capsys.readouterr().err
    before = json.loads((out / "run" / "summary.json").read_text())
    # resuming a finished run trains nothing more and reproduces the final evaluation
    assert main(["train", "--resume", "--out", str(out / "run"), "--no-report", "--no-progress", "--json"]) == 0
    after = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert after["epochs_completed"] == 1 and after["test_accuracy"] == before["test_accuracy"]
