"""The reference model of the KL penalty: what PPO keeps the policy close to.

    FrozenLM(lm)                 a frozen copy of a whole LM: full fine-tuning (the original's warm-up checkpoint)
    SameNetwork(lm, weights)     an adapter policy's own network, with its adapter off (weights = None) or running
                                 a frozen copy of the adapter's starting weights: no second copy of the LM

Both answer `logprobs(input_ids, attention_mask, response_len, temperature, group=1)` with the tempered,
untruncated log-probs of the response tokens (`group`: rows per shared prompt, `ppo.lm.shared_prompt`).
`ppo.adapters.loading.make_reference` picks one for a PPO run.

Why "off" is only right for a fresh adapter: the reference must be the policy PPO starts from. A fresh LoRA or
LoReFT adapter is the identity, so the starting policy is the bare base model. An adapter trained in SFT is not,
so the reference is then a frozen copy of that adapter, on the same network.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import PreTrainedModel

from .hook import adapter_of
from .logprobs import lm_logprobs
from .models import disable_dropout


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

    def logprobs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int, temperature: float, group=1
    ) -> torch.Tensor:
        return lm_logprobs(self.lm, input_ids, attention_mask, response_len, temperature, group)


class SameNetwork:
    """The policy's network with its adapter replaced by `weights` (a frozen copy), or switched off (None)."""

    def __init__(self, lm: PreTrainedModel, weights: nn.Module | None):
        self.lm, self.adapter, self.weights = lm, adapter_of(lm), weights

    def logprobs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int, temperature: float, group=1
    ) -> torch.Tensor:
        with self.adapter.replaced(self.weights):
            return lm_logprobs(self.lm, input_ids, attention_mask, response_len, temperature, group)


def check_reference(reference):
    """`reference` itself, if it answers `logprobs`; else a TypeError that says what to pass (before any work)."""
    if not callable(getattr(reference, "logprobs", None)):
        raise TypeError(
            f"the reference must answer logprobs(...), and a {type(reference).__name__} does not: pass "
            f"FrozenLM(lm) (a frozen copy of an LM) or make_reference(policy, config), from ppo"
        )
    return reference
