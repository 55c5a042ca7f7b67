"""Log-probs of response tokens from an LM's hidden states: the forward pass PPO runs, and the one-token shift.

Position i predicts token i + 1. A row is a left-padded prompt of P positions and a response of T tokens, so the
response tokens sit at P .. L-1 and are predicted from the states at P-1 .. L-2 (`response_states`).

Shapes: B = rollouts, P = prompt length, T = response length, L = P + T, V = vocab, H = hidden.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel

from ..core.logits import entropy, token_logprobs
from .hook import prompt_positions
from .models import recomputing
from .sampling import truncate
from .shared_prompt import position_ids_from_mask, prompt_mask, shared_prompt_states, shares_prompts


def trunk_hidden(trunk: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last hidden state of a decoder trunk (the LM without its head), (B, L) -> (B, L, H)."""
    with recomputing(trunk):
        out = trunk(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
        )
    return out.last_hidden_state


def response_states(hidden: torch.Tensor, response_len: int) -> torch.Tensor:
    """The states that predict the response tokens: position i predicts token i + 1.

    The response occupies positions P .. L-1, so its tokens are predicted from positions P-1 .. L-2:
    (B, L, H) -> (B, T, H).
    """
    return hidden[:, -response_len - 1 : -1]  # (B, T, H): positions P-1 .. L-2, one before each token


def logprobs_from_hidden(
    hidden: torch.Tensor,
    lm_head: nn.Module,
    tokens: torch.Tensor,
    temperature: float,
    with_entropy: bool = False,
    entropy_grad: bool = False,
    chunk_size: int = 128,
    top_k: int = 0,
    top_p: float = 1.0,
    recompute: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(y_t) of the given tokens, and optionally the entropy of each next-token distribution.

        logits = truncate(lm_head(h) / temperature, top_k, top_p)      (cut tokens: -inf; y_t is never cut)
        log pi(y_t) = logits[y_t] - logsumexp(logits)
        H_t = logsumexp(logits) - sum_v softmax(logits)_v * logits_v

    With top_k / top_p these are the log-probs of the distribution the sampler actually draws from, so the PPO
    ratio and the k1 KL estimate stay unbiased (tests/test_policy.py). The reference model is scored without
    truncation: the KL is to the full tempered reference.

    The vocabulary-sized logits exist for `chunk_size` positions at a time, never as a full log-softmax copy. With
    autograd every chunk's logits are kept for backward, unless `recompute` (gradient checkpointing) computes each
    chunk of 32 again there. Logits go to fp32 so bf16 models get accurate log-probs. The entropy is a detached
    diagnostic unless `entropy_grad` (for an entropy bonus).

    Shape: hidden (B, T, H), tokens (B, T) -> logprobs (B, T), entropy (B, T) or None.
    """
    run, c = chunk_logprobs, chunk_size
    if recompute and torch.is_grad_enabled():
        run, c = functools.partial(checkpoint, chunk_logprobs, use_reentrant=False), min(chunk_size, 32)
    logprobs, entropies = zip(
        *(
            run(
                hidden[:, s : s + c],
                lm_head,
                tokens[:, s : s + c],
                temperature,
                with_entropy,
                entropy_grad,
                top_k,
                top_p,
            )
            for s in range(0, tokens.shape[1], c)
        )
    )
    return torch.cat(logprobs, dim=1), torch.cat(entropies, dim=1) if with_entropy else None


def chunk_logprobs(
    hidden: torch.Tensor,
    lm_head: nn.Module,
    tokens: torch.Tensor,
    temperature: float,
    with_entropy: bool,
    entropy_grad: bool,
    top_k: int,
    top_p: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`logprobs_from_hidden` of one chunk of c positions. (B, c, H), (B, c) -> (B, c), (B, c) or None."""
    logits = truncate(lm_head(hidden).float() / temperature, top_k, top_p, keep=tokens)  # (B, c, V)
    logprobs = token_logprobs(logits, tokens)  # (B, c)
    if not with_entropy:
        return logprobs, None
    return logprobs, entropy(logits if entropy_grad else logits.detach())  # (B, c)


def lm_response_states(
    lm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int, group: int = 1
) -> torch.Tensor:
    """The trunk states that predict the response tokens (LoReFT told the prompt). (B, L) -> (B, T, H).

    `group` = k: rows come in blocks of k answers to one prompt, whose pass then runs once per block where it can
    (`ppo.lm.shared_prompt`); the result is the same."""
    if shares_prompts(lm, input_ids, attention_mask, group, response_len):
        return shared_prompt_states(lm, input_ids, attention_mask, response_len, group)
    with prompt_positions(lm, prompt_mask(attention_mask, response_len)):
        return response_states(trunk_hidden(lm.base_model, input_ids, attention_mask), response_len)


def lm_logprobs(
    lm: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_len: int,
    temperature: float,
    group: int = 1,
) -> torch.Tensor:
    """log pi of the response tokens under a plain LM (the reference model). (B, L) -> (B, T)."""
    states = lm_response_states(lm, input_ids, attention_mask, response_len, group)
    return logprobs_from_hidden(states, lm.get_output_embeddings(), input_ids[:, -response_len:], temperature)[0]
