"""DDP: 2 gloo processes with half the batch each == 1 process with the whole batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from neuromorph.train import checkpoint as ck
from neuromorph.train.loop import fit

from .helpers import toy_bundle, toy_recipe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from neuromorph.train import distributed as dd

    try:
        fit(toy_recipe(model_kwargs={"dropout": 0.0}, epochs=2, pad="batch"), out, data=toy_bundle(steps=9, variable_lengths=True), progress=False)
    finally:
        dd.teardown(dd.DistInfo(rank, world))


@pytest.mark.timeout(120)
def test_two_gloo_processes_equal_one_process(tmp_path):
    # samples of different lengths, each batch cut to its longest sample: the ranks must cut their halves of
    # a global batch to the same length, and evaluation must form the same batches as one process
    recipe = toy_recipe(model_kwargs={"dropout": 0.0}, epochs=2, pad="batch")
    single = fit(recipe, tmp_path / "one", data=toy_bundle(steps=9, variable_lengths=True), progress=False)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=True)
    a = ck.load_checkpoint(tmp_path / "one" / "last.pt")["state_dict"]
    b = ck.load_checkpoint(tmp_path / "two" / "last.pt")["state_dict"]
    moved = 0.0
    for k in a:
        # same samples, same mean gradient; only the summation order of the gradient differs
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    # and training really moved the weights away from the shared initialisation
    init = toy_recipe()
    torch.manual_seed(init.seed)
    from .helpers import TimeMLP

    fresh = TimeMLP(dropout=0.0).state_dict()
    moved = max(float((a[k] - fresh[k]).abs().max()) for k in a)
    assert moved > 1e-2
    summary2 = __import__("json").loads((tmp_path / "two" / "summary.json").read_text())
    assert summary2["n_test"] == single["n_test"] == 30
    assert abs(summary2["test_accuracy"] - single["test_accuracy"]) <= 1 / 30
