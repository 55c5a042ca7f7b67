"""Reductions over the valid tokens of a padded batch.

Every tensor of per-token quantities comes with a float `*_mask` of the same shape: 1.0 on tokens that exist
(the response up to and including its EOS), 0.0 on padding. Padding never enters a mean, a variance or a loss.

Shapes: B = rollouts, T = response length.
"""

from __future__ import annotations

from typing import Literal

import torch

Aggregation = Literal["seq_mean_token_mean", "token_mean"]


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """sum(x * mask) / sum(mask), over `dim` or over everything. Empty rows give 0, not NaN."""
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def aggregate(x: torch.Tensor, mask: torch.Tensor, mode: Aggregation) -> torch.Tensor:
    """Reduce a (B, T) per-token loss to a scalar.

    seq_mean_token_mean (the original ReFT / TRL):  mean_b [ sum_t x_bt m_bt / sum_t m_bt ]
    token_mean          (every token weighs alike): sum_bt x_bt m_bt / sum_bt m_bt
    """
    if mode == "seq_mean_token_mean":
        return masked_mean(x, mask, dim=1).mean()
    if mode == "token_mean":
        return masked_mean(x, mask)
    raise ValueError(f"unknown aggregation {mode!r}; choose seq_mean_token_mean or token_mean")


def aggregate_size(mask: torch.Tensor, mode: Aggregation) -> torch.Tensor:
    """What a batch counts as under `aggregate`: its sequences for seq_mean_token_mean, its valid tokens for
    token_mean. (A float tensor, so that it can be all-reduced over ranks.)

    For gradient accumulation: summing `aggregate(micro) * aggregate_size(micro) / aggregate_size(mini)` over the
    micro-batches of a mini-batch gives exactly `aggregate(mini)`.
    """
    if mode == "seq_mean_token_mean":
        return torch.tensor(float(mask.shape[0]), device=mask.device)
    return mask.sum().float()
