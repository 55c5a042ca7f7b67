"""The one hook point where an adapter plugs into an LM. `ppo.adapters` builds adapters; this layer never imports it.

An adapter is a module registered on the LM under one attribute (`plug`), so every code path that runs the LM runs
its hooks. The LM layer talks to it through this protocol only:

    adapter.prompt_tokens(mask)       a context: which tokens of the coming passes are prompt, (B, L) bool (LoReFT
                                      edits those); `prompt_positions(lm, mask)` below says it for any LM
    adapter.recompute_context()       torch.utils.checkpoint's `context_fn`: the hooks' state, replayed in backward
    adapter.replaced(weights)         a context: run a frozen copy's weights instead, or none (the PPO reference)
    adapter.save_pretrained(path)     a checkpoint of an adapter LM holds the adapter only, with a base pointer
    adapter.prefill_edit(mask)        optional: the edit the fast decoder applies at prefill (LoReFT)
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

ATTRIBUTE = "ppo_adapter"


def adapter_of(lm: nn.Module) -> nn.Module | None:
    """The adapter plugged into `lm`, or None (a plain LM: full fine-tuning)."""
    return getattr(lm, ATTRIBUTE, None)


def plug(lm: nn.Module, adapter: nn.Module) -> None:
    """Register `adapter` as a submodule of `lm`, so `.to()`, `.parameters()` and `state_dict()` see it."""
    if adapter_of(lm) is not None:
        raise ValueError("this model already has an adapter")
    setattr(lm, ATTRIBUTE, adapter)


@contextlib.contextmanager
def prompt_positions(lm: nn.Module, prompt_tokens: torch.Tensor):
    """Tell the LM's adapter, if any, which tokens of the coming forward pass(es) are prompt, (B, L) bool."""
    adapter = adapter_of(lm)
    with adapter.prompt_tokens(prompt_tokens) if adapter is not None else contextlib.nullcontext():
        yield
