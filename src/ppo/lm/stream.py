"""Continuous batching for evaluation: slots decode together, and a slot whose answer has ended takes the next prompt.

`decode.generate` decodes a batch until its longest answer ends. With answers of 50 to 400 tokens, most rows of a
batch then sit finished while the longest one runs. Here every slot (row) has its own cache columns and its own
write column:
    - a new prompt is prefilled (each distinct prompt once, `decode.prefill`) into columns 0..P of a free slot;
    - each step writes every slot's token at that slot's column (`decode.forward` with a tensor `start`);
    - free slots are refilled once an eighth of them are free, so one prefill serves several;
    - when no prompt is left, the batch shrinks as in `decode.generate`: once half its rows have ended, they leave.

Greedy answers are `decode.generate`'s, prompt for prompt (tests/test_stream.py). Sampled answers come from the same
distribution, but not the same draws: the rows share one random stream in another order.

Shapes: B = slots, S = cache columns (the longest prompt + max_new_tokens), V = vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .decode import StaticCache, forward, prefill
from .sampling import next_tokens


class Slots:
    """The state of B decoding rows: which prompt each holds, where it writes, what it has produced."""

    def __init__(self, model, rows: int, columns: int, max_new_tokens: int, pad_id: int):
        device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
        self.cache = StaticCache(model, rows, columns, device, dtype)
        self.key_mask = torch.zeros(rows, columns, dtype=torch.bool, device=device)  # (B, S) the keys each row sees
        self.column = torch.zeros(rows, dtype=torch.long, device=device)  # (B,) where its next token is written
        self.position = torch.zeros(rows, dtype=torch.long, device=device)  # (B,) that token's rotary position
        self.produced = torch.zeros(rows, dtype=torch.long, device=device)  # (B,) response tokens so far
        self.out = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=device)  # (B, T)
        self.logits = torch.zeros(rows, model.config.vocab_size, device=device, dtype=dtype)  # (B, V) next token's
        self.owner = [-1] * rows  # the prompt index each row decodes; -1 = free

    def free(self) -> list[int]:
        return [r for r, o in enumerate(self.owner) if o < 0]

    def fill(self, model, rows: list[int], prompts: list[list[int]], first: int, pad_id: int) -> None:
        """Prefill prompts[i] (token ids, index first + i overall) into free row rows[i], left-padded together."""
        device, P = self.key_mask.device, max(len(p) for p in prompts)
        ids = torch.full((len(prompts), P), pad_id, dtype=torch.long, device=device)
        mask = torch.zeros(len(prompts), P, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, P - len(p) :], mask[i, P - len(p) :] = torch.tensor(p, device=device), 1
        logits, shared, inverse = prefill(model, ids, mask)
        r = torch.tensor(rows, device=device)
        self.cache.k[:, r, :, :P], self.cache.v[:, r, :, :P] = shared.k[:, inverse], shared.v[:, inverse]
        self.key_mask[r] = False
        self.key_mask[r, :P] = mask.bool()
        self.column[r], self.position[r], self.produced[r] = P, mask.sum(1), 0
        self.logits[r] = logits
        for row, i in zip(rows, range(first, first + len(prompts))):
            self.owner[row] = i

    def keep(self, rows: torch.Tensor) -> None:
        """Only the rows where `rows` (B,) bool is True, in order."""
        self.cache.keep(rows)
        for name in ("key_mask", "column", "position", "produced", "out", "logits"):
            setattr(self, name, getattr(self, name)[rows])
        self.owner = [o for o, k in zip(self.owner, rows.tolist()) if k]


@torch.no_grad()
def stream(
    model,
    prompts: list[list[int]],
    max_new_tokens: int,
    eos_ids: list[int],
    pad_id: int,
    slots: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
    on_done: Callable[[int], object] | None = None,
) -> list[list[int]]:
    """The response token ids of each prompt (token ids), up to and including its EOS, in the order of `prompts`.

    Prompts enter in their order, `slots` at a time at most. `on_done(1)` is called as each answer ends (a progress
    bar's update)."""
    if not prompts:
        return []
    if slots < 1 or max_new_tokens < 1 or min(len(p) for p in prompts) < 1:
        raise ValueError("stream needs slots >= 1, max_new_tokens >= 1 and no empty prompt")
    state = Slots(
        model, min(slots, len(prompts)), max(len(p) for p in prompts) + max_new_tokens, max_new_tokens, pad_id
    )
    eos = torch.tensor(eos_ids, dtype=torch.long, device=state.key_mask.device)
    results: list[list[int]] = [[] for _ in prompts]
    waiting = 0  # the next prompt to enter
    refill_at = max(1, len(state.owner) // 8)
    while True:
        free = state.free()
        if waiting < len(prompts) and free and (len(free) >= refill_at or len(free) == len(state.owner)):
            rows = free[: len(prompts) - waiting]
            state.fill(model, rows, prompts[waiting : waiting + len(rows)], waiting, pad_id)
            waiting += len(rows)
        active = torch.tensor([o >= 0 for o in state.owner], device=eos.device)  # (B,)
        if not bool(active.any()):
            return results
        token = torch.where(active, next_tokens(state.logits, temperature, top_k, top_p, greedy), pad_id)  # (B,)
        live = active.nonzero().flatten()
        state.out[live, state.produced[live]] = token[live]
        state.produced += active
        ended = active & (torch.isin(token, eos) | (state.produced == max_new_tokens))
        for r in ended.nonzero().flatten().tolist():
            results[state.owner[r]] = state.out[r, : int(state.produced[r])].tolist()
            state.owner[r] = -1
            if on_done is not None:
                on_done(1)
        still = active & ~ended  # (B,) the rows that decode on
        if waiting == len(prompts) and 2 * int((~still).sum()) >= len(still):  # no prompt left: the ended rows leave
            state.keep(still)
            token, still = token[still], still[still]
            if not state.owner:
                return results
        rows = torch.arange(len(state.owner), device=eos.device)
        state.key_mask[rows, state.column] = True  # a free row writes at, and sees, its own column: no NaN
        width = int(state.column.max()) + 1
        state.logits = forward(model, token[:, None], state.position[:, None], state.key_mask[:, :width],
                               state.cache, state.column)  # fmt: skip
        state.column += still
        state.position += still
