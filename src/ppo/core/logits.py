"""From next-token logits to what PPO reads: the log-prob of the sampled token, and the entropy.

The logits at position t predict the token at t + 1. The caller takes the states that predict the response
(`ppo.lm.logprobs.response_states`: positions P-1 .. L-2 for tokens P .. L-1), so here logits[:, t] and tokens[:, t]
already belong together.

Shapes: B = rollouts, T = response length (or a chunk of it), V = vocab.
"""

from __future__ import annotations

import torch


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log pi(y_t) = z_t[y_t] - logsumexp_v z_t[v]. logits (B, T, V), tokens (B, T) -> (B, T).

    A logit of -inf (a token cut by top-k / top-p) has probability 0; the sampled token is never cut."""
    return logits.gather(-1, tokens[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)  # (B, T)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H_t = -sum_v pi_t(v) log pi_t(v) = logsumexp(z_t) - sum_v softmax(z_t)_v z_t[v]. (B, T, V) -> (B, T).

    Cut tokens (-inf) add nothing: 0 * -inf would be NaN, so they are zeroed before the product."""
    finite = logits.masked_fill(logits == float("-inf"), 0.0)  # (B, T, V)
    return torch.logsumexp(logits, -1) - (torch.softmax(logits, dim=-1) * finite).sum(-1)  # (B, T)
