"""The decode step against its memory floor (`make bench`'s row f).

At a small batch a decode step is bound by memory: it must read every weight once (the tied embedding is the LM
head's matrix) and the keys and values cached so far, for every row. Its floor is those bytes divided by the copy
bandwidth measured in the same run (a large tensor copy: bytes read plus bytes written, per second, as STREAM
counts them). floor / step is at most 1 in principle; the target is 0.85.
"""

from __future__ import annotations

import time

import torch

from ..lm import decode
from ..train.metrics import sync


def copy_bandwidth(device, megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second of the best of `repeats` copies of one tensor of `megabytes` (read + write counted)."""
    src = torch.ones(megabytes * 2**20 // 4, device=device)
    dst, times = torch.empty_like(src), []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * src.numel() * src.element_size() / min(times)


def step_bytes(model, rows: int, cached: int) -> int:
    """What one decode step must read: each weight once, and the keys and values of `cached` positions per row."""
    weights = sum(p.numel() * p.element_size() for p in {id(p): p for p in model.parameters()}.values())
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    dtype_bytes = next(model.parameters()).element_size()
    return weights + 2 * c.num_hidden_layers * rows * c.num_key_value_heads * cached * head_dim * dtype_bytes


@torch.no_grad()
def decode_floor(model, rows: int = 16, prompt: int = 100, steps: int = 32) -> dict:
    """Median time of `steps` decode steps of the lean loop (`ppo.lm.decode.forward`), `rows` rows after a prompt of
    `prompt` random tokens, against the floor of the median step's bytes at the measured copy bandwidth."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    cache = decode.StaticCache(model, rows, prompt + steps + 1, device, dtype)
    tokens = torch.randint(0, model.config.vocab_size, (rows, prompt), device=device)
    positions = torch.arange(prompt, device=device).expand(rows, prompt)
    key_mask = torch.ones(rows, prompt + steps + 1, dtype=torch.bool, device=device)
    decode.forward(model, tokens, positions, key_mask[:, :prompt], cache, 0)  # prefill
    times = []
    for t in range(steps):
        start_position = prompt + t
        token = tokens[:, :1]
        sync(device)
        start = time.perf_counter()
        decode.forward(
            model, token, positions[:, :1] + start_position, key_mask[:, : start_position + 1], cache, start_position
        )
        sync(device)
        times.append(time.perf_counter() - start)
    step_s = sorted(times)[len(times) // 2]
    bandwidth = copy_bandwidth(device)
    read = step_bytes(model, rows, prompt + steps // 2)
    return {
        "rows": rows,
        "cached_positions": prompt + steps // 2,
        "step_s": step_s,
        "bytes_read": read,
        "copy_bandwidth_bytes_per_s": bandwidth,
        "floor_s": read / bandwidth,
        "floor_over_step": read / bandwidth / step_s,
    }
