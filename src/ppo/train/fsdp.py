"""FSDP2 (`torch.distributed.fsdp.fully_shard`) for full fine-tuning of models whose training state does not fit on
one device: `--fsdp` under torchrun.

What is sharded: every decoder layer's parameters, their gradients and their AdamW moments, 1/N per rank. A layer's
weights are all-gathered just before it runs, forward and backward, and dropped after. The embeddings, the final
norm, the LM head and the value head stay replicated, their gradients summed like DDP's
(`distributed.all_reduce_gradients`); for a 7B Llama that is 4 % of the weights.

Generation gathers every layer once for the whole decode loop (`gathered`), not once per token, and a checkpoint is
written by rank 0 from the whole weights gathered to its CPU. So the weights must fit on one device for a moment
(2 bytes per parameter in bf16), but the training state need not: gradients and AdamW's two moments, 6 more bytes
per parameter in bf16 (12 in fp32), and the reference's weights. Memory per rank: docs/distributed.md.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor

from ..lm.models import decoder_layers
from . import distributed


def shard_layers(lm: nn.Module) -> None:
    """Shard each decoder layer of `lm` over the ranks. Gradients are summed, not averaged: the loss weights are
    already fractions of the global batch (see `ppo.train.distributed`)."""
    for layer in decoder_layers(lm):
        fully_shard(layer)
        layer.set_gradient_divide_factor(1.0)
        layer.set_force_sum_reduction_for_comms(True)  # gloo has no pre-multiplied sum


def units(module: nn.Module) -> list[FSDPModule]:
    return [m for m in module.modules() if isinstance(m, FSDPModule)]


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a sharded tensor; any other tensor as it is."""
    return t.to_local() if isinstance(t, DTensor) else t


def is_sharded(module: nn.Module) -> bool:
    return bool(units(module))


_gathering = 0  # depth of `gathered` contexts in progress: an inner one leaves the weights to the outer one


@contextmanager
def gathered(module: nn.Module):
    """Inside, every sharded layer of `module` holds its full weights as ordinary parameters (one all-gather per
    layer, kept until the exit), so a decode loop runs with no collective at all and ranks may decode different
    numbers of batches. Every rank must enter. No-op without FSDP2, and inside another `gathered`."""
    global _gathering
    sharded = units(module) if not _gathering else []
    _gathering += 1
    for unit in sharded:
        unit.set_reshard_after_forward(False)
        unit.unshard()
    try:
        yield
    finally:
        _gathering -= 1
        for unit in sharded:
            unit.reshard()
            unit.set_reshard_after_forward(True)


def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` over a mix of sharded (DTensor) and replicated gradients: the sharded
    squares are summed over ranks, the replicated ones (equal on every rank) counted once. Returns the norm."""
    grads = [p.grad for p in params if p.grad is not None]
    if not any(isinstance(g, DTensor) for g in grads):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    shards = [local(g) for g in grads]
    sharded = sum(g.float().pow(2).sum() for g, full in zip(shards, grads) if isinstance(full, DTensor))
    replicated = sum(
        (g.float().pow(2).sum() for g, full in zip(shards, grads) if not isinstance(full, DTensor)),
        torch.zeros((), device=shards[0].device),
    )
    norm = (distributed.all_reduce(sharded) + replicated).sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for g in shards:
        g.mul_(scale.to(g.dtype))
    return norm


FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_state_dict(model: nn.Module) -> dict | None:
    """With FSDP2, the whole weights gathered on rank 0 (on CPU; empty elsewhere; every rank must call); else None."""
    return get_model_state_dict(model, options=FULL) if is_sharded(model) else None


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state to save: as it is, or with FSDP2 gathered whole on rank 0 (every rank must call)."""
    return get_optimizer_state_dict(model, optimizer, options=FULL) if is_sharded(model) else optimizer.state_dict()


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Restore a state from `optimizer_state`; with FSDP2 each rank keeps its shard of it."""
    if is_sharded(model):
        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(state)


def shard_for_training(adapter: str, *lms: nn.Module) -> None:
    """`--fsdp`: shard the layers of each LM (the policy's, and a frozen reference's), full fine-tuning only."""
    if adapter != "none":
        raise ValueError(
            "--fsdp shards a full fine-tuning; an adapter policy trains too few parameters to need it "
            "(its frozen base is replicated): drop --fsdp, or use --adapter none"
        )
    for lm in lms:
        shard_layers(lm)
