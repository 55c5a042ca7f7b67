"""Data parallelism with torch.distributed: the same scripts, launched by `torchrun`, on N processes (ranks).

    torchrun --nproc_per_node=2 experiments/run_reft.py ...          # gloo on CPU, NCCL on GPUs

Every rank holds the whole policy (DDP), or its decoder layers sharded 1/N (FSDP2, `--fsdp`). The batch sizes in
the settings are global: a step's questions are split between the ranks, and each rank samples, scores and runs
GAE on its own share. What crosses ranks:
  - the sums that define the update: advantage-whitening moments and the loss normaliser (the global minibatch's
    tokens or sequences), so the summed gradient is the one a single process gets on the whole batch;
  - the gradients, summed, so every replica takes the same optimizer step;
  - "is everything finite", so a skipped step is skipped everywhere; metrics, averaged; evaluation answers.
Rank 0 alone writes files (`main_only`); the others wait at a barrier, then read what it wrote.

Without torchrun (no WORLD_SIZE in the environment) nothing here communicates: every function is the
single-process identity, so the training code reads the same either way.
"""

from __future__ import annotations

import functools
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join the process group that torchrun describes in the environment. No-op without torchrun, or if joined.

    gloo carries CPU tensors; with GPUs NCCL carries CUDA tensors and each rank takes GPU number LOCAL_RANK.
    Ranks other than 0 print nothing to stdout (and show no progress bars), so the output reads as one run's.
    """
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    if not is_main():
        sys.stdout = open(os.devnull, "w")
        from transformers.utils import logging  # its "Loading weights" bars

        logging.disable_progress_bar()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


_writing = 0  # depth of main_only calls in progress (on rank 0, one may call another)


def main_only(fn):
    """Decorator for functions that write files: rank 0 runs `fn` (the others get None), then every rank waits at
    a barrier, so whatever rank 0 wrote is there once anyone goes on. Every rank must make the call. A call from
    inside another such function (on rank 0 only, then) just runs: the outer call holds the barrier."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _writing
        if _writing:
            return fn(*args, **kwargs)
        _writing += 1
        try:
            result = fn(*args, **kwargs) if is_main() else None
        finally:
            _writing -= 1
        barrier()
        return result

    return wrapper


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """`tensor` reduced over ranks in place (sum, min or max), and returned."""
    if world_size() > 1:
        dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op])
    return tensor


def all_true(flag: bool) -> bool:
    """True when `flag` holds on every rank (so every rank takes the same branch)."""
    return bool(all_reduce(torch.tensor(float(flag)), "min"))


def gather(items: list) -> list:
    """Every rank's `items` (small picklable objects), concatenated in rank order, on every rank."""
    if world_size() == 1:
        return list(items)
    parts: list = [None] * world_size()
    dist.all_gather_object(parts, list(items))
    return [x for part in parts for x in part]


def per_rank(total: int, what: str) -> int:
    """`total` / N: one rank's part of a global batch size, which must split evenly."""
    if total % world_size():
        raise ValueError(
            f"{what} = {total} does not split evenly over {world_size()} processes; "
            f"make it a multiple of {world_size()}"
        )
    return total // world_size()


def split_evenly(items: list, what: str = "batch") -> list:
    """This rank's contiguous block of `items`: rank r of N takes the r-th of N equal blocks."""
    size = per_rank(len(items), f"a {what} of size")
    return items[rank() * size : (rank() + 1) * size]


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers to every rank, as DDP's constructor does: the replicas start identical."""
    if world_size() > 1:
        for t in [*module.parameters(), *module.buffers()]:
            if not isinstance(t, DTensor):  # FSDP2 shards are consistent by construction
                dist.broadcast(t.data, src=0)


def all_reduce_gradients(params: list[torch.nn.Parameter], bucket_numel: int = 1 << 24) -> None:
    """Sum the gradients of replicated parameters over ranks, one flat all-reduce per bucket of ~16M numbers.

    FSDP2's sharded parameters (DTensors) are skipped: their gradients were already reduce-scattered in backward.
    A parameter that got no gradient on this rank takes part with zeros, so every rank sends the same buckets.
    """
    if world_size() == 1:
        return
    replicated = [p for p in params if not isinstance(p, DTensor)]
    for p in replicated:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    bucket: list[torch.nn.Parameter] = []
    for p, following in zip(replicated, [*replicated[1:], None]):
        bucket.append(p)
        if following is None or following.grad.dtype != p.grad.dtype or sum(q.numel() for q in bucket) >= bucket_numel:
            flat = all_reduce(torch.cat([q.grad.reshape(-1) for q in bucket]))
            for q, g in zip(bucket, flat.split([q.numel() for q in bucket])):
                q.grad.copy_(g.view_as(q))
            bucket = []
