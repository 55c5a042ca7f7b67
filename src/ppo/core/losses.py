"""The PPO losses: the clipped policy surrogate, the clipped value loss, the KL penalty as a loss, the entropy bonus
and their sum, plus the critic's explained variance.

Each takes (B, T) tensors and the float `response_mask`, and returns (scalar loss, stats). The stats are detached
floats for logging.

Shapes: B = rollouts, T = response length.
"""

from __future__ import annotations

import torch

from .kl import Estimator, kl_estimate
from .masked import Aggregation, aggregate, masked_mean


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    clip_eps: float,
    aggregation: Aggregation = "seq_mean_token_mean",
    clip_eps_high: float | None = None,
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, dict]:
    """The clipped surrogate of Schulman et al. 2017, eq. 7, as a loss to minimise.

        ratio_t = exp(logpi(y_t) - logpi_old(y_t))
        L_t     = max(-A_t * ratio_t, -A_t * clip(ratio_t, 1 - clip_eps, 1 + clip_eps_high))

    When the clipped term wins, the gradient is 0: the update stops pushing once the ratio leaves the trust region
    in the direction the advantage favours (above 1 + clip_eps_high when A > 0, below 1 - clip_eps when A < 0).
    clip_eps_high defaults to clip_eps; a larger one is DAPO's clip-higher (Yu et al. 2025): a token of low
    probability may gain more mass in one update before its push stops.
    """
    high = clip_eps if clip_eps_high is None else clip_eps_high
    log_ratio = logprobs - old_logprobs  # (B, T)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + high)
    loss = aggregate(torch.max(unclipped, clipped), response_mask, aggregation, max_tokens)
    with torch.no_grad():
        stats = {
            # k3 estimate of KL(pi_old || pi) on the sampled tokens (Schulman 2020): >= 0, unbiased.
            "policy/approx_kl": masked_mean(ratio - 1.0 - log_ratio, response_mask).item(),
            "policy/clipfrac": masked_mean((clipped > unclipped).float(), response_mask).item(),
            "policy/ratio": masked_mean(ratio, response_mask).item(),
        }
    return loss, stats


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    response_mask: torch.Tensor,
    value_clip_eps: float,
    aggregation: Aggregation = "seq_mean_token_mean",
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, dict]:
    """The clipped value loss of the original ReFT (and OpenAI baselines' PPO2).

    V_clip_t = V_old_t + clip(V_t - V_old_t, -value_clip_eps, value_clip_eps)
    L_t      = 0.5 * max((V_t - R_t)^2, (V_clip_t - R_t)^2)
    """
    clipped_values = old_values + torch.clamp(values - old_values, -value_clip_eps, value_clip_eps)
    unclipped_err = (values - returns) ** 2  # (B, T)
    clipped_err = (clipped_values - returns) ** 2  # (B, T)
    loss = 0.5 * aggregate(torch.max(unclipped_err, clipped_err), response_mask, aggregation, max_tokens)
    with torch.no_grad():
        stats = {"value/clipfrac": masked_mean((clipped_err > unclipped_err).float(), response_mask).item()}
    return loss, stats


def entropy_bonus(
    entropy: torch.Tensor,
    response_mask: torch.Tensor,
    aggregation: Aggregation = "seq_mean_token_mean",
    max_tokens: int | None = None,
) -> torch.Tensor:
    """H = aggregate_t H_t over the valid tokens: the policy's mean entropy, which the loss rewards.

    H_t is the entropy of the next-token distribution at t (`ppo.core.logits.entropy`). Shape: (B, T) -> scalar.
    """
    return aggregate(entropy, response_mask, aggregation, max_tokens)


def kl_loss(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    estimator: Estimator,
    aggregation: Aggregation = "seq_mean_token_mean",
    max_tokens: int | None = None,
) -> torch.Tensor:
    """L_KL = aggregate_t kl(logpi(y_t), logpi_ref(y_t)): the KL to the reference as a loss on the current policy,
    which the gradient flows through (GRPO's placement, with k3), instead of a penalty in the reward.

    k1 is refused by the settings: its gradient, grad logpi(y_t), has expectation 0 under the sampling policy, so
    it would pull towards the reference only through noise. k3's gradient does pull (and k2's is the exact
    gradient of KL(pi || pi_ref) at pi = pi_old). Shape: (B, T) -> scalar."""
    return aggregate(kl_estimate(logprobs, ref_logprobs, estimator), response_mask, aggregation, max_tokens)


def total_loss(
    pg_loss: torch.Tensor,
    vf_loss: torch.Tensor | None,
    mean_entropy: torch.Tensor,
    vf_coef: float,
    entropy_coef: float,
    kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> torch.Tensor:
    """L = L_pi + c_v * L_V + beta * L_KL - c_e * H       (Schulman et al. 2017, eq. 9, as a loss to minimise)

    c_v = vf_coef weighs the critic against the policy on the shared trunk (no term without a critic); beta =
    kl_coef weighs the KL loss, there only when the KL goes in the loss (`kl_loss`); c_e = entropy_coef rewards
    spread (0 in the original ReFT, so H is then only logged)."""
    loss = pg_loss if vf_loss is None else pg_loss + vf_coef * vf_loss
    loss = loss - entropy_coef * mean_entropy
    if kl is not None:
        loss = loss + kl_coef * kl
    return loss


def explained_variance(values: torch.Tensor, returns: torch.Tensor, response_mask: torch.Tensor) -> float:
    """1 - Var(R - V) / Var(R) over valid tokens: 1 is a perfect critic, 0 no better than a constant."""
    var_returns = masked_mean((returns - masked_mean(returns, response_mask)) ** 2, response_mask)
    residual = returns - values
    var_residual = masked_mean((residual - masked_mean(residual, response_mask)) ** 2, response_mask)
    if var_returns <= 0:
        return float("nan")
    return float(1.0 - var_residual / var_returns)
