"""Distributed data parallel set-up for ``torchrun --nproc_per_node N -m neuromorph train ...``.

torchrun exports RANK, LOCAL_RANK and WORLD_SIZE (plus MASTER_ADDR/PORT); with WORLD_SIZE > 1 the
process group is started here (gloo on CPU, NCCL on CUDA) and the loop wraps the model in
``DistributedDataParallel``. Each rank takes its contiguous slice of every global batch
(``neuromorph.train.data.shard``), so N processes with batch B/N each compute the same mean gradient
as one process with batch B. BatchNorm statistics stay per process (as with plain DDP): the result
equals the single-process run only for models without batch statistics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    comm_device: str = "cpu"  # where collective tensors must live (cuda for NCCL)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    comm = f"cuda:{local_rank}" if dist.get_backend() == "nccl" else "cpu"
    return DistInfo(rank, world, local_rank, comm)


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over ranks (returns it unchanged for one process)."""
    if info.enabled:
        moved = tensor.to(info.comm_device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        return moved.to(tensor.device)
    return tensor


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank if ``flag`` is true on any rank (so that all ranks stop at the same step)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.comm_device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
