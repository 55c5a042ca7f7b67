"""Scoring answers that are already written: the scalar head's output at each answer's last token.

A ReFT checkpoint's value head, or a verifier's head (`ppo.core.verifier`), read (prompt, answer) pairs. The answer
text is tokenised again, with the EOS appended, so the head's output at the EOS is its state after reading the
whole answer, whether or not the sampled answer ended there.

Shapes: B = answers, P = prompt length, T = response length, L = P + T.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

from ..core.verifier import last_token_values
from .policy import PolicyWithValue
from .rollout import encode_prompts


def encode_answers(
    tokenizer: PreTrainedTokenizerBase, prompts: list[str], answers: list[str], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded prompts, then right-padded answers each ending in one EOS, as a rollout lays them out.

    Shape: -> input_ids (B, L), attention_mask (B, L), response_mask (B, T).
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts, device)  # (B, P)
    encoded = [tokenizer(a, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for a in answers]
    T = max(len(ids) for ids in encoded)
    response_ids = torch.full((len(answers), T), tokenizer.pad_token_id, dtype=torch.long)
    response_mask = torch.zeros((len(answers), T))
    for row, ids in enumerate(encoded):
        response_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        response_mask[row, : len(ids)] = 1.0
    response_mask = response_mask.to(device)
    input_ids = torch.cat([prompt_ids, response_ids.to(device)], dim=1)  # (B, L)
    attention_mask = torch.cat([prompt_mask, response_mask.long()], dim=1)  # (B, L)
    return input_ids, attention_mask, response_mask


def answer_scores(policy: PolicyWithValue, input_ids, attention_mask, response_mask) -> torch.Tensor:
    """The head's output at each answer's EOS (with gradients, for training a verifier). (B, L) -> (B,)."""
    _, values = policy(input_ids, attention_mask, response_mask.shape[1])  # (B, T)
    return last_token_values(values, response_mask)


@torch.no_grad()
def head_scores(
    policy: PolicyWithValue, tokenizer: PreTrainedTokenizerBase, prompts: list[str], answers: list[str],
    batch_size: int = 16,
) -> list[float]:  # fmt: skip
    """One score per (prompt, answer) pair, in batches: higher means more likely right."""
    device, scores = next(policy.parameters()).device, []
    for i in range(0, len(answers), batch_size):
        batch = encode_answers(tokenizer, prompts[i : i + batch_size], answers[i : i + batch_size], device)
        scores += answer_scores(policy, *batch).tolist()
    return scores
