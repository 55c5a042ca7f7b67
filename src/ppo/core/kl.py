"""The KL penalty: per-token estimators, the beta controllers, and reward shaping.

With Delta = logpi_old(y_t) - logpi_ref(y_t) on the sampled token y_t ~ pi_old, the estimators of
KL(pi_old || pi_ref) are (Schulman, "Approximating KL divergence", 2020):

    k1 = Delta                       unbiased, can be negative per token (the original ReFT)
    k2 = 0.5 * Delta^2               biased, low variance
    k3 = exp(-Delta) - 1 + Delta     unbiased, always >= 0

Shapes: B = rollouts, T = response length.
"""

from __future__ import annotations

from typing import Literal

import torch

Estimator = Literal["k1", "k2", "k3"]


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: Estimator = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi_old || pi_ref) on the sampled tokens (Schulman 2020), (B, T) -> (B, T).

        Delta_t = logpi(y_t) - logpi_ref(y_t)
        k1 = Delta_t;   k2 = 0.5 * Delta_t^2;   k3 = exp(-Delta_t) - 1 + Delta_t

    It is an estimate, not yet a penalty: `shape_rewards` makes it one, -kl_coef * kl_t.
    """
    delta = logprobs - ref_logprobs
    if estimator == "k1":
        return delta
    if estimator == "k2":
        return 0.5 * delta**2
    if estimator == "k3":
        return torch.expm1(-delta) + delta
    raise ValueError(f"unknown KL estimator {estimator!r}; choose k1, k2 or k3")


def shape_rewards(scores: torch.Tensor, kl: torch.Tensor, response_mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards: a KL penalty on every response token, the score on the last one.

        r_t = -kl_coef * kl_t            for every valid t
        r_t += score                     for t = last valid token (the one that emits EOS)

    Shape: scores (B,), kl and response_mask (B, T) -> rewards (B, T).
    """
    rewards = -kl_coef * kl * response_mask  # (B, T)
    last = (response_mask.sum(1).long() - 1).clamp(min=0)  # (B,) index of the last token
    has_tokens = (response_mask.sum(1) > 0).to(rewards.dtype)  # (B,) an empty response gets nothing
    rewards[torch.arange(rewards.shape[0]), last] += scores.to(rewards.dtype) * has_tokens
    return rewards


class FixedKLController:
    """A constant beta, as in the original ReFT (0.05 for N-CoT, 0.01 for P-CoT)."""

    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        """A fixed coefficient ignores the measured KL."""

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


class AdaptiveKLController(FixedKLController):
    """Ziegler et al. 2019, section 2.2: steer beta so that the sequence KL tracks a target.

    e_t    = clip(KL_t / target - 1, -0.2, 0.2)
    beta <- beta * (1 + e_t * n_steps / horizon)
    """

    def __init__(self, kl_coef: float, target: float, horizon: int):
        super().__init__(kl_coef)
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
