"""Shared-prompt passes: when k consecutive rows hold k answers to one question, the prompt runs through the trunk
once, not k times.

    prompt pass      the G = B / k distinct prompts, (G, P), keeping their keys and values (the KV cache)
    expand           each prompt's cache and its last hidden state, repeated for its k rows: (G, ...) -> (B, ...)
    response pass    the B responses, (B, T), attending to the expanded cache

Both passes build one graph, so in the update the gradients of all k answers flow back into their shared prompt
(the repeat sums them there). The result equals the per-row pass `ppo.lm.logprobs.lm_response_states` up to float
rounding: tests/test_shared_prompt.py checks log-probs, values, losses and gradients for every policy kind.

With GSM8K prompts of about 100 tokens, 128-token answers and k = 4, the prompt is about 45 % of every row, so
this saves about a third of the trunk's FLOPs in each forward and backward pass.

Not used (the caller falls back to the per-row pass, `shares_prompts`): k = 1, rows whose prompts differ, and an LM
that recomputes its layers in backward (`--gradient-checkpointing`: transformers drops the KV cache of a layer in
training mode).

Shapes: B = rows, G = distinct prompts, k = rows per prompt, P = prompt length, T = response length, H = hidden.
"""

from __future__ import annotations

import inspect

import torch
from transformers import PreTrainedModel

from .hook import prompt_positions
from .models import checkpointed


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding: cumsum(mask) - 1, so each sequence starts at 0. (B, L) -> (B, L)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def prompt_mask(attention_mask: torch.Tensor, response_len: int) -> torch.Tensor:
    """True on the real prompt tokens of prompt + response rows (what LoReFT edits). (B, L) -> (B, L) bool."""
    prompt = attention_mask.bool().clone()
    prompt[:, prompt.shape[1] - response_len :] = False
    return prompt


def shares_prompts(lm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int, T: int) -> bool:
    """Whether the rows come in blocks of k with one prompt each (ids and mask), and the LM can share a pass."""
    B, L = input_ids.shape
    if k < 2 or B % k or checkpointed(lm) or L <= T:
        return False
    prompts = torch.cat([input_ids[:, : L - T], attention_mask[:, : L - T].long()], 1).view(B // k, k, -1)
    return bool((prompts == prompts[:, :1]).all())


def cache_argument(trunk) -> str:
    """What the trunk's forward calls the KV cache it is given: `cache` in newer transformers, else the old name."""
    return "cache" if "cache" in inspect.signature(trunk.forward).parameters else "past_key_values"


def shared_prompt_states(
    lm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int, k: int
) -> torch.Tensor:
    """The trunk states that predict the response tokens, as `lm_response_states`, with one prompt pass per block
    of k rows (`shares_prompts` must hold). (B, L) -> (B, T, H)."""
    trunk, T = lm.base_model, response_len
    P = input_ids.shape[1] - T
    ids, mask = input_ids[::k, :P], attention_mask[::k, :P]  # (G, P): one row of each block
    with prompt_positions(lm, mask.bool()):  # LoReFT edits the prompt here, and only here
        prompt = trunk(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), use_cache=True)
    cache = prompt.cache if "cache" in prompt else prompt.past_key_values  # its name since transformers 5.2x
    cache.batch_repeat_interleave(k)  # (G, ...) -> (B, ...): differentiable, so gradients sum back into the prompt
    last = prompt.last_hidden_state[:, -1:].repeat_interleave(k, 0)  # (B, 1, H): the state that predicts token 0
    with prompt_positions(lm, prompt_mask(attention_mask, T)):  # positions P.. are response: never edited
        response = trunk(
            input_ids=input_ids[:, P:],
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask)[:, P:],
            use_cache=True,
            **{cache_argument(trunk): cache},
        )
    return torch.cat([last, response.last_hidden_state[:, :-1]], 1)  # (B, T, H)
