"""Checkpoints: atomic writes, weights-only loads, clear errors for corrupt or foreign files."""

from __future__ import annotations

import os

import pytest
import torch

from neuromorph.errors import CheckpointError
from neuromorph.train import checkpoint as ck


def tiny(n_in: int = 4, n_out: int = 3) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(n_in, 5), torch.nn.ReLU(), torch.nn.Linear(5, n_out))


ck.register_builder("tests.tiny", tiny)


def test_roundtrip_rebuilds_identical_model(tmp_path):
    torch.manual_seed(0)
    model = tiny(4, 3)
    path = ck.save_checkpoint(tmp_path / "a.pt", model, "tests.tiny", {"n_in": 4, "n_out": 3}, info={"epoch": 7})
    loaded, info = ck.load_model(path)
    assert info["epoch"] == 7 and info["builder"] == "tests.tiny"
    assert not loaded.training
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(2, 4)
    assert torch.equal(model(x), loaded(x))


def test_atomic_save_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ck.save_checkpoint(path, tiny(), "tests.tiny", {}, info={"epoch": 1})
    before = path.read_bytes()

    def boom(obj, fh):  # simulate a crash (disk full, Ctrl-C) half way through the write
        fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(path, tiny(), "tests.tiny", {}, info={"epoch": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left behind


@pytest.mark.parametrize("damage", ["truncate", "empty", *(f"garbage{seed}" for seed in range(40))])
def test_corrupt_checkpoint_raises(tmp_path, damage):
    import random

    path = ck.save_checkpoint(tmp_path / "c.pt", tiny(), "tests.tiny", {})
    data = path.read_bytes()
    if damage.startswith("garbage"):
        # random bytes reach the legacy (non-zip) unpickler, which fails in many different ways
        damaged = random.Random(int(damage[len("garbage"):])).randbytes(256)
    else:
        damaged = {"truncate": data[: len(data) // 2], "empty": b""}[damage]
    path.write_bytes(damaged)
    with pytest.raises(CheckpointError, match="c.pt"):
        ck.load_model(path)


def test_foreign_and_incompatible_files(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save(tiny().state_dict(), plain)
    with pytest.raises(CheckpointError, match="not a neuromorph checkpoint"):
        ck.load_model(plain)
    # architecture changed: the stored weights do not fit -> named keys, not a silent partial load
    path = ck.save_checkpoint(tmp_path / "m.pt", tiny(4, 3), "tests.tiny", {"n_in": 4, "n_out": 3})
    ckpt = ck.load_checkpoint(path)
    ckpt["state_dict"]["0.extra"] = torch.zeros(1)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="unexpected keys"):
        ck.load_model(path)
    ckpt["version"] = 99
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="version"):
        ck.load_model(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.load_model(tmp_path / "missing.pt")


def test_loader_never_runs_foreign_code(tmp_path):
    path = ck.save_checkpoint(tmp_path / "x.pt", tiny(), "tests.tiny", {})
    ckpt = ck.load_checkpoint(path)
    ckpt["model"]["builder"] = "os:system"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="outside the neuromorph package.*--trust-builder"):
        ck.load_model(path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": ck.FORMAT, "evil": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"pickled Python objects \(posix.system\)"):
        ck.load_checkpoint(path)


@pytest.mark.parametrize("builder", ["neuromorph.train.checkpoint:os.system", "neuromorph.train.checkpoint:Path",
                                     "neuromorph:importlib.import_module"])
def test_package_trust_does_not_reach_foreign_functions(tmp_path, builder):
    """A name inside neuromorph that reaches a foreign function through a module attribute (os.system with
    kwargs {"command": ...} would run a shell command) is refused, untrusted, before anything is called."""
    path = ck.save_checkpoint(tmp_path / "x.pt", tiny(), "tests.tiny", {})
    ckpt = ck.load_checkpoint(path)
    ckpt["model"] = {"builder": builder, "kwargs": {"command": f"touch {tmp_path / 'pwned'}"}}
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="reaches module|not defined in neuromorph|not found"):
        ck.load_model(path)
    assert not (tmp_path / "pwned").exists()
