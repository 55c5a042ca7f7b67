"""Generalized Advantage Estimation (Schulman et al. 2016) and masked whitening.

Shapes: B = rollouts, T = response length.
"""

from __future__ import annotations

from typing import Callable

import torch


@torch.no_grad()
def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, response_mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns by the backward GAE recursion.

        delta_t = r_t + gamma * V_{t+1} - V_t          (V after EOS = 0: the episode ends there)
        A_t     = delta_t + gamma * lam * A_{t+1}
        R_t     = A_t + V_t                            (the value target)

    The paper's text swaps the names of gamma and lambda; the original code (gamma = 1, lam = 0.95) is followed.

    Shape: rewards, values, response_mask (B, T) -> advantages, returns (B, T), zero on padding.
    """
    T = rewards.shape[1]
    advantages = torch.zeros_like(rewards)  # (B, T)
    next_value = torch.zeros_like(rewards[:, 0])  # (B,)
    next_advantage = torch.zeros_like(rewards[:, 0])  # (B,)
    for t in reversed(range(T)):
        # The mask of t+1 zeroes V_{t+1} and A_{t+1} past the last valid token (the terminal state).
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = delta + gamma * lam * next_advantage
        next_value = values[:, t] * response_mask[:, t]
        next_advantage = advantages[:, t] * response_mask[:, t]
    advantages = advantages * response_mask
    returns = (advantages + values) * response_mask
    return advantages, returns


def no_reduction(t: torch.Tensor) -> torch.Tensor:
    """One process: its sums are the sums."""
    return t


def masked_whiten(
    x: torch.Tensor,
    mask: torch.Tensor,
    eps: float = 1e-8,
    all_reduce: Callable[[torch.Tensor], torch.Tensor] = no_reduction,
) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over the valid tokens only; padding stays 0.

    As in the original, the mean is removed and not added back, and the variance is the unbiased one. With fewer
    than two valid tokens the variance is undefined, so the values are only centred (which makes a single token 0).

    `all_reduce` sums a tensor over processes (under torchrun, `ppo.train.distributed.all_reduce`). The count,
    the sum and then the sum of squared deviations go through it (in float64), so each rank's result is its rows
    of what one process would get on the concatenated batch. The math itself never talks to other processes.

    Shape: x, mask (B, T) -> (B, T).
    """
    n, total = all_reduce(torch.stack([mask.sum(), (x * mask).sum()]).double()).tolist()
    centered = (x - total / max(n, 1.0)) * mask
    if n < 2:
        return centered
    squares = all_reduce((centered.double() ** 2).sum())
    return centered * torch.rsqrt(squares / (n - 1) + eps).to(x.dtype)
