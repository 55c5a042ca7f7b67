"""A lean sampling loop for Llama-family models: the same math as `generate`, with less around it.

On a small model the decode step is memory-bound: the matmuls read every weight once per step, and what
`generate` adds around them (a mask rebuilt for the whole sequence, a cache grown by concatenation, logits
processors) costs as much again (docs/benchmarks.md). This loop keeps the model's own modules (norms, projections,
MLP, rotary embedding) and replaces only the scaffolding:

    - a static KV cache, allocated once for prompt + max_new_tokens, written in place;
    - the prompt in one batched forward pass (prefill), each distinct prompt once, then one token per row per step;
    - per-row positions that skip left padding, as in `policy.position_ids_from_mask`;
    - the next token drawn from softmax(logits / temperature), optionally cut by top-k / top-p, in that order,
      as `generate` does; a finished row is padded after its EOS, and once half the rows still in the batch have
      finished, they leave it (rows and cache compacted), so the rest decode at a smaller batch; the loop stops
      when every row is done.

`supports(model)` says whether a model can use it (LlamaForCausalLM without biases: SmolLM2, Llama, CodeLlama);
the rollout falls back to `generate` otherwise. tests/test_decode.py checks that its logits equal a plain forward pass,
and that greedy decoding gives exactly `generate`'s tokens.

Shapes: B = rows, P = prompt length, T = tokens in this pass, S = cache length, H = hidden, D = head dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from .hook import adapter_of
from .sampling import next_tokens


def supports(model) -> bool:
    """The lean loop knows the Llama layer layout (no biases, SiLU MLP); other models use `generate`."""
    c = getattr(model, "config", None)
    return (
        type(model).__name__ == "LlamaForCausalLM"
        and not getattr(c, "attention_bias", False)
        and not getattr(c, "mlp_bias", False)
        and getattr(c, "hidden_act", "") == "silu"
    )


class StaticCache:
    """Keys and values of every layer, preallocated: (layers, B, kv_heads, S, D) each."""

    def __init__(self, model, batch: int, length: int, device, dtype):
        c = model.config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        shape = (c.num_hidden_layers, batch, c.num_key_value_heads, length, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)

    def keep(self, rows: torch.Tensor) -> None:
        """Only the rows where `rows` (B,) bool is True, in order: a copy of the smaller cache."""
        self.k, self.v = self.k[:, rows], self.v[:, rows]


def attention(
    attn, x: torch.Tensor, cos, sin, cache: StaticCache, layer: int, start: int | torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Self-attention of T new positions over the first W cache columns. x (B, T, H), mask (B, 1, T, W) bool.

    `start` is the column of the first new position: one int for every row, or (B,) long, one per row (T = 1).
    -> (B, T, H)"""
    B, T, _ = x.shape
    q = attn.q_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)  # (B, heads, T, D)
    k = attn.k_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)  # (B, kv_heads, T, D)
    v = attn.v_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    if isinstance(start, int):
        cache.k[layer, :, :, start : start + T], cache.v[layer, :, :, start : start + T] = k, v
    else:  # each row its own column (continuous batching, ppo.lm.stream)
        rows = torch.arange(B, device=x.device)
        cache.k[layer, rows, :, start], cache.v[layer, rows, :, start] = k[:, :, 0], v[:, :, 0]
    W = mask.shape[-1]
    keys, values = cache.k[layer, :, :, :W], cache.v[layer, :, :, :W]  # (B, kv_heads, W, D)
    out = F.scaled_dot_product_attention(
        q, keys, values, attn_mask=mask, scale=attn.scaling, enable_gqa=q.shape[1] != keys.shape[1]
    )  # (B, heads, T, D)
    return attn.o_proj(out.transpose(1, 2).reshape(B, T, -1))


def forward(
    model,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    key_mask: torch.Tensor,
    cache: StaticCache,
    start: int | torch.Tensor,
    edit=None,
) -> torch.Tensor:
    """Logits of the last position of each row, after writing T new positions at cache[start:start+T].

    tokens, positions (B, T); key_mask (B, start+T) bool, True on real tokens. -> (B, V)
    With `start` a (B,) tensor (T = 1), row b writes at column start[b] and attends to key_mask's W columns, where
    key_mask[b, start[b]] must be True.
    `edit(layer index, h)`, if given, edits each layer's output (LoReFT's prompt positions, at prefill).
    """
    trunk, T = model.model, tokens.shape[1]
    h = trunk.embed_tokens(tokens)  # (B, T, H)
    cos, sin = trunk.rotary_emb(h, positions)
    mask = key_mask[:, None, None] if torch.is_tensor(start) else causal_mask(key_mask, start, T)
    for i, layer in enumerate(trunk.layers):
        h = h + attention(layer.self_attn, layer.input_layernorm(h), cos, sin, cache, i, start, mask)
        h = h + layer.mlp(layer.post_attention_layernorm(h))
        h = h if edit is None else edit(i, h)
    return model.lm_head(trunk.norm(h[:, -1]))  # (B, V)


def causal_mask(key_mask: torch.Tensor, start: int, T: int) -> torch.Tensor:
    """T new positions from column `start` see the real keys before them. key_mask (B, start+T) -> (B, 1, T, S)"""
    device = key_mask.device
    causal = torch.ones(T, start + T, dtype=torch.bool, device=device).tril(start)  # (T, S)
    mask = causal[None] & key_mask[:, None, :]  # (B, T, S)
    mask |= (torch.arange(start + T, device=device) == torch.arange(start, start + T, device=device)[:, None])[
        None
    ]  # a pad sees itself: no NaN
    return mask[:, None]  # (B, 1, T, S)


def prefill(
    model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor
) -> tuple[torch.Tensor, StaticCache, torch.Tensor]:
    """Each distinct prompt through the model once (with k samples per prompt the rows repeat k times).

    -> (logits of each row's last position (B, V), the cache of the U distinct prompts (U rows of P),
    inverse (B,): the cache row of each prompt row)"""
    B, device = prompt_ids.shape[0], prompt_ids.device
    positions = (prompt_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, P)
    rows, inverse = torch.unique(torch.cat([prompt_ids, prompt_mask.long()], 1), dim=0, return_inverse=True)
    first = torch.full((len(rows),), B, dtype=torch.long, device=device).scatter_reduce(
        0, inverse, torch.arange(B, device=device), "amin"
    )  # a row of each prompt
    shared = StaticCache(model, len(first), prompt_ids.shape[1], device, next(model.parameters()).dtype)
    adapter = adapter_of(model)  # LoReFT edits the prompt here, and only here
    edit = adapter.prefill_edit(prompt_mask[first].bool()) if hasattr(adapter, "prefill_edit") else None
    logits = forward(model, prompt_ids[first], positions[first], prompt_mask[first].bool(), shared, 0, edit)
    return logits[inverse], shared, inverse


@torch.no_grad()
def generate(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    eos_ids: list[int],
    pad_id: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
) -> torch.Tensor:
    """Prompt (B, P) left-padded -> prompt + response (B, P + T), T <= max_new_tokens, pad after EOS."""
    B, P = prompt_ids.shape
    device, dtype = prompt_ids.device, next(model.parameters()).dtype
    positions = (prompt_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, P)
    logits, shared, inverse = prefill(model, prompt_ids, prompt_mask)
    cache = StaticCache(model, B, P + max_new_tokens, device, dtype)
    cache.k[:, :, :, :P], cache.v[:, :, :, :P] = shared.k[:, inverse], shared.v[:, inverse]
    del shared
    key_mask = torch.zeros(B, P + max_new_tokens, dtype=torch.bool, device=device)
    key_mask[:, :P] = prompt_mask.bool()
    eos = torch.tensor(eos_ids, device=device, dtype=torch.long)
    out = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=device)
    active = torch.arange(B, device=device)  # the rows still in the batch, A of them: indices into out
    done = torch.zeros(B, dtype=torch.bool, device=device)  # (A,)
    position = positions[:, -1:] + 1  # (A, 1)
    for t in range(max_new_tokens):
        token = next_tokens(logits, temperature, top_k, top_p, greedy)
        token = torch.where(done, torch.full_like(token, pad_id), token)  # (A,)
        out[active, t] = token
        done |= torch.isin(token, eos)
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        if 2 * int(done.sum()) >= len(active):  # half the rows have ended: they leave the batch (at most log2 B times)
            keep = ~done
            active, token, position, key_mask, done = (x[keep] for x in (active, token, position, key_mask, done))
            cache.keep(keep)
        key_mask[:, P + t] = True
        logits = forward(model, token[:, None], position, key_mask[:, : P + t + 1], cache, P + t)
        position = position + 1
    return torch.cat([prompt_ids, out[:, : t + 1]], dim=1)
