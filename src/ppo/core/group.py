"""Critic-free advantages: each response is judged against the other responses to the same question.

The k samples of one question form a group; the rollout holds its groups one after another, so a batch of scores
(B,) with B = G * k reads as (G, k). Each estimator gives one advantage per response, the same for every one of
its tokens (`per_token`): no value head is trained, and none is run.

    GRPO      A_i = (s_i - mean_j s_j) / (std_j s_j + eps)      Shao et al. 2024, DeepSeekMath (outcome supervision)
    RLOO      A_i = s_i - mean_{j != i} s_j                     Ahmadian et al. 2024, Back to Basics (Kool et al. 2019)
    Dr. GRPO  A_i = s_i - mean_j s_j                            Liu et al. 2025, Understanding R1-Zero-like training

A group whose scores are all equal carries no signal: every estimator gives it zero advantage (GRPO's eps keeps
0 / 0 away). `equal_groups` counts them. With the KL in the reward, `with_kl_penalty` adds the penalty at its own
scale: only the small KL term is left in such a group.

Shapes: B = rollouts (G groups of k), T = response length.
"""

from __future__ import annotations

from typing import Literal

import torch

Estimator = Literal["grpo", "rloo", "dr_grpo"]


def grouped(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) -> (G, k): the scores of each question's k samples in one row. A group of one has no peers."""
    if group_size < 2:
        raise ValueError(f"a group estimator needs at least 2 samples per question (got {group_size})")
    if scores.dim() != 1 or scores.shape[0] % group_size:
        raise ValueError(f"{tuple(scores.shape)} scores do not split into groups of {group_size}")
    return scores.float().view(-1, group_size)


def centred(s: torch.Tensor) -> torch.Tensor:
    """s - mean(s) per group (G, k), and exactly 0 where a group's scores are all equal (the float mean of three
    0.1s is not quite 0.1, and GRPO would blow that rounding up by 1 / eps)."""
    equal = (s == s[:, :1]).all(1, keepdim=True)
    return torch.where(equal, torch.zeros_like(s), s - s.mean(1, keepdim=True))


def grpo_advantages(scores: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """A_i = (s_i - mean(s_group)) / (std(s_group) + eps), with the unbiased std (as TRL's GRPOTrainer).

    Dividing by the std makes a question's spread count for nothing: a group with one right answer in k pushes as
    hard as one split evenly, and a nearly-solved question gets large advantages (Dr. GRPO's objection).
    Shape: (B,) -> (B,)."""
    s = grouped(scores, group_size)
    return (centred(s) / (s.std(1, keepdim=True) + eps)).flatten()


def rloo_advantages(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """A_i = s_i - mean_{j != i}(s_j) = k / (k - 1) * (s_i - mean(s_group)): REINFORCE with a leave-one-out
    baseline, which is independent of s_i, so the gradient estimate stays unbiased. Shape: (B,) -> (B,)."""
    s = grouped(scores, group_size)
    return (group_size / (group_size - 1) * centred(s)).flatten()


def dr_grpo_advantages(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """A_i = s_i - mean(s_group): GRPO without the division by the std. (The other half of Dr. GRPO, a loss
    normalised by a constant instead of each response's length, is `ppo.core.masked.aggregate`'s
    seq_mean_token_sum_norm.) Shape: (B,) -> (B,)."""
    return centred(grouped(scores, group_size)).flatten()


ESTIMATORS = {"grpo": grpo_advantages, "rloo": rloo_advantages, "dr_grpo": dr_grpo_advantages}


def group_advantages(scores: torch.Tensor, group_size: int, estimator: Estimator) -> torch.Tensor:
    """The advantages (B,) of `estimator`, by name."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown group estimator {estimator!r}; choose {', '.join(ESTIMATORS)}")
    return ESTIMATORS[estimator](scores, group_size)


def per_token(advantages: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """A_it = A_i on every valid token of response i, 0 on padding. Shape: (B,), (B, T) -> (B, T)."""
    return advantages[:, None].to(response_mask.dtype) * response_mask


def with_kl_penalty(
    scores: torch.Tensor, sequence_kl: torch.Tensor, kl_coef: float, group_size: int, estimator: Estimator
) -> torch.Tensor:
    """A_i = est(s)_i - kl_coef * base(KL)_i: the score's advantage by the estimator, less the sequence KL
    (sum_t kl_t) centred in its group by the estimator's baseline, never divided by the std.

    For RLOO and Dr. GRPO, which are linear, this is exactly est(s - kl_coef * KL). GRPO is not: dividing the
    penalised totals by their std would blow the tiny KL differences of a group of equal scores up to +-1, a full
    advantage made of noise. Here that group keeps only its KL term, at the scale kl_coef gives it.
    Shape: (B,), (B,) -> (B,)."""
    penalty = group_advantages(sequence_kl, group_size, "rloo" if estimator == "rloo" else "dr_grpo")
    return group_advantages(scores, group_size, estimator) - kl_coef * penalty


def equal_groups(scores: torch.Tensor, group_size: int) -> float:
    """The share of groups whose scores are all equal: they carry no learning signal."""
    s = grouped(scores, group_size)
    return (s == s[:, :1]).all(1).float().mean().item()
