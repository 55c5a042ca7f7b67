"""The reference model of the KL penalty: what PPO keeps the policy close to.

    FrozenLM(lm)                 a frozen copy of a whole LM: full fine-tuning (the original's warm-up checkpoint)
    SameNetwork(lm, weights)     an adapter policy's own network, with its adapter off (weights = None) or running
                                 a frozen copy of the adapter's starting weights: no second copy of the LM

Both answer `logprobs(input_ids, attention_mask, response_len, temperature)` with the tempered, untruncated
log-probs of the response tokens. `make_reference` picks one for a PPO run.

Why "off" is only right for a fresh adapter: the reference must be the policy PPO starts from. A fresh LoRA or
LoReFT adapter is the identity, so the starting policy is the bare base model. An adapter trained in SFT is not,
so the reference is then a frozen copy of that adapter, on the same network.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from transformers import PreTrainedModel

from .adapter import Adapter, adapter_of, base_pointer
from .checkpoint import load_weights, saved_adapter
from .config import PPOConfig
from .models import disable_dropout, load_model
from .policy import PolicyWithValue, lm_logprobs


def freeze(lm: PreTrainedModel) -> PreTrainedModel:
    """`lm` itself, in eval mode, with no gradients and dropout off."""
    lm.eval().requires_grad_(False)
    disable_dropout(lm)
    return lm


def frozen_copy(lm: PreTrainedModel) -> PreTrainedModel:
    """A frozen copy of an LM."""
    return freeze(copy.deepcopy(lm))


class FrozenLM:
    """A whole LM, frozen. `copy=False` freezes `lm` itself (one loaded for this purpose)."""

    def __init__(self, lm: PreTrainedModel, copy: bool = True):
        self.lm = frozen_copy(lm) if copy else freeze(lm)

    def logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int,
                 temperature: float) -> torch.Tensor:
        return lm_logprobs(self.lm, input_ids, attention_mask, response_len, temperature)


class SameNetwork:
    """The policy's network with its adapter replaced by `weights` (a frozen copy), or switched off (None)."""

    def __init__(self, lm: PreTrainedModel, weights: Adapter | None):
        self.lm, self.adapter, self.weights = lm, adapter_of(lm), weights

    def logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int,
                 temperature: float) -> torch.Tensor:
        with self.adapter.replaced(self.weights):
            return lm_logprobs(self.lm, input_ids, attention_mask, response_len, temperature)


def check_reference(reference):
    """`reference` itself, if it answers `logprobs`; else a TypeError that says what to pass (before any work)."""
    if not callable(getattr(reference, "logprobs", None)):
        raise TypeError(f"the reference must answer logprobs(...), and a {type(reference).__name__} does not: pass "
                        f"FrozenLM(lm) (a frozen copy of an LM) or make_reference(policy, config), from ppo")
    return reference


def make_reference(policy: PolicyWithValue, config: PPOConfig, resumed: bool = False) -> FrozenLM | SameNetwork:
    """The reference named by config.ref_model, else the starting checkpoint config.model.

    `resumed`: the policy was loaded from a PPO checkpoint, so its weights are no longer the starting ones.
    """
    spec, adapter = config.ref_model or config.model, adapter_of(policy.lm)
    starting = spec == config.model and not resumed              # the policy's weights are the reference's
    if adapter is None:
        return FrozenLM(policy.lm) if starting else FrozenLM(load_model(spec, config.device, config.dtype)[0], False)
    saved = saved_adapter(spec) if Path(spec).is_dir() else None
    if saved is not None and saved["base"] == adapter.base:      # an adapter checkpoint on the same base
        weights = adapter.frozen_copy()
        if not starting:
            load_weights(weights, spec)
        return SameNetwork(policy.lm, weights)
    if base_pointer(spec) == adapter.base:                       # the bare base model
        return SameNetwork(policy.lm, None)
    return FrozenLM(load_model(spec, config.device, config.dtype)[0], copy=False)
