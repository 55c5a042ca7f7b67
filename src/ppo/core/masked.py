"""Reductions over the valid tokens of a padded batch.

Every tensor of per-token quantities comes with a float `*_mask` of the same shape: 1.0 on tokens that exist
(the response up to and including its EOS), 0.0 on padding. Padding never enters a mean, a variance or a loss.

Shapes: B = rollouts, T = response length.
"""

from __future__ import annotations

from typing import Literal

import torch

Aggregation = Literal["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"]


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """sum(x * mask) / sum(mask), over `dim` or over everything. Empty rows give 0, not NaN."""
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def aggregate(x: torch.Tensor, mask: torch.Tensor, mode: Aggregation, max_tokens: int | None = None) -> torch.Tensor:
    """Reduce a (B, T) per-token loss to a scalar.

    seq_mean_token_mean     (the original ReFT / TRL):  mean_b [ sum_t x_bt m_bt / sum_t m_bt ]
    token_mean              (every token weighs alike): sum_bt x_bt m_bt / sum_bt m_bt
    seq_mean_token_sum_norm (Dr. GRPO):                 mean_b [ sum_t x_bt m_bt / max_tokens ]

    The first divides each response by its own length, so a short response's tokens weigh more than a long one's:
    a long wrong answer is penalised less per token, and wrong answers drift longer (Liu et al. 2025). The last
    divides every response by the same constant, the response length limit (max_new_tokens), which does not
    change from batch to batch as a token count would; a response that fills the limit weighs as in the first.
    """
    if mode == "seq_mean_token_mean":
        return masked_mean(x, mask, dim=1).mean()
    if mode == "token_mean":
        return masked_mean(x, mask)
    if mode == "seq_mean_token_sum_norm":
        if not max_tokens:
            raise ValueError("seq_mean_token_sum_norm needs max_tokens, the constant every response is divided by")
        return (x * mask).sum(1).mean() / max_tokens
    raise ValueError(f"unknown aggregation {mode!r}; choose seq_mean_token_mean, token_mean or seq_mean_token_sum_norm")


def aggregate_size(mask: torch.Tensor, mode: Aggregation) -> torch.Tensor:
    """What a batch counts as under `aggregate`: its sequences for the two seq_mean modes, its valid tokens for
    token_mean. (A float tensor, so that it can be all-reduced over ranks.)

    For gradient accumulation: summing `aggregate(micro) * aggregate_size(micro) / aggregate_size(mini)` over the
    micro-batches of a mini-batch gives exactly `aggregate(mini)`.
    """
    if mode == "token_mean":
        return mask.sum().float()
    return torch.tensor(float(mask.shape[0]), device=mask.device)
