"""The policy: a causal LM plus a linear value head on its last hidden state.

The trunk is shared by the LM head and the value head (the original ReFT); `critic="separate"` gives the value
head its own copy of the trunk instead (the paper's ablation: equal accuracy, twice the compute).

Shapes: B = rollouts, P = prompt length, T = response length, L = P + T, V = vocab, H = hidden.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from .hook import adapter_of
from .logprobs import lm_response_states, logprobs_from_hidden, response_states, trunk_hidden
from .models import checkpointed, disable_dropout, save_lm

VALUE_HEAD_FILE = "value_head.safetensors"
CRITIC_FILE = "critic_trunk.safetensors"
POLICY_CONFIG_FILE = "policy_config.json"


class PolicyWithValue(nn.Module):
    """A causal LM (`self.lm`) with a zero-initialised linear value head.

    The head starts at zero so the first value loss is small and the critic cannot yank the shared trunk
    around before it has learnt anything (a known remedy; a random head gives a large early value loss)."""

    def __init__(self, lm: PreTrainedModel, critic: str = "shared"):
        super().__init__()
        if critic not in ("shared", "separate"):
            raise ValueError(f"critic must be 'shared' or 'separate', not {critic!r}")
        if critic == "separate" and adapter_of(lm) is not None:
            raise ValueError("an adapter policy needs critic='shared': the value head reads the adapted trunk")
        self.lm, self.critic = lm, critic
        self.critic_trunk = copy.deepcopy(lm.base_model) if critic == "separate" else None
        param = next(lm.parameters())
        self.value_head = nn.Linear(lm.config.hidden_size, 1, device=param.device, dtype=param.dtype)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        disable_dropout(self)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_len: int,
        with_values: bool = True,
        group: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hidden states and values at the positions that predict the response tokens.

        values[:, t] is V(s_t), the value of the state just before response token t is emitted; None without
        `with_values` (a critic-free estimator: the value head is not run). `group`: rows per shared prompt
        (`ppo.lm.logprobs.lm_response_states`).
        Shape: (B, L) -> states (B, T, H), values (B, T).
        """
        states = lm_response_states(self.lm, input_ids, attention_mask, response_len, group)
        if not with_values:
            return states, None
        critic_states = (
            states
            if self.critic_trunk is None
            else response_states(trunk_hidden(self.critic_trunk, input_ids, attention_mask), response_len)
        )
        values = self.value_head(critic_states).squeeze(-1).float()  # (B, T)
        return states, values

    def logprobs_and_values(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_len: int,
        temperature: float,
        with_entropy: bool = False,
        entropy_grad: bool = False,
        top_k: int = 0,
        top_p: float = 1.0,
        with_values: bool = True,
        group: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """log pi of the response tokens, V(s_t) (None without `with_values`), and optionally the entropy, from one
        trunk pass.

        Shape: (B, L) -> logprobs (B, T), values (B, T) or None, entropy (B, T) or None.
        """
        states, values = self(input_ids, attention_mask, response_len, with_values, group)
        tokens = input_ids[:, -response_len:]  # (B, T)
        logprobs, ent = logprobs_from_hidden(
            states,
            self.lm.get_output_embeddings(),
            tokens,
            temperature,
            with_entropy,
            entropy_grad,
            top_k=top_k,
            top_p=top_p,
            recompute=checkpointed(self.lm),
        )
        return logprobs, values, ent

    def save_pretrained(self, path: str | Path, state_dict: dict | None = None) -> None:
        """The LM in Hugging Face format (or only its adapter), plus the value head (and critic trunk) beside it.
        `state_dict`: the policy's whole weights, when this module holds only shards of them (FSDP2)."""
        path, weights = Path(path), state_dict or self.state_dict()

        def part(name: str) -> dict[str, torch.Tensor]:
            return {k[len(name) + 1 :]: v.contiguous() for k, v in weights.items() if k.startswith(name + ".")}

        save_lm(self.lm, path, part("lm") if state_dict else None)
        for name, file in (("value_head", VALUE_HEAD_FILE), ("critic_trunk", CRITIC_FILE)):
            if getattr(self, name) is not None:
                save_file(part(name), path / file)
        (path / POLICY_CONFIG_FILE).write_text(json.dumps({"critic": self.critic}) + "\n")

    def load_heads(self, path: str | Path) -> bool:
        """Load a saved value head (and critic trunk) if the folder has them. Returns whether it did."""
        path = Path(path)
        if not (path / VALUE_HEAD_FILE).is_file():
            return False
        self.value_head.load_state_dict(load_file(path / VALUE_HEAD_FILE, device=str(self.value_head.weight.device)))
        if self.critic_trunk is not None and (path / CRITIC_FILE).is_file():
            self.critic_trunk.load_state_dict(load_file(path / CRITIC_FILE, device=str(self.value_head.weight.device)))
        return True
