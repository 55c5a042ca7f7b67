"""The rollout buffer: everything PPO needs about one batch of sampled sequences, and its minibatches.

Shapes: B = rollouts, L = prompt + response length, T = response length.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass
class RolloutBatch:
    """One PPO step's rollouts. Every field is a tensor whose first dimension is B."""

    input_ids: torch.Tensor  # (B, L) prompt (left-padded) then response (right-padded)
    attention_mask: torch.Tensor  # (B, L)
    response_mask: torch.Tensor  # (B, T) float
    old_logprobs: torch.Tensor  # (B, T) log pi_old of the sampled tokens, from a forward pass
    ref_logprobs: torch.Tensor  # (B, T) log pi_ref of the sampled tokens
    old_values: torch.Tensor  # (B, T) V_old(s_t)
    scores: torch.Tensor  # (B,)   task score of each response
    rewards: torch.Tensor  # (B, T) shaped rewards: -kl_coef * kl, plus the score on the last token
    advantages: torch.Tensor  # (B, T) GAE advantages (whitened when asked)
    returns: torch.Tensor  # (B, T) value targets

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def response_len(self) -> int:
        return self.response_mask.shape[1]

    def select(self, index: torch.Tensor | slice) -> "RolloutBatch":
        """The rows at `index`, as a new batch (views for slices, copies for index tensors)."""
        return RolloutBatch(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    def minibatches(self, size: int, generator: torch.Generator, group: int = 1) -> Iterator["RolloutBatch"]:
        """One epoch of shuffled minibatches of `size` rows; the order depends only on `generator`."""
        for index in self.minibatch_rows(size, generator, group):
            yield self.select(index)

    def minibatch_rows(self, size: int, generator: torch.Generator, group: int = 1) -> list[torch.Tensor]:
        """The rows of each of `minibatches`' minibatches: a shuffle of 0 .. B-1 cut into blocks of `size`.

        `group` > 1 shuffles blocks of `group` consecutive rows (the answers to one question) and keeps each block
        whole and in order, so that a minibatch can share each prompt's pass; `size` must then be a multiple of
        it. group = 1 is a shuffle of the rows."""
        if size % group or len(self) % group:
            raise ValueError(f"minibatches of {size} rows cannot hold whole blocks of {group} of {len(self)} rows")
        blocks = torch.randperm(len(self) // group, generator=generator)
        order = (blocks[:, None] * group + torch.arange(group)).flatten().to(self.input_ids.device)
        return [order[start : start + size] for start in range(0, len(self), size)]

    def chunks(self, size: int) -> Iterator["RolloutBatch"]:
        """Consecutive slices of `size` rows (micro-batches for gradient accumulation)."""
        for start in range(0, len(self), size):
            yield self.select(slice(start, start + size))

    def trimmed(self) -> "RolloutBatch":
        """This batch without the columns that are padding in every one of its rows (`content_columns`): the same
        losses and statistics from shorter passes."""
        columns, keep = content_columns(self.attention_mask, self.response_mask)
        per_row = {"input_ids": self.input_ids[:, columns], "attention_mask": self.attention_mask[:, columns]}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            per_row.setdefault(f.name, value[:, :keep] if value.dim() == 2 else value)
        return RolloutBatch(**per_row)


def content_columns(attention_mask: torch.Tensor, response_mask: torch.Tensor) -> tuple[slice, int]:
    """The columns of a (B, P + T) row block that hold any row's tokens, and the longest response T' <= T.

    Prompts are left-padded and responses right-padded, so the columns before the longest prompt and after the
    longest response are padding in every row. Dropping them changes nothing a pass computes for the rest: the
    positions come from the attention mask, padding is masked out of attention, and a causal model's states never
    depend on the columns after them. It only saves work: a batch is padded to the longest response of all its
    rollouts, and a micro-batch of shorter ones then runs on padding."""
    T = response_mask.shape[1]
    P = attention_mask.shape[1] - T
    used = attention_mask[:, :P].any(0).nonzero()
    first = int(used[0]) if len(used) else P
    keep = max(int(response_mask.sum(1).max()), 1) if response_mask.numel() else T
    return slice(first, P + keep), keep


def longest_first(rows: torch.Tensor, response_mask: torch.Tensor, group: int = 1) -> torch.Tensor:
    """`rows` reordered so that blocks of `group` consecutive rows (kept whole and in order) come by their longest
    response, longest first (ties keep their order). Micro-batches cut from them hold responses of like lengths,
    so trimming each (`RolloutBatch.trimmed`) saves the most. The order of the rows in a minibatch changes nothing
    but rounding: its gradient is the sum of its micro-batches'."""
    blocks = rows.view(-1, group)
    longest = response_mask.sum(1)[blocks].amax(1)
    return blocks[torch.sort(longest, descending=True, stable=True).indices].flatten()
