"""LoReFT (Wu et al. 2024): edit the residual stream of a frozen LM at a few prompt positions.

    LoReFT   Phi(h) = h + R^T (W h + b - R h)      R: r x d with orthonormal rows; W: r x d; b: r
    DiReFT   Phi(h) = h + W2^T (W1 h + b)          no orthonormality; W2 starts at zero

R spans an r-dimensional subspace of the hidden state, and Phi replaces h's coordinates in that subspace (R h) by
learnt ones (W h + b). R is kept orthonormal by `torch.nn.utils.parametrizations.orthogonal` (R is computed from
an unconstrained matrix at every forward pass), and it never gets weight decay (`no_decay`). W starts equal to R
and b at zero, so Phi starts exactly at the identity: Phi(h) = h + R^T((W - R) h + b) = h + 0.

Where: the outputs of chosen decoder layers, at the first `first` and the last `last` prompt tokens of each row.
Positions are counted on the prompt-token mask, never on pad ids, so left padding is safe. With `tied`, one
intervention per layer serves both ends; untied, the first tokens use one and the last tokens another (a token
that is both gets the first one). Generated tokens are never edited: they see the edit through the KV cache.

Which positions a forward pass holds comes from its own arguments, never from what `generate` names them: a pass
of L new tokens over a cache of S positions (the cache's own length; else what the attention mask spans beyond the
L tokens) holds positions S .. S + L - 1 of the sequence that the prompt mask names from position 0.

Shapes: B = rows, L = tokens in the forward pass, d = hidden size, r = rank.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from ..lm.models import decoder_layers
from .base import Adapter, AdapterSpec


class LoReFTIntervention(nn.Module):
    def __init__(self, d: int, r: int):
        super().__init__()
        self.rotation = orthogonal(nn.Linear(d, r, bias=False))  # R = rotation.weight, (r, d), R R^T = I
        self.proj = nn.Linear(d, r)  # W = proj.weight, b = proj.bias
        with torch.no_grad():
            self.proj.weight.copy_(self.rotation.weight)
            self.proj.bias.zero_()

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        """R^T ((W - R) h + b), which is R^T (W h + b - R h) with one matmul less. (..., d) -> (..., d)"""
        R = self.rotation.weight.to(h.dtype)
        return (h @ (self.proj.weight.to(h.dtype) - R).T + self.proj.bias.to(h.dtype)) @ R

    def no_decay(self) -> list[nn.Parameter]:
        return [self.rotation.parametrizations.weight.original]


class DiReFTIntervention(nn.Module):
    def __init__(self, d: int, r: int):
        super().__init__()
        self.down = nn.Linear(d, r)  # W1, b
        self.up = nn.Parameter(torch.zeros(r, d))  # W2, zero: the identity at step 0

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        """W2^T (W1 h + b). (..., d) -> (..., d)"""
        return (h @ self.down.weight.to(h.dtype).T + self.down.bias.to(h.dtype)) @ self.up.to(h.dtype)

    def no_decay(self) -> list[nn.Parameter]:
        return []


def edit_groups(prompt: torch.Tensor, first: int, last: int, tied: bool) -> torch.Tensor:
    """Which intervention edits each token: -1 none, 0 the first `first` prompt tokens (and, tied, the last
    `last` too), 1 the last `last` (untied). prompt (B, L) bool, True on prompt tokens -> (B, L) long."""
    prompt = prompt.bool()
    rank = prompt.long().cumsum(-1)  # 1, 2, ... on each row's prompt tokens
    n = rank[:, -1:]  # prompt tokens per row, (B, 1)
    groups = torch.full_like(rank, -1)
    groups[prompt & (rank > n - last)] = 0 if tied else 1
    groups[prompt & (rank <= first)] = 0
    return groups


class LoReFT(Adapter):
    """LoReFT (spec.kind = loreft) or DiReFT (direft) interventions on spec.layers (all by default)."""

    HOOK_STATE = ("_replacements", "_groups", "_past")

    def __init__(self, lm: nn.Module, spec: AdapterSpec):
        super().__init__(spec)
        n, d = len(decoder_layers(lm)), lm.config.hidden_size
        self.layers = list(range(n)) if spec.layers is None else sorted(set(spec.layers))
        if not all(0 <= i < n for i in self.layers) or not 1 <= spec.rank <= d:
            raise ValueError(f"LoReFT layers must be in 0..{n - 1} and rank in 1..{d} (got {spec})")
        self.per_layer = 1 if spec.tied else 2
        make = LoReFTIntervention if spec.kind == "loreft" else DiReFTIntervention
        self.interventions = nn.ModuleList(make(d, spec.rank) for _ in range(len(self.layers) * self.per_layer))
        self._groups: torch.Tensor | None = None  # (B, L), set by `prompt_tokens` around a forward pass
        self._past = 0  # positions before the current forward pass (a KV cache)

    def edit(self, slot: int, h: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Phi at the marked positions of the slot-th edited layer; h elsewhere. h (B, L, d), groups (B, L)."""
        weights = self.current()
        if weights is None:
            return h
        for g in range(self.per_layer):
            where = (groups == g)[..., None].to(h.dtype)  # (B, L, 1)
            h = h + where * weights.interventions[slot * self.per_layer + g].delta(h)
        return h

    @contextlib.contextmanager
    def prompt_tokens(self, mask: torch.Tensor):
        previous, self._groups = self._groups, edit_groups(mask, self.spec.first, self.spec.last, self.spec.tied)
        try:
            yield
        finally:
            self._groups = previous

    def prefill_edit(self, prompt_mask: torch.Tensor) -> Callable[[int, torch.Tensor], torch.Tensor]:
        """For the lean sampler, which runs the layers itself: edit(layer index, h) for a prefill of prompt_mask."""
        groups, slot_of = edit_groups(prompt_mask, self.spec.first, self.spec.last, self.spec.tied), {}
        slot_of.update((layer, slot) for slot, layer in enumerate(self.layers))
        return lambda i, h: self.edit(slot_of[i], h, groups) if i in slot_of else h

    def hook(self, lm: nn.Module) -> None:
        signature = inspect.signature(lm.base_model.forward)

        def watch_positions(module: nn.Module, args: tuple, kwargs: dict) -> None:
            try:
                arguments = signature.bind_partial(*args, **kwargs).arguments
            except TypeError:  # a wrapper's keyword that the visible signature lacks
                arguments = {**dict(zip(signature.parameters, args)), **kwargs}
            self._past = cached_positions(arguments)

        lm.base_model.register_forward_pre_hook(watch_positions, with_kwargs=True)
        layers = decoder_layers(lm)
        for slot, i in enumerate(self.layers):
            layers[i].register_forward_hook(self.make_hook(slot))

    def pass_groups(self, B: int, L: int) -> torch.Tensor:
        """The edit groups of the current pass's L positions, past .. past + L - 1. -> (B, L) long.

        The prompt mask names positions from 0; positions after its end are generated tokens, never edited. A pass
        from position 0 longer than the mask is refused: that mask was meant for another pass (or there is none).
        """
        groups, past = self._groups, self._past
        if groups is None or groups.shape[0] != B or (past == 0 and groups.shape[1] < L):
            raise RuntimeError(
                "LoReFT needs the prompt tokens of this forward pass: run it inside "
                "`ppo.lm.hook.prompt_positions(lm, prompt_mask)` with a (B, L) mask"
            )
        window = groups[:, past : past + L]  # (B, <= L)
        return torch.cat([window, window.new_full((B, L - window.shape[1]), -1)], 1)  # (B, L)

    def make_hook(self, slot: int):
        def edit_output(module: nn.Module, args: tuple, output):
            if self.current() is None:
                return output
            h = output[0] if isinstance(output, tuple) else output
            groups = self.pass_groups(*h.shape[:2])
            if not (groups >= 0).any():  # a decode step: generated tokens are never edited
                return output
            h = self.edit(slot, h, groups)
            return (h, *output[1:]) if isinstance(output, tuple) else h

        return edit_output

    def no_decay(self) -> list[nn.Parameter]:
        return [p for intervention in self.interventions for p in intervention.no_decay()]


def cached_positions(arguments: dict) -> int:
    """Positions already in the KV cache, from a forward pass's own arguments: the cache's length, found by what it
    is (any argument with `get_seq_length`, whatever the transformers version names it), else what the attention
    mask spans beyond the L new tokens, (B, S) or (B, 1, L, S). 0 with neither: a pass from position 0."""
    extra = [v for v in arguments.values() if isinstance(v, dict)]  # **kwargs, if forward has them
    for value in [*arguments.values(), *(v for d in extra for v in d.values())]:
        if hasattr(value, "get_seq_length"):
            return int(value.get_seq_length())
    new = arguments.get("input_ids")
    new = arguments.get("inputs_embeds") if new is None else new
    mask = arguments.get("attention_mask")
    return max(mask.shape[-1] - new.shape[1], 0) if torch.is_tensor(mask) and new is not None else 0
