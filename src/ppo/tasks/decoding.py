"""Decoding many prompts for evaluation: in order of token length, by continuous batching where the model allows,
shared out over torchrun ranks, with a progress bar."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..lm import decode
from ..lm.rollout import encode_prompts, eos_token_ids, sample
from ..lm.stream import stream
from ..train import distributed
from ..train.fsdp import gathered


@torch.no_grad()
def decode_prompts(
    lm,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int,
    greedy: bool,
    temperature: float = 1.0,
    desc: str = "eval",
) -> list[str]:
    """Decode every prompt, in order of token length, so that prompts decoded together need little padding.

    Llama-family models decode by continuous batching (`ppo.lm.stream`): `batch_size` slots, and a slot whose
    answer has ended takes the next prompt. Other models decode `batch_size` prompts at a time with `generate`.
    Under torchrun rank r of N decodes prompts r, r + N, r + 2N, ... and every rank gets all the texts back."""
    mine = list(range(distributed.rank(), len(prompts), distributed.world_size()))
    encoded = {i: tokenizer(prompts[i], add_special_tokens=False)["input_ids"] for i in mine}
    order = sorted(mine, key=lambda i: len(encoded[i]))
    done: list[tuple[int, str]] = []
    device = next(lm.parameters()).device
    bar = tqdm(total=len(order), desc=desc, unit="answer", disable=not distributed.is_main())
    with gathered(lm), bar:  # FSDP2: whole weights throughout, so ranks need not decode as many batches
        if decode.supports(lm):
            knobs = (temperature, 0, 1.0, greedy)
            eos, pad = eos_token_ids(lm, tokenizer), tokenizer.pad_token_id
            out = stream(lm, [encoded[i] for i in order], max_new_tokens, eos, pad, batch_size, *knobs, bar.update)
            done += zip(order, tokenizer.batch_decode(out, skip_special_tokens=True))
        else:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                ids, mask = encode_prompts(tokenizer, [prompts[i] for i in rows], device)
                out = sample(lm, tokenizer, ids, mask, max_new_tokens, temperature=temperature, greedy=greedy)
                done += zip(rows, out.texts)
                bar.update(len(rows))
    texts: list[str] = [""] * len(prompts)
    for i, text in distributed.gather(done):
        texts[i] = text
    return texts
