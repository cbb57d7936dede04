"""The train/eval/plot/bench commands: recipe resolution and the errors users see for bad input."""

from __future__ import annotations

import json

import pytest

from neuromorph.cli import main
from neuromorph.errors import ConfigError
from neuromorph.train.recipes import RECIPES, field_names, resolve_recipe


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_unknown_recipe_lists_valid_ones(capsys):
    rc, out, err = run(capsys, "train", "mnist-typo", "--json")
    assert rc == 2
    error = json.loads(out)["error"]
    assert (error["type"], error["field"], error["exit_code"]) == ("ConfigError", "recipe", 2)
    for name in RECIPES:
        assert repr(name) in err and repr(name) in error["message"]


def test_unknown_option_lists_valid_ones(capsys, tmp_path):
    rc, _, err = run(capsys, "train", "digits-dvs", "--set", "epoch=3")
    assert rc == 2 and "unknown recipe option(s) ['epoch']" in err and "epochs" in err
    cfg = tmp_path / "c.toml"
    cfg.write_text('recipe = "nmnist"\nlearning_rate = 0.1\n')
    rc, _, err = run(capsys, "train", "--config", str(cfg))
    assert rc == 2 and "learning_rate" in err and "lr" in err
    with pytest.raises(ConfigError, match="choose one of"):
        resolve_recipe("digits-dvs", readout="max")
    # a mistyped value is a ConfigError naming the option, not a raw TypeError
    rc, _, err = run(capsys, "train", "digits-dvs", "--set", "lr=fast", "--out", str(tmp_path / "o"))
    assert rc == 2 and "lr='fast' must be a number" in err


def test_set_of_an_option_that_also_has_a_flag(capsys, tmp_path):
    """--set lr=... used to crash (the name was passed twice to dict()); the explicit flag wins over --set."""
    rc, _, err = run(capsys, "train", "digits-dvs", "--set", "lr=-1", "--out", str(tmp_path / "o"))
    assert rc == 2 and "lr=-1 must be > 0" in err
    rc, _, err = run(capsys, "train", "digits-dvs", "--set", "lr=-1", "--lr", "0.01", "--set", "epochs=0", "--out", str(tmp_path / "o"))
    assert rc == 2 and "epochs=0 must be a positive integer" in err and "lr=" not in err
    with pytest.raises(ConfigError, match="must be a non-negative integer"):
        resolve_recipe("digits-dvs", seed=-1)


def test_config_file_and_overrides_precedence(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('recipe = "nmnist"\nepochs = 4\nlr = 0.01\n[model_kwargs]\ntau = 3.0\n')
    r = resolve_recipe(None, cfg, epochs=7, batch_size=None)
    assert (r.name, r.epochs, r.lr, r.batch_size) == ("nmnist", 7, 0.01, RECIPES["nmnist"].batch_size)
    assert r.model_kwargs["tau"] == 3.0
    assert set(r.to_dict()) == set(field_names())
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_recipe("nmnist", bad)


@pytest.mark.parametrize("recipe,expect", [("nmnist", "Train/<label 0-9>/<id>.bin"), ("shd", "shd_train.h5")])
def test_missing_data_root_shows_expected_layout(capsys, tmp_path, recipe, expect):
    rc, out, err = run(capsys, "train", recipe, "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--json")
    assert rc == 1  # a data error (exit status 2 is for a wrong command line)
    assert json.loads(out)["error"]["type"] == "DatasetError"
    assert expect in err and "nope" in err
    rc, _, err = run(capsys, "train", recipe, "--out", str(tmp_path / "o2"))
    assert rc == 1 and "needs --data-root" in err and expect in err


def test_eval_of_corrupt_checkpoint_is_a_clear_error(capsys, tmp_path):
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    rc, out, err = run(capsys, "eval", str(bad), "--json")
    error = json.loads(out)["error"]
    assert rc == 1 and error["type"] == "CheckpointError" and "best.pt" in err and "best.pt" in error["message"]


def test_bench_lists_scripts_and_rejects_unknown_group(capsys, tmp_path):
    (tmp_path / "accuracy.py").write_text("print('{\"ok\": 1}')\n")
    (tmp_path / "data_binning.py").write_text("raise SystemExit(3)\n")
    rc, out, _ = run(capsys, "bench", "accuracy", "--dir", str(tmp_path), "--json")
    result = json.loads(out)
    assert rc == 0 and result["results"][0]["script"] == "accuracy.py" and result["results"][0]["result"] == {"ok": 1}
    rc, out, _ = run(capsys, "bench", "data", "--dir", str(tmp_path), "--json")
    result = json.loads(out)
    assert rc == 1 and result["results"][0]["returncode"] == 3
    assert result["error"]["exit_code"] == 1 and "data_binning.py (exit status 3)" in result["error"]["message"]
    rc, _, err = run(capsys, "bench", "gpu", "--dir", str(tmp_path))
    assert rc == 2 and "'speed'" in err


def test_resume_refuses_options_that_would_change_the_run(capsys, tmp_path):
    rc, _, err = run(capsys, "train", "digits-dvs", "--resume", "--out", str(tmp_path), "--epochs", "3", "--set", "lr=0.1")
    assert rc == 2 and "--epochs" in err and "--set lr" in err
    rc, _, err = run(capsys, "train", "--resume")
    assert rc == 2 and "--resume needs --out" in err
    rc, _, err = run(capsys, "train", "--resume", "--out", str(tmp_path))
    assert rc == 1 and "last.pt" in err  # nothing to resume: an error (no file), never a fresh start
