"""The policy: a causal LM plus a linear value head on its last hidden state.

The trunk is shared by the LM head and the value head (the original ReFT); `critic="separate"` gives the value
head its own copy of the trunk instead (the paper's ablation: equal accuracy, twice the compute).

Shapes: B = rollouts, P = prompt length, T = response length, L = P + T, V = vocab, H = hidden.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel

from ..core.logits import entropy, token_logprobs
from .decode import truncate
from .hook import adapter_of, prompt_positions
from .models import checkpointed, disable_dropout, recomputing, save_lm

VALUE_HEAD_FILE = "value_head.safetensors"
CRITIC_FILE = "critic_trunk.safetensors"
POLICY_CONFIG_FILE = "policy_config.json"


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding: cumsum(mask) - 1, so each sequence starts at 0. (B, L) -> (B, L)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def trunk_hidden(trunk: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last hidden state of a decoder trunk (the LM without its head), (B, L) -> (B, L, H)."""
    with recomputing(trunk):
        out = trunk(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
        )
    return out.last_hidden_state


def prompt_tokens(attention_mask: torch.Tensor, response_len: int) -> torch.Tensor:
    """True on the real prompt tokens of prompt + response rows (what LoReFT edits). (B, L) -> (B, L) bool."""
    prompt = attention_mask.bool().clone()
    prompt[:, prompt.shape[1] - response_len :] = False
    return prompt


def response_states(hidden: torch.Tensor, response_len: int) -> torch.Tensor:
    """The states that predict the response tokens: position i predicts token i + 1.

    The response occupies positions P .. L-1, so its tokens are predicted from positions P-1 .. L-2:
    (B, L, H) -> (B, T, H).
    """
    return hidden[:, -response_len - 1 : -1]  # (B, T, H): positions P-1 .. L-2, one before each token


def logprobs_from_hidden(
    hidden: torch.Tensor,
    lm_head: nn.Module,
    tokens: torch.Tensor,
    temperature: float,
    with_entropy: bool = False,
    entropy_grad: bool = False,
    chunk_size: int = 128,
    top_k: int = 0,
    top_p: float = 1.0,
    recompute: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(y_t) of the given tokens, and optionally the entropy of each next-token distribution.

        logits = truncate(lm_head(h) / temperature, top_k, top_p)      (cut tokens: -inf; y_t is never cut)
        log pi(y_t) = logits[y_t] - logsumexp(logits)
        H_t = logsumexp(logits) - sum_v softmax(logits)_v * logits_v

    With top_k / top_p these are the log-probs of the distribution the sampler actually draws from, so the PPO
    ratio and the k1 KL estimate stay unbiased (tests/test_policy.py). The reference model is scored without
    truncation: the KL is to the full tempered reference.

    The vocabulary-sized logits exist for `chunk_size` positions at a time, never as a full log-softmax copy. With
    autograd every chunk's logits are kept for backward, unless `recompute` (gradient checkpointing) computes each
    chunk of 32 again there. Logits go to fp32 so bf16 models get accurate log-probs. The entropy is a detached
    diagnostic unless `entropy_grad` (for an entropy bonus).

    Shape: hidden (B, T, H), tokens (B, T) -> logprobs (B, T), entropy (B, T) or None.
    """
    run, c = chunk_logprobs, chunk_size
    if recompute and torch.is_grad_enabled():
        run, c = functools.partial(checkpoint, chunk_logprobs, use_reentrant=False), min(chunk_size, 32)
    logprobs, entropies = zip(
        *(
            run(
                hidden[:, s : s + c],
                lm_head,
                tokens[:, s : s + c],
                temperature,
                with_entropy,
                entropy_grad,
                top_k,
                top_p,
            )
            for s in range(0, tokens.shape[1], c)
        )
    )
    return torch.cat(logprobs, dim=1), torch.cat(entropies, dim=1) if with_entropy else None


def chunk_logprobs(
    hidden: torch.Tensor,
    lm_head: nn.Module,
    tokens: torch.Tensor,
    temperature: float,
    with_entropy: bool,
    entropy_grad: bool,
    top_k: int,
    top_p: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`logprobs_from_hidden` of one chunk of c positions. (B, c, H), (B, c) -> (B, c), (B, c) or None."""
    logits = truncate(lm_head(hidden).float() / temperature, top_k, top_p, keep=tokens)  # (B, c, V)
    logprobs = token_logprobs(logits, tokens)  # (B, c)
    if not with_entropy:
        return logprobs, None
    return logprobs, entropy(logits if entropy_grad else logits.detach())  # (B, c)


def lm_response_states(
    lm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int
) -> torch.Tensor:
    """The trunk states that predict the response tokens (LoReFT told the prompt). (B, L) -> (B, T, H)."""
    with prompt_positions(lm, prompt_tokens(attention_mask, response_len)):
        return response_states(trunk_hidden(lm.base_model, input_ids, attention_mask), response_len)


def lm_logprobs(
    lm: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_len: int, temperature: float
) -> torch.Tensor:
    """log pi of the response tokens under a plain LM (the reference model). (B, L) -> (B, T)."""
    states = lm_response_states(lm, input_ids, attention_mask, response_len)
    return logprobs_from_hidden(states, lm.get_output_embeddings(), input_ids[:, -response_len:], temperature)[0]


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
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states and values at the positions that predict the response tokens.

        values[:, t] is V(s_t), the value of the state just before response token t is emitted.
        Shape: (B, L) -> states (B, T, H), values (B, T).
        """
        states = lm_response_states(self.lm, input_ids, attention_mask, response_len)
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
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """log pi of the response tokens, V(s_t), and optionally the entropy, from one trunk pass.

        Shape: (B, L) -> logprobs (B, T), values (B, T), entropy (B, T) or None.
        """
        states, values = self(input_ids, attention_mask, response_len)
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
