"""The data order: which examples a step trains on, as a pure function of the step (so a resumed run continues
exactly where it stopped)."""

from __future__ import annotations

import torch


def batch_indices(n_examples: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The example indices of batch number `step`: a stream of seeded per-epoch shuffles, cut into batches.

    It depends only on (n_examples, batch_size, step, seed), so a resumed run continues exactly.
    """
    out, position = [], step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(position, n_examples)
        order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        take = order[offset : offset + batch_size - len(out)].tolist()
        out += take
        position += len(take)
    return out
